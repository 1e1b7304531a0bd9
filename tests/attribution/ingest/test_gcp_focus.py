"""FOCUS 1.2 rules the FinOps Foundation's validator never checks (issue 14), on Google Cloud rows:
unit prices and the costs they give (ListUnitPrice-C-005, ListCost-C-009, ContractedUnitPrice-C-006
and C-011), committed use discount fees (CommitmentDiscountId-C-005, CommitmentDiscountQuantity-C-005),
PricingCategory and SkuPriceId, on rows written as the export writes them, on the shared samples
(../shared/data/billing/gcp) and, in tests/attribution/focus/test_conditional_columns.py, on the demo
export. The checks are the rules themselves in SQL over the view (price_rule_breaks).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from attribution.focus.checks import focus_rule_violations
from attribution.ingest import mapping
from tests.attribution.focus.test_conditional_columns import price_rule_breaks
from tests.attribution.ingest.test_focus_conformance import ingest as ingest_sample
from tests.attribution.ingest.test_focus_conformance import rows, violations

pytestmark = pytest.mark.django_db

D = Decimal


# --- The price rule, on its own ------------------------------------------------------------------


def test_a_stated_price_that_gives_the_rounded_cost_back_is_the_price_and_restates_the_cost():
    # Cloud KMS, from a real export: 0.06 a month x 0.008805256 months = 0.00052831536, which the
    # export rounds to 0.000528.
    assert mapping.gcp_unit_price(
        cost=D("0.000528"), quantity=D("0.008805256"), stated=[D("0.06")], unit_quantity=D("1")
    ) == (D("0.0600000000"), D("0.0005283154"))
    # The quantity rounded to 6 places too: 0.026 x 0.054942 misses 0.001429 by 5.08e-7, within
    # half a micro-dollar plus the price of half a unit in the quantity's last place.
    assert mapping.gcp_unit_price(
        cost=D("0.001429"), quantity=D("0.054942"), stated=[D("0.026")], unit_quantity=None
    ) == (D("0.0260000000"), D("0.0014284920"))


def test_a_price_is_per_pricing_unit_quantity_units():
    # $0.40 per 1,000,000 requests: 2,500,000 requests cost 1.
    assert mapping.gcp_unit_price(
        cost=D("1"), quantity=D("2500000"), stated=[D("0.4")], unit_quantity=D("1000000")
    ) == (D("0.0000004000"), D("1.0000000000"))
    # An export whose price is already per unit (pricing_unit_quantity describes the display).
    assert mapping.gcp_unit_price(
        cost=D("1"), quantity=D("2500000"), stated=[D("0.0000004")], unit_quantity=D("1000000")
    ) == (D("0.0000004000"), D("1.0000000000"))


def test_usage_across_pricing_tiers_gets_the_price_its_cost_implies():
    # 10 GiB of egress: the first tier's price (0.12) does not give 1.1 (1 GiB at 0.2, 9 at 0.1).
    assert mapping.gcp_unit_price(
        cost=D("1.1"), quantity=D("10"), stated=[D("0.12")], unit_quantity=D("1")
    ) == (D("0.1100000000"), D("1.1000000000"))
    # A free tier partly used, no price in the export: 0.000005 for 0.0000231983 GiB.
    price, cost = mapping.gcp_unit_price(cost=D("0.000005"), quantity=D("0.0000231983"), stated=[],
                                         unit_quantity=None)  # fmt: skip
    assert abs(price * D("0.0000231983") - cost) <= D("1e-9") and abs(cost - D("0.000005")) < D("0.0000005")


def test_no_price_is_invented_when_none_gives_the_cost_back():
    # 0.154321 over 123.457 units: neither the stated price nor any 10-place price gives it back.
    assert mapping.gcp_unit_price(
        cost=D("0.154321"), quantity=D("123457000"), stated=[D("0.5")], unit_quantity=D("1")
    ) == (None, D("0.154321"))
    assert mapping.gcp_unit_price(cost=D("1"), quantity=None, stated=[D("0.5")], unit_quantity=None) == (
        D("0.5000000000"), D("1"),
    )  # fmt: skip
    assert mapping.gcp_unit_price(cost=None, quantity=D("1"), stated=[], unit_quantity=None) == (None, None)


def test_commitment_fees_pricing_categories_and_sku_price_ids():
    assert mapping.gcp_is_commitment_fee(
        cost_type="regular", sku_description="Commitment v1: Cpu in Americas for 1 Year", subscription_id=""
    )
    assert mapping.gcp_is_commitment_fee(cost_type="regular", sku_description="GPU", subscription_id="769c")
    assert not mapping.gcp_is_commitment_fee(
        cost_type="tax", sku_description="Commitment v1: Cpu in Americas for 1 Year", subscription_id=""
    )
    assert not mapping.gcp_is_commitment_fee(
        cost_type="regular", sku_description="N1 Predefined Instance Core", subscription_id=""
    )
    standard = mapping.gcp_commitment_fee_columns(
        subscription_id="", sku_id="5E4F-1A2B-3C4D", sku_description=SPEND_CUD, project_id="ml-prod",
        region="us-central1", pricing_unit="hour", currency="EUR",
    )  # fmt: skip
    assert (standard["commitment_discount_id"], standard["commitment_discount_category"],
            standard["commitment_discount_unit"], standard["commitment_discount_quantity"]) == (
        "ml-prod/us-central1/5E4F-1A2B-3C4D", "Spend", "EUR", D(0),
    )  # fmt: skip
    assert (
        mapping.gcp_pricing_category(
            cost_type="regular", sku_description="Spot Preemptible Nvidia L4 GPU", covered=False, fee=False
        )
        == "Dynamic"
    )
    covered = mapping.gcp_pricing_category(cost_type="regular", sku_description="L4", covered=True, fee=False)
    assert covered == "Committed"
    assert mapping.gcp_pricing_category(cost_type="tax", sku_description="", covered=False, fee=False) == ""
    assert mapping.gcp_sku_price_id(sku_id="A1", tier_start_amount=D("0")) == "A1"
    assert mapping.gcp_sku_price_id(sku_id="A1", tier_start_amount=D("1024.000")) == "A1/tier/1024"
    assert mapping.gcp_sku_price_id(sku_id="", tier_start_amount=None) == ""


# --- Rows as the export writes them, through the production path ------------------------------------


def _row(**fields) -> dict:
    row = {
        "billing_account_id": "01ABCD-234567-89EFGH",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "CP-CORE", "description": "N2 Instance Core running in Americas"},
        "usage_start_time": "2026-09-01 00:00:00 UTC",
        "usage_end_time": "2026-09-01 01:00:00 UTC",
        "project": {"id": "ml-prod", "name": "ML prod"},
        "location": {"location": "us-central1", "region": "us-central1"},
        "currency": "USD",
        "credits": [],
        "invoice": {"month": "202609"},
        "cost_type": "regular",
    }
    return row | fields


def _price(effective: str, unit: str = "hour", per: str = "1", tier: str = "0", **more: str) -> dict:
    return {"effective_price": effective, "tier_start_amount": tier, "unit": unit,
            "pricing_unit_quantity": per, **more}  # fmt: skip


def _usage(amount: float, unit: str, in_pricing_units: float, pricing_unit: str = "hour") -> dict:
    return {"amount": amount, "unit": unit, "amount_in_pricing_units": in_pricing_units,
            "pricing_unit": pricing_unit}  # fmt: skip


L4_CUD = "Commitment v1: Nvidia L4 GPU in Americas for 1 Year"
SPEND_CUD = "Commitment - dollar based v1: GCE for 1 year"
SPOT_L4 = {"id": "SP-GPU", "description": "Spot Preemptible Nvidia L4 GPU running in Americas"}
EXPORT = [
    # Negotiated prices (newer export): list 0.031611 and contract 0.028450 an hour, cost rounded.
    _row(cost=0.227603, cost_at_list=0.252892, usage=_usage(28800.4428, "seconds", 8.000123),
         price=_price("0.028450", list_price="0.031611")),
    # Priced per 1,000,000 requests; the price of one request is 0.0000004.
    _row(sku={"id": "PS-REQ", "description": "Message Delivery Basic"}, cost=1.234567, cost_at_list=1.234567,
         usage=_usage(3086417.5, "requests", 3086417.5, "count"), price=_price("0.4", "count", "1000000")),
    # Egress in the second tier, across the tier's start: the blended price.
    _row(sku={"id": "EG-1", "description": "Network Internet Egress from Americas to Americas"}, cost=1.1,
         cost_at_list=1.1, usage=_usage(10737418240, "bytes", 10, "gibibyte"),
         price=_price("0.12", "gibibyte", tier="1024")),
    # A resource-based commitment's fee, named by its subscription (detailed export).
    _row(sku={"id": "CUD-GPU", "description": L4_CUD}, cost=1.1544, cost_at_list=1.1544,
         subscription={"instance_id": "769c55ea-c50f-4258-bcf5-04b6688fa5fa"},
         usage=_usage(14400, "seconds", 4), price=_price("0.2886")),
    # A spend-based commitment's fee in a standard export (no subscription): 10 dollars an hour.
    _row(sku={"id": "CUD-USD", "description": SPEND_CUD}, cost=10, usage=_usage(10, "dollars", 10, "dollar")),
    # Usage covered by that commitment: a spot VM with its CUD credit (it counts as Committed).
    _row(sku=SPOT_L4, cost=0.5, usage=_usage(7200, "seconds", 2), price=_price("0.25"),
         credits=[{"name": "Committed use discount: dollar based", "amount": -0.5, "id": "cud-dollar-1",
                   "type": "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE"}]),
    # A spot VM without a commitment.
    _row(sku=SPOT_L4, cost=0.25, usage=_usage(3600, "seconds", 1), price=_price("0.25")),
    # Google's correction of earlier usage: negative usage, a Correction.
    _row(cost=-0.056900, cost_at_list=-0.063222, usage=_usage(-7200, "seconds", -2),
         adjustment_info={"id": "adj-1", "type": "USAGE_CORRECTION", "mode": "PARTIAL_CORRECTION"},
         price=_price("0.028450", list_price="0.031611")),
    _row(sku={"id": "", "description": ""}, cost=0.52, cost_type="tax", usage={"amount": 0}),
]  # fmt: skip


@pytest.fixture
def export(ingest, tmp_path):
    dump = tmp_path / "rows.json"
    dump.write_text("".join(json.dumps(row) + "\n" for row in EXPORT))
    (run,) = ingest([dump], account="gcp-rules", provider="gcp")
    assert run.state == "succeeded" and run.rows_loaded == len(EXPORT)
    assert {column: run.source_sums[column] for column in run.database_sums} == run.database_sums
    return "gcp-rules"


def test_export_rows_meet_the_rules_the_validator_skips(export):
    assert price_rule_breaks(export) == {}
    assert focus_rule_violations(account_slugs=[export]) == {}
    assert violations(export) == {}
    found = rows(
        """SELECT "ChargeDescription", "ChargeClass", "PricingCategory", "SkuPriceId", "ListUnitPrice",
                  "ListCost", "ContractedUnitPrice", "ContractedCost", "BilledCost"
             FROM focus_line_items WHERE "x_Account" = %s AND "ChargeCategory" = 'Usage'
              AND "CommitmentDiscountId" IS NULL ORDER BY "x_SourceLine" """,
        [export],
    )
    assert found == [
        # The stated prices, and the costs they give (the export's, to within half a micro-dollar).
        ("N2 Instance Core running in Americas", None, "Standard", "CP-CORE", D("0.0316110000"),
         D("0.2528918882"), D("0.0284500000"), D("0.2276034994"), D("0.2276030000")),
        ("Message Delivery Basic", None, "Standard", "PS-REQ", D("0.0000004000"), D("1.2345670000"),
         D("0.0000004000"), D("1.2345670000"), D("1.2345670000")),
        ("Network Internet Egress from Americas to Americas", None, "Standard", "EG-1/tier/1024",
         D("0.1100000000"), D("1.1000000000"), D("0.1100000000"), D("1.1000000000"), D("1.1000000000")),
        ("Spot Preemptible Nvidia L4 GPU running in Americas", None, "Dynamic", "SP-GPU", D("0.2500000000"),
         D("0.2500000000"), D("0.2500000000"), D("0.2500000000"), D("0.2500000000")),
        ("N2 Instance Core running in Americas", "Correction", "Standard", "CP-CORE", D("0.0316110000"),
         D("-0.0632220000"), D("0.0284500000"), D("-0.0569000000"), D("-0.0569000000")),
    ]  # fmt: skip


def test_commitment_fees_are_a_purchase_and_the_usage_of_their_commitment(export):
    """A fee row is what the commitment costs that hour: the view shows it as the commitment's
    recurring Purchase (EffectiveCost 0, EffectiveCost-C-005) and the commitment's usage that
    carries the amount (BilledCost 0), so its Usage rows add up to its Purchases (EffectiveCost-C-012)."""
    fees = rows(
        """SELECT "ChargeCategory", "ChargeFrequency", "PricingCategory", "CommitmentDiscountId",
                  "CommitmentDiscountName", "CommitmentDiscountCategory", "CommitmentDiscountType",
                  "CommitmentDiscountStatus", "CommitmentDiscountQuantity", "CommitmentDiscountUnit",
                  "BilledCost", "EffectiveCost"
             FROM focus_line_items WHERE "x_Account" = %s AND "ChargeDescription" LIKE 'Commitment%%'
            ORDER BY "x_SourceLine", "ChargeCategory" """,
        [export],
    )
    assert fees == [
        ("Purchase", "Recurring", "Standard", "769c55ea-c50f-4258-bcf5-04b6688fa5fa",
         L4_CUD, "Usage", "Committed Use Discount", None,
         D("4.0000000000"), "Hours", D("1.1544000000"), D("0")),
        ("Usage", "Usage-Based", "Standard", "769c55ea-c50f-4258-bcf5-04b6688fa5fa",
         L4_CUD, "Usage", "Committed Use Discount", "Used",
         D("0E-10"), "Hours", D("0"), D("1.1544000000")),
        ("Purchase", "Recurring", "Standard", "ml-prod/us-central1/CUD-USD",
         SPEND_CUD, "Spend", "Committed Use Discount", None,
         D("10.0000000000"), "USD", D("10.0000000000"), D("0")),
        ("Usage", "Usage-Based", "Standard", "ml-prod/us-central1/CUD-USD",
         SPEND_CUD, "Spend", "Committed Use Discount", "Used",
         D("0E-10"), "USD", D("0"), D("10.0000000000")),
    ]  # fmt: skip
    assert "EffectiveCost-C-012-C" not in focus_rule_violations(account_slugs=[export])
    covered = rows(
        """SELECT "PricingCategory", "CommitmentDiscountId", "CommitmentDiscountQuantity", "EffectiveCost"
             FROM focus_line_items WHERE "x_Account" = %s AND "CommitmentDiscountId" = 'cud-dollar-1'""",
        [export],
    )
    assert covered == [("Committed", "cud-dollar-1", D("0.5000000000"), D("0E-10"))]
    (totals,) = rows(
        """SELECT sum("BilledCost"), sum("EffectiveCost") FROM focus_line_items WHERE "x_Account" = %s""",
        [export],
    )
    # Amounts as exported: cost + credits, every row.
    expected = sum(
        (D(str(row["cost"])) + sum((D(str(c["amount"])) for c in row["credits"]), D(0)) for row in EXPORT),
        D(0),
    )
    assert totals == (expected, expected)


# --- The shared samples --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "gcp/koku/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv",
        "gcp/koku/2022-08-01_5.csv",
        "gcp/koku/2024-03-01_5.csv",
        "gcp/koku/tmp_example.csv",
    ],
)
def test_shared_samples_meet_the_rules_the_validator_skips(name):
    slug = ingest_sample(name)
    assert price_rule_breaks(slug) == {}
    assert focus_rule_violations(account_slugs=[slug]) == {}
    assert violations(slug) == {}
    (found,) = rows(
        """SELECT count(*), count(*) FILTER (WHERE "ListCost" = "ContractedCost"
                                              AND "ListUnitPrice" = "ContractedUnitPrice"
                                              AND "SkuPriceId" = "SkuId"),
                  count(*) FILTER (WHERE "ListCost" < "BilledCost" - 0.000001)
             FROM focus_line_items WHERE "x_Account" = %s AND "ChargeCategory" = 'Usage'""",
        [slug],
    )
    usage, list_is_contract, list_below_billed = found
    # No cost_at_list in these (older) exports: the list cost is the cost before credits (to within
    # the export's rounding: price x quantity).
    assert usage and list_is_contract == usage and list_below_billed == 0


def test_a_free_trial_credit_leaves_the_list_cost_before_credits():
    slug = ingest_sample("gcp/koku/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv")
    found = rows(
        """SELECT DISTINCT "BilledCost", "ListCost" FROM focus_line_items
            WHERE "x_Account" = %s AND "ChargeDescription" = 'Event Threat Detection Log Ingest Bytes'
              AND "BilledCost" = 0""",
        [slug],
    )
    assert found and all(list_cost > 0 for _billed, list_cost in found)
