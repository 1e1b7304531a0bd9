"""Our checks of the FOCUS 1.2 rules the FinOps Foundation's validator cannot evaluate
(attribution/focus/checks.py; `make conformance` runs them after the validator), and the mappings
that make the demo data and the real samples meet them (issue 14).

The validator compiles "ChargeClass is not Correction" as `ChargeClass IS NOT NULL AND ChargeClass
<> 'Correction'`, never true for the null ChargeClass of a regular charge; these tests would fail
on rows the validator passes.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from attribution.focus.checks import (
    RULE_IDS,
    RULES,
    focus_rule_examples,
    focus_rule_violations,
    known_break,
    unevaluated_rules,
)
from attribution.ingest import mapping
from tests.attribution.ingest.test_focus_conformance import BILLING, ingest, rows
from tests.attribution.ingest_fixtures import csv_write, focus_row

pytestmark = pytest.mark.django_db


def _focus_export(tmp_path, slug: str, export: list[dict[str, str]]) -> str:
    header = sorted({name for row in export for name in row})
    path = csv_write(tmp_path / f"{slug}.csv", header, export)
    from attribution.ingest import services

    account = services.cloud_account_get_or_create(slug=slug, provider="oci")
    for run in services.ingest_runs_create(account=account, paths=[path]):
        assert services.ingest_run_execute(run_id=run.pk).state == "succeeded"
    return slug


_PRICED = {"ListUnitPrice": "1.5", "ContractedUnitPrice": "1.25", "CommitmentDiscountQuantity": ""}


# --- The checks themselves ----------------------------------------------------------------------------


def test_a_regular_charge_breaking_the_rules_is_reported_where_the_validator_passes_it(tmp_path):
    slug = _focus_export(
        tmp_path,
        "broken",
        [
            focus_row(**_PRICED),  # right: 1.5 x 1 = ListCost, 1.25 x 1 = ContractedCost
            focus_row(**_PRICED | {"ContractedUnitPrice": "", "ChargeDescription": "no contracted price"}),
            focus_row(**_PRICED | {"ListUnitPrice": "2", "ChargeDescription": "list price x 1 <> 1.5"}),
            focus_row(**_PRICED | {"ContractedUnitPrice": "1.2500001", "ChargeDescription": "off by 1e-7"}),
        ],
    )
    # PricingCurrencyContractedUnitPrice is the contracted price when the currencies are the same.
    assert focus_rule_violations(account_slugs=[slug]) == {
        "ContractedUnitPrice-C-006-C": 1,
        "PricingCurrencyContractedUnitPrice-C-005-C": 1,
        "ListCost-C-009-C": 1,
        "ContractedUnitPrice-C-011-C": 1,
    }
    (example,) = focus_rule_examples("ListCost-C-009-C", account_slugs=[slug])
    assert (example["ListUnitPrice"], example["ListCost"]) == (
        Decimal("2.0000000000"),
        Decimal("1.5000000000"),
    )


def test_a_correction_is_exempt_and_the_product_rules_allow_only_the_validators_tolerance(tmp_path):
    slug = _focus_export(
        tmp_path,
        "corrections",
        [
            focus_row(
                **_PRICED | {"ChargeClass": "Correction", "ContractedUnitPrice": "", "ListUnitPrice": "9"}
            ),
            # 1e-9 relative: 1000.0000000005 is 1000 as the validator compares it.
            focus_row(
                **_PRICED | {"ListCost": "1000.0000000005", "ListUnitPrice": "1000", "BilledCost": "1"}
            ),
        ],
    )
    assert focus_rule_violations(account_slugs=[slug]) == {}


def test_commitment_quantity_is_required_on_commitment_rows_only(tmp_path):
    commitment = {"CommitmentDiscountId": "arn:aws:ec2:us-east-1:123:reserved-instances/ri-1",
                  "CommitmentDiscountStatus": "Used", "CommitmentDiscountUnit": "Hours"}  # fmt: skip
    slug = _focus_export(
        tmp_path,
        "commitments",
        [
            focus_row(**_PRICED | commitment | {"CommitmentDiscountQuantity": "1"}),
            focus_row(**_PRICED | commitment),
            focus_row(**_PRICED),
        ],
    )
    assert focus_rule_violations(account_slugs=[slug]) == {"CommitmentDiscountQuantity-C-005-C": 1}


def test_every_rule_is_conditioned_on_a_value_the_validator_compares_with_a_nullable_column():
    """The list is the validator's rules whose condition holds "ChargeClass is not Correction" or
    "CommitmentDiscountStatus is not Unused" (rules 1.2.0.1); each has a spec text and a predicate."""
    assert [rule.id for rule in RULES] == [
        "ListUnitPrice-C-005-C", "ListCost-C-009-C", "ContractedUnitPrice-C-006-C",
        "ContractedUnitPrice-C-011-C", "CommitmentDiscountQuantity-C-005-C", "PricingQuantity-C-005-C",
        "PricingCategory-C-004-C",
        "SkuId-C-005-C", "SkuPriceId-C-005-C", "PricingCurrencyListUnitPrice-C-005-C",
        "PricingCurrencyContractedUnitPrice-C-005-C", "ConsumedQuantity-C-006-C",
    ]  # fmt: skip
    assert all(
        "Correction" in rule.spec and "IS DISTINCT FROM 'Correction'" in rule.violation for rule in RULES
    )


# --- Real samples, per provider ---------------------------------------------------------------------------


# The rules issue 14 found broken on AWS and Azure data; no AWS or Azure dataset may break them.
PRICE_RULES = {
    "ListUnitPrice-C-005-C", "ContractedUnitPrice-C-006-C", "ContractedUnitPrice-C-011-C", "ListCost-C-009-C",
    "CommitmentDiscountQuantity-C-005-C",
}  # fmt: skip


def unlisted(label: str, broken: dict[str, int]) -> dict[str, int]:
    """The broken rules KNOWN_BREAKS does not list for the dataset (what `make conformance` fails)."""
    return {rule: count for rule, count in broken.items() if known_break(label, rule) is None}


@pytest.mark.parametrize(
    "name",
    [
        "aws/koku/2023-06-01.csv",
        "aws/koku/November-2023-None.csv",
        "aws/legacy-cur-parquet/Oct2018-WorkshopCUR-00001.snappy.parquet",
        "azure/finops-toolkit-ea/EA_AmortizedCost_Small.csv",
        "azure/finops-toolkit-ea/EA_ActualCost_Small.csv",
        "azure/koku/azure_camelCased.csv",
        "azure/opencost-billingexports/headersets_PayAsYouGo.csv",
    ],
)
def test_real_aws_and_azure_samples_meet_the_rules_the_validator_skips(name):
    slug = ingest(name)
    broken = focus_rule_violations(account_slugs=[slug])
    assert unlisted(f"sample {name}", broken) == {}
    # Of the price rules only the CUR Parquet's RIFee line whose cost CUR rounded is left (listed):
    # its two rows in the view, the Purchase and the unused usage (migration 0029).
    assert sum(count for rule, count in broken.items() if rule in PRICE_RULES) <= 2


def test_aws_reservation_covered_usage_is_contracted_at_the_public_rate():
    """DiscountedUsage's unblended rate is the reservation's, after the discount: ContractedCost is
    the public on-demand cost and ContractedUnitPrice its rate."""
    slug = ingest("aws/legacy-cur-parquet/Oct2018-WorkshopCUR-00001.snappy.parquet")
    found = rows(
        """SELECT count(*), count(*) FILTER (WHERE "ContractedUnitPrice" = "ListUnitPrice"
                                              AND "ContractedCost" = "ListCost")
             FROM focus_line_items WHERE "x_Account" = %s AND "CommitmentDiscountStatus" = 'Used'
              AND "CommitmentDiscountType" = 'Reserved Instance'""",
        [slug],
    )
    covered, at_public_rate = found[0]
    assert covered and at_public_rate == covered


def test_azure_reservation_purchase_states_the_hours_it_buys():
    slug = ingest("azure/finops-toolkit-ea/EA_ActualCost_Small.csv")
    purchase = rows(
        """SELECT "PricingQuantity", "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "ListUnitPrice",
                  "ListCost", "ContractedUnitPrice", "ContractedCost"
             FROM focus_line_items WHERE "x_Account" = %s AND "ChargeCategory" = 'Purchase'""",
        [slug],
    )
    # Quantity 1 (one reservation), paid monthly (Frequency Recurring): 730 hours a payment.
    ((quantity, hours, unit, list_price, list_cost, contracted_price, contracted_cost),) = purchase
    assert (quantity, hours, unit) == (Decimal(1), Decimal(730), "Hours")
    assert (list_price, list_cost) == (Decimal(0), Decimal(0))  # PayGPrice 0, as the export states
    assert contracted_price * quantity == contracted_cost


@pytest.mark.parametrize(
    ("frequency", "term", "expected"),
    [("Recurring", "36", Decimal(730)), ("OneTime", "12", Decimal(8760)), ("OneTime", "", Decimal(1))],
)
def test_a_reservation_purchase_buys_730_hours_a_month_of_its_term(frequency, term, expected):
    hours = mapping.azure_reservation_purchase_hours(
        quantity=Decimal(1), unit="1 Hour", term=term, frequency=frequency
    )
    assert hours == expected
    assert mapping.azure_reservation_purchase_hours(
        quantity=Decimal(2), unit="1/Month", term="12", frequency="OneTime"
    ) == Decimal(2)


def test_focus_spec_scenarios_break_only_what_the_files_leave_out():
    """The FOCUS spec's own scenario files carry no ContractedUnitPrice and, on their commitment
    rows, no PricingQuantity: the view does not invent them, the checks name them (listed)."""
    folder = "focus/focus-spec-scenarios"
    for index, path in enumerate(sorted((BILLING / folder).glob("*.csv"))):
        slug = ingest(f"{folder}/{path.name}", slug=f"scenario-{index}")
        broken = focus_rule_violations(account_slugs=[slug])
        assert unlisted(f"sample {folder}/{path.name}", broken) == {}


# --- Demo data ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_aws_and_azure_demo_data_meet_the_rules_the_validator_skips(demo_cloud, cloud):
    slug = demo_cloud(cloud)
    broken = focus_rule_violations(account_slugs=[slug])
    assert unlisted(f"demo-{cloud}", broken) == {}
    assert not set(broken) & PRICE_RULES


def test_azure_spot_rows_are_contracted_at_the_price_they_are_charged(demo_cloud):
    slug = demo_cloud("azure")
    spot = rows(
        """SELECT count(*),
                  count(*) FILTER (WHERE "ContractedUnitPrice" < "ListUnitPrice"
                                     AND "ContractedCost" = "BilledCost" AND "ListCost" > "BilledCost")
             FROM focus_line_items WHERE "x_Account" = %s AND "PricingCategory" = 'Dynamic'""",
        [slug],
    )
    total, at_spot_price = spot[0]
    assert total and at_spot_price == total


def test_the_rules_to_cover_are_found_in_a_validator_rules_file():
    """bin/focus_conformance.py fails when the validator's rules file has a rule of this kind that
    RULES does not cover; a condition on a never-null column (ChargeCategory) is evaluated fine."""

    def rule(condition: dict) -> dict:
        return {"Status": "Active", "ValidationCriteria": {"Condition": condition}}

    not_correction = {"CheckFunction": "CheckNotValue", "ColumnName": "ChargeClass", "Value": "Correction"}
    model = {
        "ModelRules": {
            "New-C-001-C": rule({"CheckFunction": "AND", "Items": [not_correction]}),
            "Fine-C-001-C": rule(
                {"CheckFunction": "CheckNotValue", "ColumnName": "ChargeCategory", "Value": "Tax"}
            ),
            "ListCost-C-009-C": rule(not_correction),
        }
    }
    assert unevaluated_rules(model) == {"New-C-001-C", "ListCost-C-009-C"}
    assert unevaluated_rules(model) - RULE_IDS == {"New-C-001-C"}


def test_only_a_commitment_purchase_must_have_no_effective_cost(tmp_path):
    """EffectiveCost-C-005 as the spec words it (the validator checks every Purchase: a quirk)."""
    purchase = {"ChargeCategory": "Purchase", "ChargeFrequency": "One-Time", "BilledCost": "100",
                "ListCost": "100", "ContractedCost": "100", "PricingQuantity": "1", "ListUnitPrice": "100",
                "ContractedUnitPrice": "100"}  # fmt: skip
    support = focus_row(**_PRICED | purchase | {"EffectiveCost": "100", "ChargeDescription": "Support"})
    commitment = {"CommitmentDiscountId": "arn:aws:ec2:us-east-1:123:reserved-instances/ri-9",
                  "CommitmentDiscountCategory": "Usage", "CommitmentDiscountType": "Reserved Instance",
                  "CommitmentDiscountQuantity": "1", "CommitmentDiscountUnit": "Hours"}  # fmt: skip
    bought = focus_row(**_PRICED | purchase | commitment | {"EffectiveCost": "0"})
    assert focus_rule_violations(account_slugs=[_focus_export(tmp_path, "c005ok", [support, bought])]) == {}
    wrong = focus_row(**_PRICED | purchase | commitment | {"EffectiveCost": "100"})
    broken = focus_rule_violations(account_slugs=[_focus_export(tmp_path, "c005bad", [support, wrong])])
    assert broken.get("EffectiveCost-C-005-C") == 1


# --- EffectiveCost-C-012/013: a commitment's sums per billing period ----------------------------


_MONTH = {
    "BillingPeriodStart": "2024-03-01T00:00:00Z",
    "BillingPeriodEnd": "2024-04-01T00:00:00Z",
    "ChargePeriodStart": "2024-03-01T00:00:00Z",
    "ChargePeriodEnd": "2024-04-01T00:00:00Z",
}
_SP = {"CommitmentDiscountId": "arn:aws:savingsplans::123:savingsplan/sp-1", "CommitmentDiscountUnit": "USD",
       "CommitmentDiscountCategory": "Spend"}  # fmt: skip


def _commitment_month(used_effective: str) -> list[dict[str, str]]:
    """A month of one savings plan: its recurring Purchase of 100, covered usage and unused part."""
    return [
        focus_row(**_PRICED | _SP | _MONTH | {
            "ChargeCategory": "Purchase", "ChargeFrequency": "Recurring", "BilledCost": "100",
            "EffectiveCost": "0", "ListCost": "100", "ContractedCost": "100", "PricingQuantity": "100",
            "ListUnitPrice": "1", "ContractedUnitPrice": "1", "CommitmentDiscountQuantity": "100"}),
        focus_row(**_PRICED | _SP | {
            "BilledCost": "0", "EffectiveCost": used_effective, "CommitmentDiscountStatus": "Used",
            "CommitmentDiscountQuantity": used_effective}),
        focus_row(**_PRICED | _SP | {
            "BilledCost": "0", "EffectiveCost": "10", "CommitmentDiscountStatus": "Unused",
            "CommitmentDiscountQuantity": "10", "ConsumedQuantity": ""}),
    ]  # fmt: skip


def test_a_commitments_usage_must_add_up_to_its_purchases_in_a_whole_billing_period(tmp_path):
    assert (
        focus_rule_violations(account_slugs=[_focus_export(tmp_path, "c012ok", _commitment_month("90"))])
        == {}
    )
    slug = _focus_export(tmp_path, "c012bad", _commitment_month("89.99"))
    assert focus_rule_violations(account_slugs=[slug]) == {"EffectiveCost-C-012-C": 1}
    (example,) = focus_rule_examples("EffectiveCost-C-012-C", account_slugs=[slug])
    assert (example["left_sum"], example["right_sum"]) == (
        Decimal("99.9900000000"),
        Decimal("100.0000000000"),
    )


def test_a_billing_period_the_dataset_does_not_hold_whole_is_not_checked(tmp_path):
    # The purchase's charge period is the month, but no charge of the dataset reaches its end.
    month = _commitment_month("50")
    month[0] |= {"ChargePeriodEnd": "2024-03-02T00:00:00Z"}
    assert focus_rule_violations(account_slugs=[_focus_export(tmp_path, "c012open", month)]) == {}
