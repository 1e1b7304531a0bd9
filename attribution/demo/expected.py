"""Exact totals of the demo exports (`expected_totals.json`), so an ingest can be checked to the cent.

Every amount is summed as Decimal from the very strings written to the files, and written back as
a plain decimal string. The FOCUS rules used (the same as attribution/ingest/mapping.py):

AWS CUR 2.0 (dataset "cur2")
    BilledCost    = line_item_unblended_cost, for every line item type (sum = the invoice).
    EffectiveCost = AWS amortization, as in the AWS CUR query library "amortized cost" CASE and the
                    CUR user guide pages on Savings Plans / reservations:
        Usage, Tax, Credit, Refund, Fee (not an RI fee) .... line_item_unblended_cost
        Fee with a reservation/savings plan ARN (upfront) .. 0
        SavingsPlanCoveredUsage ............................ savings_plan_savings_plan_effective_cost
        SavingsPlanNegation, SavingsPlanUpfrontFee ......... 0
        SavingsPlanRecurringFee ............................ savings_plan_total_commitment_to_date
                                                             - savings_plan_used_commitment (unused part)
        DiscountedUsage .................................... reservation_effective_cost
        RIFee ..................... reservation_unused_amortized_upfront_fee_for_billing_period
                                    + reservation_unused_recurring_fee
    The demo has no reservations (DiscountedUsage/RIFee), a No Upfront Compute Savings Plan, AWS
    credits and (for closed months) tax.

Google Cloud BigQuery detailed export (dataset "resource_v1")
    BilledCost = EffectiveCost = cost + sum(credits[].amount) (credit amounts are negative).
    The billing period is `invoice.month` (Pacific time), not the UTC month of usage_start_time.

Azure cost details, MCA (datasets "actual" and "amortized")
    BilledCost    = sum of costInBillingCurrency over the ACTUAL dataset (reservation-covered usage
                    is 0 there; the monthly reservation payment is a chargeType Purchase row).
    EffectiveCost = sum of costInBillingCurrency over the AMORTIZED dataset (no Purchase row; the
                    reservation is spread over covered usage + chargeType UnusedReservation rows).
    Row by row (Microsoft's FOCUS conversion): BilledCost is cost except 0 for Reservation usage
    and UnusedReservation; EffectiveCost is cost except 0 for Reservation Purchase. Either way the
    totals per period are the two sums above.

Structure of expected_totals.json:

    {"generator": {"seed", "days", "start_date", "end_date"},
     "entries": [
       {"provider": "aws", "account": "aws-prod", "billing_period": "2026-10", "dataset": "cur2",
        "version": "current" | "superseded", "execution_id": "...", "files": [relative paths],
        "row_count": 1234, "native_cost_sum": "...", "billed_cost": "...", "effective_cost": "..."},
       {"provider": "gcp", ..., "dataset": "resource_v1", "version": "current", ...},
       {"provider": "azure", ..., "dataset": "actual" | "amortized", "run_id": "...", ...}]}

`row_count` and `native_cost_sum` (line_item_unblended_cost / cost / costInBillingCurrency) are
per dataset file set. `billed_cost` and `effective_cost` are the FOCUS totals of the (account,
billing period); for Azure both datasets of a period carry the same pair (billed from actual,
effective from amortized). A restated AWS period has two entries with different execution ids;
the later one is "current", the earlier "superseded".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ZERO = Decimal(0)

# AWS line item types whose EffectiveCost is the unblended cost.
AWS_EFFECTIVE_IS_UNBLENDED = frozenset(
    {"Usage", "Tax", "Credit", "Refund", "Fee", "BundledDiscount", "EdpDiscount"}
)


def decimal_text(value: Decimal) -> str:
    """Plain notation (never 1E-7), keeping the scale the value has."""
    return format(value, "f")


def aws_effective_cost(row: dict[str, str]) -> Decimal:
    """EffectiveCost of one CUR 2.0 row (values as written to the CSV)."""

    def number(column: str) -> Decimal:
        text = row.get(column, "")
        return Decimal(text) if text else ZERO

    line_item_type = row["line_item_line_item_type"]
    if line_item_type == "Fee" and (
        row.get("reservation_reservation_a_r_n") or row.get("savings_plan_savings_plan_a_r_n")
    ):
        return ZERO
    if line_item_type == "SavingsPlanCoveredUsage":
        return number("savings_plan_savings_plan_effective_cost")
    if line_item_type in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return ZERO
    if line_item_type == "SavingsPlanRecurringFee":
        return number("savings_plan_total_commitment_to_date") - number("savings_plan_used_commitment")
    if line_item_type == "DiscountedUsage":
        return number("reservation_effective_cost")
    if line_item_type == "RIFee":
        return number("reservation_unused_amortized_upfront_fee_for_billing_period") + number(
            "reservation_unused_recurring_fee"
        )
    return number("line_item_unblended_cost")


@dataclass
class Entry:
    provider: str
    account: str
    billing_period: str
    dataset: str
    version: str = "current"
    extra: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    row_count: int = 0
    native_cost_sum: Decimal = ZERO
    billed_cost: Decimal = ZERO
    effective_cost: Decimal = ZERO

    def add(self, *, native: Decimal, billed: Decimal, effective: Decimal) -> None:
        self.row_count += 1
        self.native_cost_sum += native
        self.billed_cost += billed
        self.effective_cost += effective

    def as_json(self) -> dict:
        return {
            "provider": self.provider,
            "account": self.account,
            "billing_period": self.billing_period,
            "dataset": self.dataset,
            "version": self.version,
            **self.extra,
            "files": self.files,
            "row_count": self.row_count,
            "native_cost_sum": decimal_text(self.native_cost_sum),
            "billed_cost": decimal_text(self.billed_cost),
            "effective_cost": decimal_text(self.effective_cost),
        }


@dataclass
class ExpectedTotals:
    generator: dict
    entries: list[Entry] = field(default_factory=list)

    def entry(self, **kwargs) -> Entry:
        entry = Entry(**kwargs)
        self.entries.append(entry)
        return entry

    def write(self, path: Path) -> None:
        document = {"generator": self.generator, "entries": [entry.as_json() for entry in self.entries]}
        path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
