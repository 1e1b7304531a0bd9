"""The `focus_line_items` view: a public, documented SQL interface for BI tools.

Column names are the FOCUS names in their exact case; `x_` columns are our extensions. Changing a
column here is a breaking change for finance teams' dashboards: add columns, never rename.
"""

from django.db import migrations

CREATE_VIEW = """
CREATE VIEW focus_line_items AS
SELECT
    li.id                         AS "x_LineItemId",
    li.billed_cost                AS "BilledCost",
    li.effective_cost             AS "EffectiveCost",
    li.list_cost                  AS "ListCost",
    li.contracted_cost            AS "ContractedCost",
    li.billing_currency           AS "BillingCurrency",
    li.charge_period_start        AS "ChargePeriodStart",
    li.charge_period_end          AS "ChargePeriodEnd",
    li.billing_period_start_at    AS "BillingPeriodStart",
    li.billing_period_end_at      AS "BillingPeriodEnd",
    li.charge_category            AS "ChargeCategory",
    NULLIF(li.charge_class, '')   AS "ChargeClass",
    li.charge_description         AS "ChargeDescription",
    NULLIF(li.charge_frequency, '') AS "ChargeFrequency",
    li.provider_name              AS "ProviderName",
    li.provider_name              AS "ServiceProviderName",
    NULLIF(li.publisher_name, '') AS "PublisherName",
    NULLIF(li.invoice_issuer_name, '') AS "InvoiceIssuerName",
    li.billing_account_id         AS "BillingAccountId",
    NULLIF(li.billing_account_name, '') AS "BillingAccountName",
    NULLIF(li.sub_account_id, '')   AS "SubAccountId",
    NULLIF(li.sub_account_name, '') AS "SubAccountName",
    NULLIF(li.region_id, '')        AS "RegionId",
    NULLIF(li.region_name, '')      AS "RegionName",
    NULLIF(li.availability_zone, '') AS "AvailabilityZone",
    NULLIF(li.resource_id, '')      AS "ResourceId",
    NULLIF(li.resource_name, '')    AS "ResourceName",
    NULLIF(li.resource_type, '')    AS "ResourceType",
    NULLIF(li.service_name, '')     AS "ServiceName",
    NULLIF(li.service_category, '') AS "ServiceCategory",
    NULLIF(li.sku_id, '')           AS "SkuId",
    NULLIF(li.sku_price_id, '')     AS "SkuPriceId",
    NULLIF(li.pricing_category, '') AS "PricingCategory",
    li.pricing_quantity             AS "PricingQuantity",
    NULLIF(li.pricing_unit, '')     AS "PricingUnit",
    li.consumed_quantity            AS "ConsumedQuantity",
    NULLIF(li.consumed_unit, '')    AS "ConsumedUnit",
    NULLIF(li.commitment_discount_id, '') AS "CommitmentDiscountId",
    li.tags                         AS "Tags",
    acct.slug                       AS "x_Account",
    acct.provider                   AS "x_Provider",
    team.slug                       AS "x_Team",
    mdl.slug                        AS "x_Model",
    dep.slug                        AS "x_Deployment",
    li.ingest_run_id                AS "x_IngestRunId",
    li.source_line                  AS "x_SourceLine"
FROM attribution_costlineitem li
JOIN attribution_cloudaccount acct ON acct.id = li.account_id
LEFT JOIN attribution_team team ON team.id = li.team_id
LEFT JOIN attribution_model mdl ON mdl.id = li.model_id
LEFT JOIN attribution_deployment dep ON dep.id = li.deployment_id
"""


class Migration(migrations.Migration):
    dependencies = [("attribution", "0001_initial")]

    operations = [
        migrations.RunSQL(CREATE_VIEW, reverse_sql="DROP VIEW IF EXISTS focus_line_items"),
    ]
