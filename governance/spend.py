"""Reads of spend for governance: billed (DailyCost) where the bill has landed, estimated
(SpendEstimate) where it has not, per local day, converted to the budget's currency.

Governance reads attribution's tables through these selectors only, so a move of attribution's
code does not reach the budget logic. DailyCost days are the providers' (UTC) charge days; a
period in another time zone takes the days whose date falls in it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, Sum

from attribution.currency.services import RateBook
from attribution.models import DailyCost, SpendEstimate

ZERO = Decimal("0")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SpendScope:
    team_id: int | None = None
    model_id: int | None = None
    provider: str = ""
    account_id: int | None = None

    @classmethod
    def of_budget(cls, budget) -> SpendScope:
        return cls(
            team_id=budget.team_id,
            model_id=budget.model_id,
            provider=budget.provider,
            account_id=budget.account_id,
        )


@dataclass
class DailySpend:
    currency: str
    billed: dict[dt.date, Decimal] = field(default_factory=dict)
    estimated: dict[dt.date, Decimal] = field(default_factory=dict)
    # (day, currency) figures left out because no exchange rate was found.
    missing_rates: list[tuple[dt.date, str]] = field(default_factory=list)

    @property
    def billed_total(self) -> Decimal:
        return sum(self.billed.values(), ZERO).quantize(CENT)

    @property
    def estimated_total(self) -> Decimal:
        return sum(self.estimated.values(), ZERO).quantize(CENT)

    @property
    def total(self) -> Decimal:
        return self.billed_total + self.estimated_total

    def series(self, start: dt.date, end: dt.date) -> list[tuple[dt.date, Decimal]]:
        """Billed + estimated per day over [start, end), zero where nothing was spent."""
        days = []
        day = start
        while day < end:
            days.append((day, self.billed.get(day, ZERO) + self.estimated.get(day, ZERO)))
            day += dt.timedelta(days=1)
        return days


def _scope_filter(scope: SpendScope, *, through_deployment: bool) -> Q:
    condition = Q()
    if scope.team_id is not None:
        condition &= Q(team_id=scope.team_id)
    if scope.model_id is not None:
        condition &= Q(model_id=scope.model_id)
    if scope.provider:
        condition &= (
            Q(deployment__provider=scope.provider) if through_deployment else Q(provider=scope.provider)
        )
    if scope.account_id is not None:
        condition &= (
            Q(deployment__account_id=scope.account_id)
            if through_deployment
            else Q(account_id=scope.account_id)
        )
    return condition


def _bill_landed() -> Q:
    """For SpendEstimate rows: the bill of the estimate's deployment (its account, else provider) and
    day is in DailyCost, so the bill counts and the estimate no longer does."""
    by_account = DailyCost.objects.filter(day=OuterRef("day"), account_id=OuterRef("deployment__account_id"))
    by_provider = DailyCost.objects.filter(day=OuterRef("day"), provider=OuterRef("deployment__provider"))
    return Q(Exists(by_account), deployment__account__isnull=False) | Q(
        Exists(by_provider), deployment__account__isnull=True
    )


def scope_spend_daily(*, scope: SpendScope, start: dt.date, end: dt.date, currency: str) -> DailySpend:
    """Spend of the scope per day over [start, end) in `currency` (converted with each day's rate)."""
    billed_rows = (
        DailyCost.objects.filter(_scope_filter(scope, through_deployment=False), day__gte=start, day__lt=end)
        .values("day", "billing_currency")
        .annotate(amount=Sum("billed_cost"))
        .order_by()
    )
    estimated_rows = (
        SpendEstimate.objects.filter(
            _scope_filter(scope, through_deployment=True),
            day__gte=start,
            day__lt=end,
            reconciled_at__isnull=True,
        )
        .exclude(_bill_landed())
        .values("day", "currency")
        .annotate(amount=Sum("estimated_cost"))
        .order_by()
    )
    billed = [(row["day"], row["billing_currency"], row["amount"]) for row in billed_rows]
    estimated = [(row["day"], row["currency"], row["amount"]) for row in estimated_rows]
    book = RateBook(
        currencies={row[1] for row in billed + estimated}, to_currency=currency, start=start, end=end
    )
    result = DailySpend(currency=currency)
    for rows, target in ((billed, result.billed), (estimated, result.estimated)):
        sums: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
        for day, row_currency, amount in rows:
            converted = book.convert(amount=amount or ZERO, day=day, currency=row_currency)
            if converted is None:
                result.missing_rates.append((day, row_currency))
                continue
            sums[day] += converted.amount
        target.update(sums)
    return result
