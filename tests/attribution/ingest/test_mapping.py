"""One test per line item / charge type of every provider's FOCUS rule (attribution/ingest/mapping.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from attribution.ingest import mapping
from attribution.ingest.tags import tag_key_normalize, tags_normalize

D = Decimal

# Values of the other money columns of a CUR row, by CUR 2.0 name.
ROW = {
    "savings_plan_savings_plan_effective_cost": D("0.70"),
    "reservation_effective_cost": D("0.55"),
    "savings_plan_total_commitment_to_date": D("100.00"),
    "savings_plan_used_commitment": D("80.00"),
    "reservation_unused_amortized_upfront_fee_for_billing_period": D("3.00"),
    "reservation_unused_recurring_fee": D("2.00"),
}


def aws(line_item_type: str, unblended: str = "1.00") -> tuple[Decimal, str]:
    effective = mapping.aws_effective_cost(
        line_item_type=line_item_type, unblended_cost=D(unblended), amount=ROW.__getitem__
    )
    return effective, mapping.aws_charge_category(line_item_type)


def test_it_keeps_usage_at_unblended_cost():
    assert aws("Usage") == (D("1.00"), "Usage")


def test_it_takes_reservation_effective_cost_for_discounted_usage():
    assert aws("DiscountedUsage", "0") == (D("0.55"), "Usage")


def test_it_takes_savings_plan_effective_cost_for_covered_usage():
    assert aws("SavingsPlanCoveredUsage", "1.00") == (D("0.70"), "Usage")


def test_it_zeroes_savings_plan_negation():
    assert aws("SavingsPlanNegation", "-1.00") == (D("0"), "Usage")


def test_it_zeroes_savings_plan_upfront_fee():
    assert aws("SavingsPlanUpfrontFee", "8760.00") == (D("0"), "Purchase")


def test_it_keeps_only_the_unused_commitment_of_savings_plan_recurring_fee():
    assert aws("SavingsPlanRecurringFee", "100.00") == (D("20.00"), "Purchase")


def test_it_keeps_only_the_unused_part_of_ri_fee():
    assert aws("RIFee", "50.00") == (D("5.00"), "Purchase")


def test_it_treats_fee_as_purchase_at_unblended():
    assert aws("Fee", "120.00") == (D("120.00"), "Purchase")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ec2:us-east-1:123456789012:reserved-instances/4f8c0a8e-1111-2222-3333-444455556666",
        "arn:aws:savingsplans::123456789012:savingsplan/2b4f0a8e-1111-2222-3333-444455556666",
    ],
)
def test_it_zeroes_the_effective_cost_of_an_upfront_commitment_fee(arn):
    """EffectiveCost-C-005: a commitment purchase reaches EffectiveCost through the usage it covers."""
    effective = mapping.aws_effective_cost(
        line_item_type="Fee", unblended_cost=D("21.60"), amount=ROW.__getitem__, commitment_arn=arn
    )
    assert (effective, mapping.aws_charge_category("Fee")) == (D("0"), "Purchase")
    assert mapping.aws_effective_cost(
        line_item_type="Fee", unblended_cost=D("21.60"), amount=ROW.__getitem__, commitment_arn="  "
    ) == D("21.60")


def test_it_treats_tax_as_tax():
    assert aws("Tax", "7.00") == (D("7.00"), "Tax")


@pytest.mark.parametrize("line_item_type", ["Credit", "Refund"])
def test_it_treats_credit_and_refund_as_credit(line_item_type):
    assert aws(line_item_type, "-3.00") == (D("-3.00"), "Credit")


@pytest.mark.parametrize("line_item_type", ["BundledDiscount", "EdpDiscount", "PrivateRateDiscount"])
def test_it_treats_discounts_as_adjustment(line_item_type):
    assert aws(line_item_type, "-2.00") == (D("-2.00"), "Adjustment")


def test_it_nets_gcp_credits_into_billed_cost():
    assert mapping.gcp_billed_cost(cost=D("10.00"), credit_amounts=[D("-2.50"), D("-0.50")]) == D("7.00")


@pytest.mark.parametrize(
    ("cost_type", "category"),
    [("regular", "Usage"), ("tax", "Tax"), ("adjustment", "Adjustment"), ("rounding_error", "Adjustment")],
)
def test_it_maps_gcp_cost_type(cost_type, category):
    assert mapping.gcp_charge_category(cost_type) == category


@pytest.mark.parametrize(
    ("charge_type", "pricing_model", "billed", "effective", "category"),
    [
        ("Usage", "OnDemand", "5", "5", "Usage"),
        ("Usage", "Reservation", "0", "5", "Usage"),
        ("Usage", "SavingsPlan", "0", "5", "Usage"),
        ("UnusedReservation", "Reservation", "0", "5", "Usage"),
        ("UnusedSavingsPlan", "SavingsPlan", "0", "5", "Usage"),
        ("Purchase", "Reservation", "5", "0", "Purchase"),
        ("Purchase", "SavingsPlan", "5", "0", "Purchase"),
        ("Refund", "Reservation", "5", "0", "Purchase"),
        ("Purchase", "", "5", "5", "Purchase"),  # marketplace purchase: not a commitment
        ("Tax", "", "5", "5", "Tax"),
        ("RoundingAdjustment", "", "5", "5", "Adjustment"),
    ],
)
def test_it_applies_microsofts_focus_rules_to_azure_rows(
    charge_type, pricing_model, billed, effective, category
):
    assert mapping.azure_costs(cost=D("5"), charge_type=charge_type, pricing_model=pricing_model) == (
        D(billed),
        D(effective),
    )
    assert mapping.azure_charge_category(charge_type) == category


def test_it_marks_azure_refunds_as_corrections():
    assert mapping.azure_charge_class("Refund") == "Correction"
    assert mapping.azure_charge_class("Usage") == ""


@pytest.mark.parametrize(
    "key", ["user:team", "resourceTags/user:team", "resource_tags_user_team", "Team ", " TEAM", "user:Team"]
)
def test_it_normalizes_tag_keys_across_clouds(key):
    assert tag_key_normalize(key) == "team"


def test_it_drops_empty_tag_values_and_keeps_the_first_of_clashing_keys():
    assert tags_normalize({"user:team": "search", "Team": "other", "env": " ", "org": "trey"}) == {
        "team": "search",
        "org": "trey",
    }
