"""Reads of billed vs estimated spend, allocation results, unallocated cost and estimate accuracy.

Shared by the overview page (attribution/costs/overview.py) and the API (attribution/api/costs.py).

- **Billed** is what the bills say: the DailyCost rollup, or, on the *allocated* basis, AllocatedCost
  for the account-days that allocation has run for (teams then carry their share of shared pools;
  the rest is unallocated with a reason) and DailyCost for account-days not allocated yet.
- **Estimated** is spend from usage for days whose bill has not landed: SpendEstimate rows not yet
  reconciled, for deployments whose account has no DailyCost on that day. Once the bill lands the
  estimate drops out of every figure (billed replaces it) and lives on only in the accuracy figures.

Every read takes the user and scopes rows with `restrict(user)` where they are queried. Amounts
in different currencies are never added; reporting-currency figures convert each charge day at
its own rate and name the rates used.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum

from attribution.currency.services import RateBook, reporting_currency
from attribution.models import AllocatedCost, DailyCost, SpendEstimate, UnallocatedReason

ZERO = Decimal(0)
# The reason shown for team-less cost on account-days that allocation has not run for yet.
REASON_NOT_ALLOCATED = "not_allocated"
REASON_LABELS: dict[str, str] = {
    UnallocatedReason.UNTAGGED: "untagged",
    UnallocatedReason.NO_USAGE: "no usage to split by",
    UnallocatedReason.NO_RULE: "no rule covers it",
    UnallocatedReason.IDLE: "idle capacity",
    UnallocatedReason.RULE_SKIPPED: "a mapping rule that could map it is skipped (fix the rule)",
    REASON_NOT_ALLOCATED: "not allocated yet",
}


def reason_label(reason: str) -> str:
    return REASON_LABELS.get(reason, reason.replace("_", " "))


@dataclass(frozen=True)
class CostFilters:
    """Dimension filters shared by every cost read. Ids, or slugs for API callers."""

    day_from: dt.date | None = None
    day_to: dt.date | None = None
    provider: str = ""
    account: str = ""  # slug
    team: str = ""  # slug
    team_id: int | None = None
    unallocated_only: bool = False  # rows without a team
    model: str = ""  # slug
    model_id: int | None = None
    deployment: str = ""  # slug
    currency: str = ""


def _sees_everything(user) -> bool:
    """Whether ScopedQuerySet.restrict lets this user see every row, asked once per user object.

    Every scoped model shares ScopedQuerySet.restrict, so one answer holds for all of them; caching
    it on the (per-request) user saves a role query per read on pages that read several rollups.
    """
    cached = getattr(user, "_inferensys_sees_all_rows", None)
    if cached is None:
        base = DailyCost.objects.all()
        cached = base.restrict(user) is base
        if user is not None and user.is_authenticated:
            user._inferensys_sees_all_rows = cached
    return cached


def _apply(rows: QuerySet, filters: CostFilters, *, estimates: bool = False) -> QuerySet:
    """Filters on AllocatedCost / DailyCost (same column names) or SpendEstimate (`estimates`)."""
    if filters.day_from:
        rows = rows.filter(day__gte=filters.day_from)
    if filters.day_to:
        rows = rows.filter(day__lte=filters.day_to)
    if filters.provider:
        rows = rows.filter(**{"deployment__provider" if estimates else "provider": filters.provider})
    if filters.account:
        rows = rows.filter(**{"deployment__account__slug" if estimates else "account__slug": filters.account})
    if filters.unallocated_only:
        rows = rows.filter(team__isnull=True)
    if filters.team:
        rows = rows.filter(team__slug=filters.team)
    if filters.team_id is not None:
        rows = rows.filter(team_id=filters.team_id)
    if filters.model:
        rows = rows.filter(model__slug=filters.model)
    if filters.model_id is not None:
        rows = rows.filter(model_id=filters.model_id)
    if filters.deployment:
        rows = rows.filter(deployment__slug=filters.deployment)
    if filters.currency:
        rows = rows.filter(**{"currency" if estimates else "billing_currency": filters.currency.upper()})
    return rows


# --- The two bases of billed cost ---------------------------------------------------------------------


def allocated_account_day() -> Exists:
    """For DailyCost rows: has allocation run for this row's account and day?"""
    return Exists(AllocatedCost.objects.filter(account_id=OuterRef("account_id"), day=OuterRef("day")))


def billed_sources(*, user, filters: CostFilters, basis: str) -> list[QuerySet]:
    """Querysets whose rows together are the billed cost on `basis` ('allocated' or 'billed')."""
    daily = _apply(DailyCost.objects.restrict(user), filters)
    if basis != "allocated":
        return [daily]
    allocated = _apply(AllocatedCost.objects.restrict(user), filters)
    return [allocated, daily.filter(~allocated_account_day())]


# --- Estimates ----------------------------------------------------------------------------------------


def bill_landed() -> Q:
    """For SpendEstimate rows: has the bill for the estimate's deployment and day landed?"""
    by_account = DailyCost.objects.filter(day=OuterRef("day"), account_id=OuterRef("deployment__account_id"))
    by_provider = DailyCost.objects.filter(day=OuterRef("day"), provider=OuterRef("deployment__provider"))
    return Q(Exists(by_account), deployment__account__isnull=False) | Q(
        Exists(by_provider), deployment__account__isnull=True
    )


def estimates_open(*, user, filters: CostFilters) -> QuerySet[SpendEstimate]:
    """Estimates that still stand in for a bill: not reconciled, and no bill for their day yet."""
    rows = SpendEstimate.objects.restrict(user).filter(reconciled_at__isnull=True)
    return _apply(rows, filters, estimates=True).exclude(bill_landed())


# --- Accuracy -----------------------------------------------------------------------------------------


@dataclass
class EstimateAccuracy:
    deployment_id: int
    deployment_slug: str
    provider: str
    currency: str
    days: int = 0
    estimated: Decimal = ZERO
    billed: Decimal = ZERO
    # Mean absolute percentage error over the days with a positive bill; None without such days.
    mape_percent: Decimal | None = None
    # (estimated - billed) / billed over the whole period: positive means we over-estimate.
    bias_percent: Decimal | None = None
    last_day: dt.date | None = None
    # (basis, factor) in force for new estimates (filled by the overview selector).
    calibration_factors: list[tuple[str, Decimal]] = field(default_factory=list)

    @property
    def error(self) -> Decimal:
        return self.estimated - self.billed


def estimate_accuracy(*, user, filters: CostFilters | None = None) -> list[EstimateAccuracy]:
    """Accuracy of reconciled estimates per deployment and currency, compared day by day."""
    rows = _apply(
        SpendEstimate.objects.restrict(user).filter(reconciled_at__isnull=False),
        filters or CostFilters(),
        estimates=True,
    )
    per_day = (
        rows.values("deployment_id", "deployment__slug", "deployment__provider", "currency", "day")
        .annotate(estimated=Sum("estimated_cost"), billed=Sum("billed_cost"))
        .order_by("deployment__slug", "currency", "day")
    )
    results: dict[tuple[int, str], EstimateAccuracy] = {}
    errors: dict[tuple[int, str], list[Decimal]] = defaultdict(list)
    for row in per_day:
        key = (row["deployment_id"], row["currency"])
        accuracy = results.get(key)
        if accuracy is None:
            accuracy = results[key] = EstimateAccuracy(
                row["deployment_id"], row["deployment__slug"], row["deployment__provider"], row["currency"]
            )
        estimated, billed = row["estimated"] or ZERO, row["billed"] or ZERO
        accuracy.days += 1
        accuracy.estimated += estimated
        accuracy.billed += billed
        accuracy.last_day = row["day"]
        if billed > 0:
            errors[key].append(abs(estimated - billed) / billed * 100)
    for key, accuracy in results.items():
        if errors[key]:
            accuracy.mape_percent = sum(errors[key], ZERO) / len(errors[key])
        if accuracy.billed > 0:
            accuracy.bias_percent = (accuracy.estimated - accuracy.billed) / accuracy.billed * 100
    return list(results.values())


# --- Summary: billed, estimated, total per group --------------------------------------------------------

# group_by -> (column on DailyCost/AllocatedCost, column on SpendEstimate)
SUMMARY_GROUPS: dict[str, tuple[str, str]] = {
    "team": ("team__slug", "team__slug"),
    "model": ("model__slug", "model__slug"),
    "provider": ("provider", "deployment__provider"),
    "deployment": ("deployment__slug", "deployment__slug"),
    "day": ("day", "day"),
}
SUMMARY_BASES = ("allocated", "billed")


@dataclass
class Figures:
    billed: Decimal = ZERO
    estimated: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.billed + self.estimated


@dataclass
class ReportingFigures(Figures):
    currency: str = ""
    # Distinct (rate date, rate) pairs used; empty when no conversion was needed.
    rates: set[tuple[dt.date, Decimal]] = field(default_factory=set)
    # Charge days whose amount could not be converted (no rate within the window): the
    # reporting figures then leave those amounts out, and say so.
    missing_rate_days: set[dt.date] = field(default_factory=set)


@dataclass
class SummaryRow:
    key: str | None
    currency: str
    figures: Figures
    reporting: ReportingFigures


def _accumulate(
    cells: dict[tuple[str | None, str], tuple[Figures, ReportingFigures]],
    *,
    key,
    currency: str,
    day: dt.date,
    amount: Decimal,
    estimated: bool,
    rates: RateBook,
) -> None:
    key = None if key is None else str(key)
    if (key, currency) not in cells:
        cells[(key, currency)] = (Figures(), ReportingFigures(currency=rates.to_currency))
    figures, reporting = cells[(key, currency)]
    conversion = rates.convert(amount=amount, day=day, currency=currency)
    if estimated:
        figures.estimated += amount
    else:
        figures.billed += amount
    if conversion is None:
        reporting.missing_rate_days.add(day)
        return
    if conversion.rate_date is not None:
        reporting.rates.add((conversion.rate_date, conversion.rate))
    if estimated:
        reporting.estimated += conversion.amount
    else:
        reporting.billed += conversion.amount


def cost_summary(*, user, group_by: str, basis: str, filters: CostFilters) -> list[SummaryRow]:
    """Billed, estimated and total per group and currency, plus reporting-currency figures.

    Rows are read grouped by (group, currency, day) so that each day converts at its own rate: a
    bounded number of queries (one per source, one for the rates) whatever the range.
    """
    billed_column, estimate_column = SUMMARY_GROUPS[group_by]
    raw: list[tuple[object, str, dt.date, Decimal, bool]] = []
    for source in billed_sources(user=user, filters=filters, basis=basis):
        for row in (
            source.values(group=F(billed_column), currency=F("billing_currency"), charge_day=F("day"))
            .annotate(amount=Sum("billed_cost"))
            .order_by()
        ):
            raw.append((row["group"], row["currency"], row["charge_day"], row["amount"] or ZERO, False))
    for row in (
        estimates_open(user=user, filters=filters)
        .values(group=F(estimate_column), cur=F("currency"), charge_day=F("day"))
        .annotate(amount=Sum("estimated_cost"))
        .order_by()
    ):
        raw.append((row["group"], row["cur"], row["charge_day"], row["amount"] or ZERO, True))
    if not raw:
        return []
    rates = RateBook(
        currencies={item[1] for item in raw},
        to_currency=reporting_currency(),
        start=min(item[2] for item in raw),
        end=max(item[2] for item in raw),
    )
    cells: dict[tuple[str | None, str], tuple[Figures, ReportingFigures]] = {}
    for group, currency, day, amount, estimated in raw:
        _accumulate(
            cells, key=group, currency=currency, day=day, amount=amount, estimated=estimated, rates=rates
        )
    ordered = sorted(cells.items(), key=lambda item: (item[0][0] is None, item[0][0] or "", item[0][1]))
    return [
        SummaryRow(key, currency, figures, reporting) for (key, currency), (figures, reporting) in ordered
    ]


# --- Unallocated by reason -----------------------------------------------------------------------------


def unallocated_summary(*, user, filters: CostFilters) -> list[SummaryRow]:
    """Unallocated billed cost per reason and currency (key = reason), with reporting figures.

    On account-days that allocation has covered the reason comes from AllocatedCost; elsewhere
    team-less cost is `not_allocated` (allocation has not run for it yet).
    """
    allocated = (
        _apply(AllocatedCost.objects.restrict(user), filters)
        .exclude(unallocated_reason="")
        .values(group=F("unallocated_reason"), currency=F("billing_currency"), charge_day=F("day"))
        .annotate(amount=Sum("billed_cost"))
        .order_by()
    )
    pending = (
        _apply(DailyCost.objects.restrict(user), filters)
        .filter(team__isnull=True)
        .filter(~allocated_account_day())
        .values(currency=F("billing_currency"), charge_day=F("day"))
        .annotate(amount=Sum("billed_cost"))
        .order_by()
    )
    raw = [(row["group"], row["currency"], row["charge_day"], row["amount"] or ZERO) for row in allocated]
    raw += [
        (REASON_NOT_ALLOCATED, row["currency"], row["charge_day"], row["amount"] or ZERO) for row in pending
    ]
    if not raw:
        return []
    rates = RateBook(
        currencies={item[1] for item in raw},
        to_currency=reporting_currency(),
        start=min(item[2] for item in raw),
        end=max(item[2] for item in raw),
    )
    cells: dict[tuple[str | None, str], tuple[Figures, ReportingFigures]] = {}
    for reason, currency, day, amount in raw:
        _accumulate(
            cells, key=reason, currency=currency, day=day, amount=amount, estimated=False, rates=rates
        )
    ordered = sorted(cells.items(), key=lambda item: (-item[1][0].billed, item[0][0] or "", item[0][1]))
    return [
        SummaryRow(key, currency, figures, reporting) for (key, currency), (figures, reporting) in ordered
    ]
