"""focus_line_items conforms to FOCUS 1.2 (checked by the FinOps Foundation's validator, `make
conformance`), and focus_line_items_1_3 offers the FOCUS 1.3 names beside it.

- Three stored columns: ServiceSubcategory, InvoiceId, CommitmentDiscountStatus (filled by the
  parsers and attribution/focus/conform.py; "" on rows loaded before, shown as their defaults).
- The 1.2 view has only FOCUS 1.2 columns and `x_` extensions: ServiceProviderName (a 1.3 column)
  moves to focus_line_items_1_3 with HostProviderName.
- Presentation rules live here, so stored rows stay what the export said: ListCost and
  ContractedCost when the export has none, quantities, units and pricing category null on tax
  rows, ConsumedQuantity only on usage, defaults for ChargeFrequency, names and types
  ("Unspecified" for a row whose export names no service).
"""

from django.db import migrations, models

# A usage row whose billed amount is 0 but whose effective amount is not is commitment usage
# (Azure amortization): its list/contracted value is the amortized one, not 0.
_COMMITTED_USAGE = "li.charge_category = 'Usage' AND li.billed_cost = 0 AND li.effective_cost <> 0"
_TAX = "li.charge_category = 'Tax'"
_PRICED = f"CASE WHEN {_TAX} THEN NULL ELSE li.pricing_quantity END"
_UNUSED = "li.commitment_discount_id <> '' AND li.commitment_discount_status = 'Unused'"
_CONSUMED = (
    f"CASE WHEN li.charge_category <> 'Usage' OR ({_UNUSED}) THEN NULL "
    "ELSE COALESCE(li.consumed_quantity, li.pricing_quantity) END"
)

CREATE_VIEW = f"""
CREATE VIEW focus_line_items AS
SELECT
    li.id                         AS "x_LineItemId",
    li.billed_cost                AS "BilledCost",
    li.effective_cost             AS "EffectiveCost",
    COALESCE(li.list_cost, CASE WHEN {_COMMITTED_USAGE} THEN li.effective_cost ELSE li.billed_cost END)
                                  AS "ListCost",
    COALESCE(li.contracted_cost,
             CASE WHEN {_COMMITTED_USAGE} THEN COALESCE(li.list_cost, li.effective_cost)
                  ELSE li.billed_cost END)
                                  AS "ContractedCost",
    li.billing_currency           AS "BillingCurrency",
    li.charge_period_start        AS "ChargePeriodStart",
    li.charge_period_end          AS "ChargePeriodEnd",
    li.billing_period_start_at    AS "BillingPeriodStart",
    li.billing_period_end_at      AS "BillingPeriodEnd",
    li.charge_category            AS "ChargeCategory",
    NULLIF(li.charge_class, '')   AS "ChargeClass",
    li.charge_description         AS "ChargeDescription",
    CASE WHEN li.charge_category = 'Purchase' AND li.charge_frequency IN ('', 'Usage-Based') THEN 'One-Time'
         WHEN li.charge_frequency <> '' THEN li.charge_frequency
         WHEN li.charge_category = 'Usage' THEN 'Usage-Based'
         ELSE 'One-Time' END      AS "ChargeFrequency",
    -- ProviderName, PublisherName and InvoiceIssuerName MUST NOT be null: the publisher and the
    -- issuer are the provider unless the export names another (a marketplace seller, a reseller).
    COALESCE(NULLIF(li.provider_name, ''), 'Unspecified') AS "ProviderName",
    COALESCE(NULLIF(li.publisher_name, ''), NULLIF(li.provider_name, ''), 'Unspecified') AS "PublisherName",
    COALESCE(NULLIF(li.invoice_issuer_name, ''), NULLIF(li.provider_name, ''), 'Unspecified')
                                  AS "InvoiceIssuerName",
    NULLIF(li.invoice_id, '')     AS "InvoiceId",
    li.billing_account_id         AS "BillingAccountId",
    COALESCE(NULLIF(li.billing_account_name, ''), li.billing_account_id) AS "BillingAccountName",
    CASE acct.provider WHEN 'aws' THEN 'Management Account' WHEN 'gcp' THEN 'Billing Account'
         WHEN 'azure' THEN 'Billing Account' ELSE 'Billing Account' END AS "BillingAccountType",
    NULLIF(li.sub_account_id, '')   AS "SubAccountId",
    CASE WHEN li.sub_account_id = '' THEN NULL
         ELSE COALESCE(NULLIF(li.sub_account_name, ''), li.sub_account_id) END AS "SubAccountName",
    CASE WHEN li.sub_account_id = '' THEN NULL
         ELSE CASE acct.provider WHEN 'aws' THEN 'Member Account' WHEN 'gcp' THEN 'Project'
                   WHEN 'azure' THEN 'Subscription' ELSE 'Sub Account' END END AS "SubAccountType",
    NULLIF(li.region_id, '')        AS "RegionId",
    CASE WHEN li.region_id = '' THEN NULL
         ELSE COALESCE(NULLIF(li.region_name, ''), li.region_id) END AS "RegionName",
    NULLIF(li.availability_zone, '') AS "AvailabilityZone",
    NULLIF(li.resource_id, '')      AS "ResourceId",
    CASE WHEN li.resource_id = '' THEN NULL ELSE NULLIF(li.resource_name, '') END AS "ResourceName",
    CASE WHEN li.resource_id = '' THEN NULL ELSE NULLIF(li.resource_type, '') END AS "ResourceType",
    -- ServiceName MUST NOT be null; a row whose export names no service says so.
    COALESCE(NULLIF(li.service_name, ''), 'Unspecified') AS "ServiceName",
    COALESCE(NULLIF(li.service_category, ''), 'Other') AS "ServiceCategory",
    COALESCE(NULLIF(li.service_subcategory, ''),
             'Other (' || COALESCE(NULLIF(li.service_category, ''), 'Other') || ')') AS "ServiceSubcategory",
    NULLIF(li.sku_id, '')           AS "SkuId",
    NULLIF(li.sku_price_id, '')     AS "SkuPriceId",
    CASE WHEN {_TAX} THEN NULL
         WHEN li.pricing_category <> '' THEN li.pricing_category
         WHEN li.charge_category IN ('Usage', 'Purchase') THEN 'Standard' END AS "PricingCategory",
    {_PRICED}                       AS "PricingQuantity",
    CASE WHEN ({_PRICED}) IS NULL THEN NULL
         ELSE COALESCE(NULLIF(li.pricing_unit, ''), NULLIF(li.consumed_unit, ''), 'Units') END AS "PricingUnit",
    {_CONSUMED}                     AS "ConsumedQuantity",
    CASE WHEN ({_CONSUMED}) IS NULL THEN NULL
         ELSE COALESCE(NULLIF(li.consumed_unit, ''), NULLIF(li.pricing_unit, ''), 'Units') END AS "ConsumedUnit",
    NULLIF(li.commitment_discount_id, '') AS "CommitmentDiscountId",
    CASE WHEN li.commitment_discount_id = '' THEN NULL
         ELSE regexp_replace(li.commitment_discount_id, '^.*[/:]', '') END AS "CommitmentDiscountName",
    CASE WHEN li.commitment_discount_id = '' THEN NULL
         WHEN li.commitment_discount_id ~* 'savings ?plan' THEN 'Spend' ELSE 'Usage' END
                                    AS "CommitmentDiscountCategory",
    CASE WHEN li.commitment_discount_id = '' THEN NULL
         WHEN li.commitment_discount_id ~* 'savings ?plan' THEN 'Savings Plan'
         WHEN acct.provider = 'aws' THEN 'Reserved Instance'
         WHEN acct.provider = 'azure' THEN 'Reservation'
         WHEN acct.provider = 'gcp' THEN 'Committed Use Discount'
         ELSE 'Commitment Discount' END AS "CommitmentDiscountType",
    CASE WHEN li.commitment_discount_id = '' THEN NULL
         WHEN li.commitment_discount_status <> '' THEN li.commitment_discount_status
         WHEN li.charge_category = 'Usage' THEN 'Used' END AS "CommitmentDiscountStatus",
    ts.tags                         AS "Tags",
    acct.slug                       AS "x_Account",
    acct.provider                   AS "x_Provider",
    team.slug                       AS "x_Team",
    mdl.slug                        AS "x_Model",
    dep.slug                        AS "x_Deployment",
    li.ingest_run_id                AS "x_IngestRunId",
    li.source_line                  AS "x_SourceLine"
FROM attribution_costlineitem li
JOIN attribution_cloudaccount acct ON acct.id = li.account_id
JOIN attribution_tagset ts ON ts.id = li.tag_set_id
LEFT JOIN attribution_team team ON team.id = li.team_id
LEFT JOIN attribution_model mdl ON mdl.id = li.model_id
LEFT JOIN attribution_deployment dep ON dep.id = li.deployment_id
JOIN attribution_ingestrun run ON run.id = li.ingest_run_id AND run.state = 'succeeded'
"""

# FOCUS 1.3 renames the provider columns: ServiceProviderName (who provides the service) and
# HostProviderName (whose infrastructure hosts it). The clouds here are both. ProviderName and
# PublisherName stay for tools in transition (1.3 deprecates, not removes, them).
CREATE_VIEW_1_3 = """
CREATE VIEW focus_line_items_1_3 AS
SELECT f.*, f."ProviderName" AS "ServiceProviderName", f."ProviderName" AS "HostProviderName"
FROM focus_line_items f
"""

_COLUMNS = (
    "ADD COLUMN service_subcategory varchar(64) NOT NULL DEFAULT '', "
    "ADD COLUMN invoice_id varchar(200) NOT NULL DEFAULT '', "
    "ADD COLUMN commitment_discount_status varchar(20) NOT NULL DEFAULT ''"
)
_DROP_COLUMNS = (
    "DROP COLUMN service_subcategory, DROP COLUMN invoice_id, DROP COLUMN commitment_discount_status"
)

FORWARD = f"""
DROP VIEW IF EXISTS focus_line_items_1_3;
DROP VIEW IF EXISTS focus_line_items;
ALTER TABLE attribution_costlineitem {_COLUMNS};
ALTER TABLE attribution_costlineitem_staging {_COLUMNS};
{CREATE_VIEW};
{CREATE_VIEW_1_3};
"""


def _previous_view() -> str:
    import importlib

    return importlib.import_module("attribution.migrations.0009_line_item_tag_sets").CREATE_VIEW


class Migration(migrations.Migration):
    dependencies = [("attribution", "0017_role_permissions")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    FORWARD,
                    reverse_sql=(
                        "DROP VIEW IF EXISTS focus_line_items_1_3; DROP VIEW IF EXISTS focus_line_items;"
                        f"ALTER TABLE attribution_costlineitem {_DROP_COLUMNS};"
                        f"ALTER TABLE attribution_costlineitem_staging {_DROP_COLUMNS};"
                        f"{_previous_view()};"
                    ),
                )
            ],
            state_operations=[
                migrations.AddField(
                    model_name="costlineitem",
                    name="service_subcategory",
                    field=models.CharField(blank=True, default="", max_length=64),
                ),
                migrations.AddField(
                    model_name="costlineitem",
                    name="invoice_id",
                    field=models.CharField(blank=True, default="", max_length=200),
                ),
                migrations.AddField(
                    model_name="costlineitem",
                    name="commitment_discount_status",
                    field=models.CharField(blank=True, default="", max_length=20),
                ),
            ],
        )
    ]
