"""FOCUS 1.2 conditional columns the exports carry (issue 14): stored per line item and shown by
focus_line_items (focus_line_items_1_3 follows it).

Stored as each export states them (the parsers in attribution/ingest/formats/; "" or null when the
export has none): ListUnitPrice, ContractedUnitPrice, PricingCurrency and its unit prices and
effective cost, SkuMeter, SkuPriceDetails, CommitmentDiscountName/Category/Type/Quantity/Unit,
CapacityReservationId/Status, and the export's own BillingAccountType/SubAccountType. The view
keeps its presentation rules here, as 0018 did: a value the export does not give stays null,
except where FOCUS requires a value the data implies (PricingCurrency is the billing currency when
the export names no other; the PricingCurrency* amounts are then the billing-currency ones).
"""

from django.db import migrations, models

# A usage row whose billed amount is 0 but whose effective amount is not is commitment usage
# (Azure amortization): its list/contracted value is the amortized one, not 0.
_COMMITTED_USAGE = "li.charge_category = 'Usage' AND li.billed_cost = 0 AND li.effective_cost <> 0"
_TAX = "li.charge_category = 'Tax'"
# Unit prices are the price of one PricingUnit of a usage or purchase charge; tax, credits and
# adjustments have none (FOCUS: null on Tax, may be null on the others).
_UNIT_PRICED = "li.charge_category IN ('Usage', 'Purchase')"
_PRICING_CURRENCY = "COALESCE(NULLIF(li.pricing_currency, ''), li.billing_currency)"
_SAME_CURRENCY = f"({_PRICING_CURRENCY}) = li.billing_currency"
_COMMITMENT_QUANTITY = (
    "CASE WHEN li.commitment_discount_id = '' OR li.charge_category NOT IN ('Usage', 'Purchase') "
    "OR li.commitment_discount_unit = '' THEN NULL ELSE li.commitment_discount_quantity END"
)
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
    COALESCE(NULLIF(li.billing_account_type, ''),
             CASE acct.provider WHEN 'aws' THEN 'Management Account' WHEN 'gcp' THEN 'Billing Account'
                  WHEN 'azure' THEN 'Billing Account' ELSE 'Billing Account' END) AS "BillingAccountType",
    NULLIF(li.sub_account_id, '')   AS "SubAccountId",
    CASE WHEN li.sub_account_id = '' THEN NULL
         ELSE COALESCE(NULLIF(li.sub_account_name, ''), li.sub_account_id) END AS "SubAccountName",
    CASE WHEN li.sub_account_id = '' THEN NULL
         ELSE COALESCE(NULLIF(li.sub_account_type, ''),
                       CASE acct.provider WHEN 'aws' THEN 'Member Account' WHEN 'gcp' THEN 'Project'
                            WHEN 'azure' THEN 'Subscription' ELSE 'Sub Account' END) END AS "SubAccountType",
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
    -- SkuMeter only with a SkuId, SkuPriceDetails only with a SkuPriceId (SkuMeter-C-004,
    -- SkuPriceDetails-C-004); the details are the export's price attributes as a JSON object.
    CASE WHEN li.sku_id = '' THEN NULL ELSE NULLIF(li.sku_meter, '') END AS "SkuMeter",
    CASE WHEN li.sku_price_id = '' THEN NULL ELSE NULLIF(li.sku_price_details, '') END AS "SkuPriceDetails",
    -- Unit prices as the export states them, on priced charges only (null on tax, ListUnitPrice-C-004),
    -- in the billing currency; the PricingCurrency* columns in the currency the provider prices in.
    CASE WHEN {_UNIT_PRICED} THEN li.list_unit_price END AS "ListUnitPrice",
    CASE WHEN {_UNIT_PRICED} THEN li.contracted_unit_price END AS "ContractedUnitPrice",
    {_PRICING_CURRENCY}             AS "PricingCurrency",
    CASE WHEN NOT ({_UNIT_PRICED}) THEN NULL
         WHEN li.pricing_currency_list_unit_price IS NOT NULL THEN li.pricing_currency_list_unit_price
         WHEN {_SAME_CURRENCY} THEN li.list_unit_price END AS "PricingCurrencyListUnitPrice",
    CASE WHEN NOT ({_UNIT_PRICED}) THEN NULL
         WHEN li.pricing_currency_contracted_unit_price IS NOT NULL THEN li.pricing_currency_contracted_unit_price
         WHEN {_SAME_CURRENCY} THEN li.contracted_unit_price END AS "PricingCurrencyContractedUnitPrice",
    COALESCE(li.pricing_currency_effective_cost, CASE WHEN {_SAME_CURRENCY} THEN li.effective_cost END)
                                    AS "PricingCurrencyEffectiveCost",
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
         ELSE COALESCE(NULLIF(li.commitment_discount_name, ''),
                       regexp_replace(li.commitment_discount_id, '^.*[/:]', '')) END AS "CommitmentDiscountName",
    CASE WHEN li.commitment_discount_id = '' THEN NULL
         WHEN li.commitment_discount_category IN ('Spend', 'Usage') THEN li.commitment_discount_category
         WHEN li.commitment_discount_id ~* 'savings ?plan' THEN 'Spend' ELSE 'Usage' END
                                    AS "CommitmentDiscountCategory",
    CASE WHEN li.commitment_discount_id = '' THEN NULL
         WHEN li.commitment_discount_type <> '' THEN li.commitment_discount_type
         WHEN li.commitment_discount_id ~* 'savings ?plan' THEN 'Savings Plan'
         WHEN acct.provider = 'aws' THEN 'Reserved Instance'
         WHEN acct.provider = 'azure' THEN 'Reservation'
         WHEN acct.provider = 'gcp' THEN 'Committed Use Discount'
         ELSE 'Commitment Discount' END AS "CommitmentDiscountType",
    CASE WHEN li.commitment_discount_id = '' THEN NULL
         WHEN li.commitment_discount_status <> '' THEN li.commitment_discount_status
         WHEN li.charge_category = 'Usage' THEN 'Used' END AS "CommitmentDiscountStatus",
    -- Quantity and unit of the commitment, on its usage and purchase rows only
    -- (CommitmentDiscountQuantity-C-007), and only as a pair (CommitmentDiscountUnit-C-005/006).
    {_COMMITMENT_QUANTITY}          AS "CommitmentDiscountQuantity",
    CASE WHEN ({_COMMITMENT_QUANTITY}) IS NULL THEN NULL ELSE li.commitment_discount_unit END
                                    AS "CommitmentDiscountUnit",
    NULLIF(li.capacity_reservation_id, '') AS "CapacityReservationId",
    CASE WHEN li.capacity_reservation_id = '' THEN NULL
         ELSE NULLIF(li.capacity_reservation_status, '') END AS "CapacityReservationStatus",
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

CREATE_VIEW_1_3 = """
CREATE VIEW focus_line_items_1_3 AS
SELECT f.*, f."ProviderName" AS "ServiceProviderName", f."ProviderName" AS "HostProviderName"
FROM focus_line_items f
"""

# name, SQL type, Django field (state): the same columns on the line items and on staging (the
# loader's COPY targets, attribution/ingest/loader.py ROW_COLUMNS).
_QUANTITY = {"max_digits": 28, "decimal_places": 10}
_TEXT = {"blank": True, "default": ""}
NEW_COLUMNS = (
    ("list_unit_price", "numeric(28, 10)", models.DecimalField(**_QUANTITY, null=True, blank=True)),
    ("contracted_unit_price", "numeric(28, 10)", models.DecimalField(**_QUANTITY, null=True, blank=True)),
    ("pricing_currency", "varchar(3) NOT NULL DEFAULT ''", models.CharField(max_length=3, **_TEXT)),
    ("pricing_currency_list_unit_price", "numeric(28, 10)", models.DecimalField(**_QUANTITY, null=True, blank=True)),
    ("pricing_currency_contracted_unit_price", "numeric(28, 10)",
     models.DecimalField(**_QUANTITY, null=True, blank=True)),
    ("pricing_currency_effective_cost", "numeric(24, 10)",
     models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True)),
    ("sku_meter", "varchar(300) NOT NULL DEFAULT ''", models.CharField(max_length=300, **_TEXT)),
    ("sku_price_details", "text NOT NULL DEFAULT ''", models.TextField(**_TEXT)),
    ("billing_account_type", "varchar(100) NOT NULL DEFAULT ''", models.CharField(max_length=100, **_TEXT)),
    ("sub_account_type", "varchar(100) NOT NULL DEFAULT ''", models.CharField(max_length=100, **_TEXT)),
    ("commitment_discount_name", "text NOT NULL DEFAULT ''", models.TextField(**_TEXT)),
    ("commitment_discount_category", "varchar(20) NOT NULL DEFAULT ''", models.CharField(max_length=20, **_TEXT)),
    ("commitment_discount_type", "varchar(100) NOT NULL DEFAULT ''", models.CharField(max_length=100, **_TEXT)),
    ("commitment_discount_quantity", "numeric(28, 10)", models.DecimalField(**_QUANTITY, null=True, blank=True)),
    ("commitment_discount_unit", "varchar(100) NOT NULL DEFAULT ''", models.CharField(max_length=100, **_TEXT)),
    ("capacity_reservation_id", "text NOT NULL DEFAULT ''", models.TextField(**_TEXT)),
    ("capacity_reservation_status", "varchar(20) NOT NULL DEFAULT ''", models.CharField(max_length=20, **_TEXT)),
)  # fmt: skip
_ADD = ", ".join(f"ADD COLUMN {name} {kind}" for name, kind, _field in NEW_COLUMNS)
_DROP = ", ".join(f"DROP COLUMN {name}" for name, _kind, _field in NEW_COLUMNS)

FORWARD = f"""
DROP VIEW IF EXISTS focus_line_items_1_3;
DROP VIEW IF EXISTS focus_line_items;
ALTER TABLE attribution_costlineitem {_ADD};
ALTER TABLE attribution_costlineitem_staging {_ADD};
{CREATE_VIEW};
{CREATE_VIEW_1_3};
"""


def _previous_views() -> str:
    import importlib

    previous = importlib.import_module("attribution.migrations.0018_focus_1_2_conformance")
    return f"{previous.CREATE_VIEW}; {previous.CREATE_VIEW_1_3};"


class Migration(migrations.Migration):
    dependencies = [("attribution", "0021_dailycost_sku_and_tag_rollup")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    FORWARD,
                    reverse_sql=(
                        "DROP VIEW IF EXISTS focus_line_items_1_3; DROP VIEW IF EXISTS focus_line_items;"
                        f"ALTER TABLE attribution_costlineitem {_DROP};"
                        f"ALTER TABLE attribution_costlineitem_staging {_DROP};"
                        f"{_previous_views()}"
                    ),
                )
            ],
            state_operations=[
                migrations.AddField(model_name="costlineitem", name=name, field=field)
                for name, _kind, field in NEW_COLUMNS
            ],
        )
    ]
