"""FOCUS 1.2 conditional columns the providers' data carries (issue 14): unit prices where the export
has a rate or a cost to derive it from, commitment quantities and units of savings plans, Azure
reservations and Google committed use discounts, and a FOCUS export's own ServiceSubcategory.

The FinOps Foundation's validator cannot catch a gap here: its rules conditioned on "ChargeClass is
not Correction" (ListUnitPrice-C-005, ContractedUnitPrice-C-006/C-011, ListCost-C-009,
CommitmentDiscountQuantity-C-005) compare `ChargeClass <> 'Correction'`, which is never true for a
null ChargeClass (every regular charge), so they pass on any data. These tests check those rules.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from attribution.focus.checks import focus_rule_violations
from attribution.focus.conditional import unit_price_from_cost
from attribution.focus.tables import service_classify_keeping
from attribution.ingest import mapping, services
from tests.attribution.ingest.test_focus_conformance import ingest, rows, violations
from tests.attribution.ingest_fixtures import csv_write, focus_parquet_write, focus_row

pytestmark = pytest.mark.django_db

# The validator's comparison for "A x B MUST match C" (ColumnByColumnEqualsColumnValueGenerator).
_MISMATCH = "abs({a} * {b} - {c}) > 1e-9 * greatest(abs({c}), 1)"
LIST_MISMATCH = _MISMATCH.format(a='"ListUnitPrice"', b='"PricingQuantity"', c='"ListCost"')
CONTRACTED_MISMATCH = _MISMATCH.format(a='"ContractedUnitPrice"', b='"PricingQuantity"', c='"ContractedCost"')


def price_rule_breaks(slug: str) -> dict[str, int]:
    """Rows of the account breaking the unit price rules the validator skips (see the docstring)."""
    (found,) = rows(
        f"""SELECT
              count(*) FILTER (WHERE "ChargeCategory" IN ('Usage', 'Purchase') AND "ListUnitPrice" IS NULL),
              count(*) FILTER (WHERE "ChargeCategory" IN ('Usage', 'Purchase')
                                 AND "ContractedUnitPrice" IS NULL),
              count(*) FILTER (WHERE "ListUnitPrice" IS NOT NULL AND "PricingQuantity" IS NOT NULL
                                 AND {LIST_MISMATCH}),
              count(*) FILTER (WHERE "ContractedUnitPrice" IS NOT NULL AND "PricingQuantity" IS NOT NULL
                                 AND {CONTRACTED_MISMATCH}),
              count(*) FILTER (WHERE "ChargeCategory" IN ('Usage', 'Purchase')
                                 AND "CommitmentDiscountId" IS NOT NULL
                                 AND "CommitmentDiscountQuantity" IS NULL)
             FROM focus_line_items WHERE "x_Account" = %s""",  # noqa: S608
        [slug],
    )
    names = (
        "ListUnitPrice-C-005 null",
        "ContractedUnitPrice-C-006 null",
        "ListCost-C-009 ListUnitPrice x PricingQuantity <> ListCost",
        "ContractedUnitPrice-C-011 ContractedUnitPrice x PricingQuantity <> ContractedCost",
        "CommitmentDiscountQuantity-C-005 null",
    )
    return {name: count for name, count in zip(names, found, strict=True) if count}


# --- The rules, on their own ------------------------------------------------------------------------


def test_a_unit_price_is_derived_from_a_cost_only_when_it_reproduces_the_cost():
    assert unit_price_from_cost(Decimal("98.32"), Decimal("2")) == Decimal("49.16")
    assert unit_price_from_cost(Decimal("16.4"), Decimal("41000000")) == Decimal("0.0000004")
    # 2.5 / 3 = 0.8333333333 (10 places) x 3 = 2.4999999999: within 1e-9 x 2.5 of the cost.
    assert unit_price_from_cost(Decimal("2.5"), Decimal("3")) == Decimal("0.8333333333")
    # A cost the export rounded to micro-dollars over 123.457 units: no 10-place price gives it back.
    assert unit_price_from_cost(Decimal("0.154321"), Decimal("123.457")) is None
    assert unit_price_from_cost(Decimal("1"), Decimal("0")) is None
    assert unit_price_from_cost(None, Decimal("1")) is unit_price_from_cost(Decimal("1"), None) is None
    assert unit_price_from_cost(Decimal("-1"), Decimal("1")) is None


def test_the_batch_path_derives_the_same_unit_prices_as_the_row_path():
    """vec.unit_price_from_cost (Arrow, decimal256) against the rule itself, on random costs and
    quantities of every magnitude the columns hold and on the edge cases."""
    import random

    import pyarrow as pa

    from attribution.ingest import batch as vec

    generator = random.Random(14)
    places = Decimal("0.0000000001")
    costs = [(Decimal(generator.randint(0, 10**9)) / 10 ** generator.randint(0, 8)).quantize(places)
             for _ in range(5000)]  # fmt: skip
    quantities = [(Decimal(generator.randint(0, 10**8)) / 10 ** generator.randint(0, 6)).quantize(places)
                  for _ in range(5000)]  # fmt: skip
    costs += [None, Decimal("-1"), Decimal("0.154321"), Decimal("2.5"), Decimal("16.4"), Decimal("5")]
    quantities += [Decimal("1"), Decimal("1"), Decimal("123.457"), Decimal("3"), Decimal("41000000"), None]
    derived = vec.unit_price_from_cost(pa.array(costs, vec.MONEY_TYPE), pa.array(quantities, vec.MONEY_TYPE))
    expected = [
        unit_price_from_cost(cost, quantity) for cost, quantity in zip(costs, quantities, strict=True)
    ]
    assert derived.to_pylist() == expected
    assert sum(price is not None for price in expected) > 1000


def test_a_committed_use_discount_credit_is_found_by_type_or_by_its_legacy_name():
    credits = [
        {"type": "SUSTAINED_USAGE_DISCOUNT", "name": "Sustained Usage Discount", "id": "sud"},
        {
            "type": "COMMITTED_USAGE_DISCOUNT",
            "full_name": "Committed Usage Discount - GPU",
            "id": "CommitmentV1-a",
        },
    ]
    found = mapping.gcp_commitment_credit(credits, amounts=[Decimal("-9"), Decimal("-2")])
    assert found == {"id": "CommitmentV1-a", "name": "Committed Usage Discount - GPU", "category": "Usage",
                     "amount": Decimal("-2")}  # fmt: skip
    spend = mapping.gcp_commitment_credit(
        [{"type": "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE", "name": "Spend-based CUD", "id": "c-1"}],
        amounts=[Decimal("-3")],
    )
    assert spend["category"] == "Spend"
    legacy = mapping.gcp_commitment_credit(
        [{"name": "Committed Usage Discount: CPU", "amount": -1}], amounts=[Decimal("-1")]
    )
    assert legacy["category"] == "Usage" and legacy["id"] == "Committed Usage Discount: CPU"
    assert mapping.gcp_commitment_credit([{"type": "PROMOTION", "id": "p"}], amounts=[Decimal("-1")]) is None
    columns = mapping.gcp_commitment_columns(
        spend, cost=Decimal("10"), pricing_quantity=Decimal("4"), pricing_unit="hour", currency="EUR"
    )
    assert (columns["commitment_discount_quantity"], columns["commitment_discount_unit"]) == (
        Decimal("3"),
        "EUR",
    )
    half = mapping.gcp_commitment_columns(
        found, cost=Decimal("4"), pricing_quantity=Decimal("8"), pricing_unit="hour", currency="USD"
    )
    assert (half["commitment_discount_quantity"], half["commitment_discount_unit"]) == (Decimal("4"), "hour")


def test_a_focus_exports_subcategory_is_kept_when_its_category_allows_it():
    assert service_classify_keeping("aws", "AmazonEC2", "Compute", "Containers") == ("Compute", "Containers")
    # Not a subcategory of the name's category: the table's.
    assert service_classify_keeping("aws", "AmazonEC2", "Compute", "Object Storage") == (
        "Compute", "Virtual Machines",
    )  # fmt: skip
    assert service_classify_keeping("oci", "Block Volumes", "Storage", "Block Storage") == (
        "Storage", "Block Storage",
    )  # fmt: skip
    assert service_classify_keeping("oci", "Block Volumes", "Storage", "") == ("Storage", "Other (Storage)")


# --- Google Cloud ------------------------------------------------------------------------------------


def test_gcp_demo_rows_get_list_prices_contracted_costs_and_their_committed_use_discount(demo_cloud):
    slug = demo_cloud("gcp")
    # Every usage row is priced, and price x quantity gives its list and contracted cost: the export
    # rounds cost to micro-dollars, so the cost is restated as the stated price x the quantity.
    assert price_rule_breaks(slug) == {}
    assert focus_rule_violations(account_slugs=[slug]) == {}
    assert violations(slug) == {}
    (counts,) = rows(
        """SELECT count(*), count(*) FILTER (WHERE "ListUnitPrice" = "ContractedUnitPrice"),
                  count(*) FILTER (WHERE "SkuPriceId" = "SkuId"),
                  count(*) FILTER (WHERE "ContractedCost" < "BilledCost" - 0.000001
                                     OR ("ContractedCost" > "BilledCost" + 0.000001
                                         AND "ChargeDescription" ~ %s))
             FROM focus_line_items WHERE "x_Account" = %s AND "ChargeCategory" = 'Usage'""",
        ["^(Standard Storage|Network|Log Storage|Regional Kubernetes|Commitment)", slug],
    )
    usage, list_is_contract, sku_priced, moved = counts
    # The demo has no negotiated prices (list = contract) and one price tier per SKU; no row's
    # contracted cost moved by a micro-dollar or more (rows without credits: storage,
    # network, logging, GKE, commitment fees; credits only lower BilledCost).
    assert usage and list_is_contract == usage and sku_priced == usage and moved == 0
    # The stated price is kept: 0.026 a GiB-month for storage, whatever the rounding of the row.
    assert rows(
        """SELECT DISTINCT "ListUnitPrice" FROM focus_line_items
            WHERE "x_Account" = %s AND "ChargeDescription" = 'Standard Storage US Multi-region'""",
        [slug],
    ) == [(Decimal("0.0260000000"),)]
    # ContractedCost is the cost before credits: a row with a sustained use discount keeps its
    # contracted cost, the discount shows in BilledCost and EffectiveCost only.
    discounted = rows(
        """SELECT "ContractedCost", "BilledCost", "ContractedUnitPrice" * "PricingQuantity"
             FROM focus_line_items WHERE "x_Account" = %s AND "ChargeDescription" LIKE '%%Instance Core%%'
              AND "BilledCost" < "ContractedCost" AND "CommitmentDiscountId" IS NULL LIMIT 1""",
        [slug],
    )
    assert discounted, "the demo has sustained use discounts on on-demand cores"
    contracted, billed, priced_cost = discounted[0]
    assert contracted == priced_cost and billed == (contracted * Decimal("0.8")).quantize(Decimal("0.000001"))

    cud = rows(
        """SELECT DISTINCT "CommitmentDiscountId" LIKE 'CommitmentV1-%%', "CommitmentDiscountName",
                  "CommitmentDiscountCategory", "CommitmentDiscountType", "CommitmentDiscountStatus",
                  "CommitmentDiscountUnit", "CommitmentDiscountQuantity" = "PricingQuantity", "EffectiveCost",
                  "PricingCategory", "ChargeFrequency"
             FROM focus_line_items WHERE "x_Account" = %s AND "CommitmentDiscountId" IS NOT NULL
              AND "ChargeDescription" NOT LIKE 'Commitment v1:%%'""",
        [slug],
    )
    # The CUD covers the reserved pool's GPUs fully: the whole pricing quantity, nothing left to pay.
    assert cud == [
        (True, "Committed Usage Discount - Nvidia H100 80GB GPU", "Usage", "Committed Use Discount", "Used",
         "Hours", True, Decimal("0E-10"), "Committed", "Usage-Based"),
    ]  # fmt: skip
    # The commitment's hourly fee (the covered usage nets to 0): shown as the recurring Purchase of
    # the commitment its subscription names (the GPU hours it buys, EffectiveCost 0) and the usage of
    # that commitment carrying the fee as its EffectiveCost (BilledCost 0), migration 0029.
    fees = rows(
        """SELECT DISTINCT "ChargeCategory", "ChargeFrequency", "PricingCategory",
                  "CommitmentDiscountId" ~ %s AS guid,
                  "CommitmentDiscountCategory", "CommitmentDiscountStatus", "CommitmentDiscountQuantity",
                  "CommitmentDiscountUnit", "BilledCost" > 0, "EffectiveCost" > 0
             FROM focus_line_items WHERE "x_Account" = %s AND "ChargeDescription" LIKE 'Commitment v1:%%'
            ORDER BY 1""",
        ["^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", slug],
    )
    assert fees == [
        (
            "Purchase",
            "Recurring",
            "Standard",
            True,
            "Usage",
            None,
            Decimal("8.0000000000"),
            "Hours",
            True,
            False,
        ),
        ("Usage", "Usage-Based", "Standard", True, "Usage", "Used", Decimal("0E-10"), "Hours", False, True),
    ]
    assert "EffectiveCost-C-012-C" not in focus_rule_violations(account_slugs=[slug])
    spot = rows(
        """SELECT DISTINCT "PricingCategory" FROM focus_line_items
            WHERE "x_Account" = %s AND "ChargeDescription" LIKE 'Spot Preemptible%%'""",
        [slug],
    )
    assert spot == [("Dynamic",)]


# --- AWS -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batches", [True, False])
def test_aws_demo_savings_plan_rows_get_prices_and_commitment_quantities(demo_cloud, monkeypatch, batches):
    """Both load paths. The savings plan is a spend commitment (USD): covered usage uses its
    EffectiveCost of it, the daily recurring fee buys 24 hours of commitment, and what the covered
    usage did not use is the fee's unused part, so per day used + unused = the commitment."""
    from attribution.ingest.formats.aws_cur import AwsCurParser

    monkeypatch.setattr(AwsCurParser, "batch_capable", batches)
    slug = demo_cloud("aws")
    assert price_rule_breaks(slug) == {}
    assert violations(slug) == {}
    kinds = rows(
        """SELECT li.charge_category, f."CommitmentDiscountStatus", f."CommitmentDiscountUnit",
                  count(*), count(*) FILTER (WHERE f."CommitmentDiscountQuantity" = f."EffectiveCost")
             FROM focus_line_items f JOIN attribution_costlineitem li ON li.id = f."x_LineItemId"
            WHERE f."x_Account" = %s AND f."CommitmentDiscountId" LIKE 'arn:aws:savingsplans:%%'
            GROUP BY 1, 2, 3 ORDER BY 1, 2""",
        [slug],
    )
    # ("Usage", None): the Purchase half of a recurring fee line with unused commitment (0029).
    assert {(category, status, unit) for category, status, unit, *_ in kinds} <= {
        ("Usage", "Used", "USD"), ("Usage", "Unused", "USD"), ("Purchase", None, "USD"),
        ("Usage", None, "USD"),
    }  # fmt: skip
    assert "EffectiveCost-C-012-C" not in focus_rule_violations(account_slugs=[slug])
    negations = rows(
        """SELECT DISTINCT "CommitmentDiscountQuantity", "ContractedCost", "ListCost",
                  "ContractedUnitPrice" = "ListUnitPrice"
             FROM focus_line_items
            WHERE "x_Account" = %s AND "ChargeDescription" LIKE 'SavingsPlanCoveredUsage by %%'""",
        [slug],
    )
    # The negation line moves the covered usage's cost to the plan; it uses none of the plan itself and
    # its contracted cost is its (zero) usage at the on-demand rate it cancels.
    assert negations == [(Decimal("0E-10"), Decimal("0E-10"), Decimal("0E-10"), True)]
    fee = "\"ChargeDescription\" = '1 year No Upfront Compute Savings Plan'"
    per_day = rows(
        f"""SELECT "ChargePeriodStart"::date,
                  sum("CommitmentDiscountQuantity") FILTER (WHERE NOT {fee}),
                  sum("CommitmentDiscountQuantity")
                      FILTER (WHERE {fee} AND "CommitmentDiscountStatus" = 'Unused'),
                  sum("BilledCost") FILTER (WHERE {fee}),
                  sum("ListUnitPrice" * "PricingQuantity") FILTER (WHERE {fee})
             FROM focus_line_items WHERE "x_Account" = %s AND "CommitmentDiscountId" IS NOT NULL
            GROUP BY 1 ORDER BY 1""",  # noqa: S608
        [slug],
    )
    assert per_day
    for day, used, unused, commitment, fee_at_list in per_day:
        assert used + (unused or 0) == commitment, day
        assert fee_at_list == commitment, day  # the fee's list price is its own rate


@pytest.mark.parametrize("batches", [True, False])
def test_savings_plan_purchases_state_the_commitment_they_buy(tmp_path, monkeypatch, batches):
    """A fully used recurring fee is the purchase of the hour's commitment
    (savings_plan_total_commitment_to_date); an upfront fee, of what it paid. Billed in EUR, so the
    unit is EUR. A commitment fee's list and contracted price is its own rate. Both load paths."""
    from attribution.ingest.formats.aws_cur import AwsCurParser
    from tests.attribution.ingest_fixtures import cur2_row

    monkeypatch.setattr(AwsCurParser, "batch_capable", batches)
    arn = "arn:aws:savingsplans::123456789012:savingsplan/5c1b9c32-0a44-4c4e-9ab5-8c1f0a6e2d11"
    plan = {"savings_plan_savings_plan_a_r_n": arn, "line_item_currency_code": "EUR", "pricing_unit": "",
            "pricing_public_on_demand_cost": "", "line_item_product_code": "ComputeSavingsPlans"}  # fmt: skip
    file_rows = [
        cur2_row(identity_line_item_id="fee", line_item_line_item_type="SavingsPlanRecurringFee",
                 line_item_usage_amount="1", line_item_unblended_cost="2.5", line_item_unblended_rate="2.5",
                 savings_plan_total_commitment_to_date="2.5", savings_plan_used_commitment="2.5", **plan),
        cur2_row(identity_line_item_id="upfront", line_item_line_item_type="SavingsPlanUpfrontFee",
                 line_item_usage_amount="1", line_item_unblended_cost="8760", line_item_unblended_rate="8760",
                 **plan),
    ]  # fmt: skip
    header = [*file_rows[0].keys()]
    path = csv_write(tmp_path / "cur.csv", header, file_rows)
    account = services.cloud_account_get_or_create(slug="sp", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    assert services.ingest_run_execute(run_id=run.pk).state == "succeeded"
    found = rows(
        """SELECT "ChargeCategory", "ChargeFrequency", "CommitmentDiscountCategory",
                  "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "ListUnitPrice",
                  "ContractedUnitPrice"
             FROM focus_line_items WHERE "x_Account" = 'sp' ORDER BY "x_SourceLine" """
    )
    assert found == [
        ("Purchase", "Recurring", "Spend", Decimal("2.5000000000"), "EUR", Decimal("2.5000000000"),
         Decimal("2.5000000000")),
        ("Purchase", "One-Time", "Spend", Decimal("8760.0000000000"), "EUR", Decimal("8760.0000000000"),
         Decimal("8760.0000000000")),
    ]  # fmt: skip


def test_cur_rows_without_a_public_rate_get_the_price_their_public_cost_implies(tmp_path):
    from tests.attribution.ingest_fixtures import cur2_row

    file_rows = [
        cur2_row(identity_line_item_id="priced", pricing_public_on_demand_rate="",
                 pricing_public_on_demand_cost="7.5", line_item_usage_amount="3"),
        cur2_row(identity_line_item_id="rounded", pricing_public_on_demand_rate="",
                 pricing_public_on_demand_cost="0.154321", line_item_usage_amount="123.457"),
    ]  # fmt: skip
    header = [*file_rows[0].keys()]
    path = csv_write(tmp_path / "cur.csv", header, file_rows)
    account = services.cloud_account_get_or_create(slug="nopublic", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    assert services.ingest_run_execute(run_id=run.pk).state == "succeeded"
    found = rows(
        """SELECT "ListUnitPrice", "ListCost" FROM focus_line_items WHERE "x_Account" = 'nopublic'
            ORDER BY "x_SourceLine" """
    )
    assert found == [(Decimal("2.5000000000"), Decimal("7.5000000000")), (None, Decimal("0.1543210000"))]


# --- Azure ---------------------------------------------------------------------------------------------


def test_azure_demo_reservation_rows_are_measured_in_hours(demo_cloud):
    slug = demo_cloud("azure")
    found = rows(
        """SELECT "ChargeCategory", "CommitmentDiscountStatus", "CommitmentDiscountCategory",
                  "CommitmentDiscountUnit", count(*),
                  count(*) FILTER (WHERE "CommitmentDiscountQuantity" = "PricingQuantity")
             FROM focus_line_items WHERE "x_Account" = %s AND "CommitmentDiscountId" IS NOT NULL
            GROUP BY 1, 2, 3, 4 ORDER BY 1, 2""",
        [slug],
    )
    assert [row[:4] for row in found] == [
        ("Purchase", None, "Usage", "Hours"), ("Usage", "Unused", "Usage", "Hours"),
        ("Usage", "Used", "Usage", "Hours"),
    ]  # fmt: skip
    # Usage rows: the hours used or left unused. The purchase: the hours it buys, not the export's
    # Quantity (1 reservation): a monthly payment buys 730 hours.
    assert all(count == same for category, *_, count, same in found if category == "Usage")
    assert rows(
        """SELECT DISTINCT "CommitmentDiscountQuantity" FROM focus_line_items
            WHERE "x_Account" = %s AND "ChargeCategory" = 'Purchase'""",
        [slug],
    ) == [(Decimal(730),)]
    assert "CommitmentDiscountQuantity-C-005 null" not in price_rule_breaks(slug)
    assert violations(slug) == {}


def test_azure_ea_savings_plan_rows_are_measured_in_the_billing_currency():
    slug = ingest("azure/finops-toolkit-ea/EA_AmortizedCost_Small.csv")
    found = rows(
        """SELECT DISTINCT "CommitmentDiscountCategory", "CommitmentDiscountUnit",
                  "CommitmentDiscountQuantity" = abs("EffectiveCost")
             FROM focus_line_items WHERE "x_Account" = %s AND "CommitmentDiscountId" LIKE '%%/savingsPlans/%%'
              AND "ChargeCategory" = 'Usage'""",
        [slug],
    )
    assert found == [("Spend", "USD", True)]
    reserved = rows(
        """SELECT DISTINCT "CommitmentDiscountUnit", "CommitmentDiscountQuantity" = "PricingQuantity"
             FROM focus_line_items WHERE "x_Account" = %s AND "CommitmentDiscountId" LIKE '%%/reservations/%%'
              AND "ChargeCategory" = 'Usage'""",
        [slug],
    )
    assert reserved == [("Hours", True)]
    assert "CommitmentDiscountQuantity-C-005 null" not in price_rule_breaks(slug)


# --- FOCUS exports -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_focus_exports_own_service_subcategory_is_kept(tmp_path, kind):
    export = [
        focus_row(ServiceSubcategory="Containers"),
        focus_row(ServiceName="Amazon Simple Storage Service", ServiceCategory="Storage",
                  ServiceSubcategory="Not A Subcategory", ChargeDescription="S3"),
    ]  # fmt: skip
    header = [*export[0].keys()]
    if kind == "csv":
        path = csv_write(tmp_path / "focus.csv", header, export)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = focus_parquet_write(tmp_path / "focus.parquet", export)
        table = pq.read_table(path)
        subcategories = pa.array([row["ServiceSubcategory"] for row in export], pa.string())
        pq.write_table(table.append_column("ServiceSubcategory", subcategories), path)
    account = services.cloud_account_get_or_create(slug="focus-sub", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    assert services.ingest_run_execute(run_id=run.pk).state == "succeeded"
    found = rows(
        """SELECT "ServiceName", "ServiceCategory", "ServiceSubcategory" FROM focus_line_items
            WHERE "x_Account" = 'focus-sub' ORDER BY "x_SourceLine" """
    )
    assert found == [
        ("Amazon Elastic Compute Cloud", "Compute", "Containers"),
        ("Amazon Simple Storage Service", "Storage", "Object Storage"),
    ]
    assert violations("focus-sub") == {}
