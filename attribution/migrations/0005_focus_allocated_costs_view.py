"""The `focus_allocated_costs` view: allocated cost per day for BI tools, in FOCUS names.

One row per AllocatedCost: FOCUS 1.3 `AllocatedMethodId` / `AllocatedMethodDetails` say how the
cost was split (the ratio, the basis quantity and total, the rule); `x_UnallocatedReason` is empty
for allocated rows. For every (ChargePeriodStart, x_Account, BillingCurrency) the sums of BilledCost
and EffectiveCost equal those of focus_line_items. Add columns, never rename: dashboards read these.
"""

from django.db import migrations

CREATE_VIEW = """
CREATE VIEW focus_allocated_costs AS
SELECT
    ac.id                              AS "x_AllocatedCostId",
    ac.billed_cost                     AS "BilledCost",
    ac.effective_cost                  AS "EffectiveCost",
    ac.billing_currency                AS "BillingCurrency",
    ac.day                             AS "ChargePeriodStart",
    ac.day + 1                         AS "ChargePeriodEnd",
    ac.billing_period_start            AS "BillingPeriodStart",
    ac.charge_category                 AS "ChargeCategory",
    ac.provider                        AS "ProviderName",
    ac.allocated_method_id             AS "AllocatedMethodId",
    ac.allocated_method_details        AS "AllocatedMethodDetails",
    acct.slug                          AS "x_Account",
    team.slug                          AS "x_Team",
    mdl.slug                           AS "x_Model",
    dep.slug                           AS "x_Deployment",
    NULLIF(ac.unallocated_reason, '')  AS "x_UnallocatedReason",
    ac.allocation_ratio                AS "x_AllocationRatio",
    ac.rule_id                         AS "x_AllocationRuleId"
FROM attribution_allocatedcost ac
JOIN attribution_cloudaccount acct ON acct.id = ac.account_id
LEFT JOIN attribution_team team ON team.id = ac.team_id
LEFT JOIN attribution_model mdl ON mdl.id = ac.model_id
LEFT JOIN attribution_deployment dep ON dep.id = ac.deployment_id
"""


class Migration(migrations.Migration):
    dependencies = [("attribution", "0004_allocation_usage_sync_models")]

    operations = [
        migrations.RunSQL(CREATE_VIEW, reverse_sql="DROP VIEW IF EXISTS focus_allocated_costs"),
    ]
