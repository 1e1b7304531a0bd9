"""Reads of spend for governance: billed where the bill has landed, estimated (SpendEstimate) where
it has not, per local day, converted to the budget's currency.

Both sides are on one basis, the one estimates are made and reconciled on: the bill's effective
(amortized) cost after allocation. Billed is AllocatedCost's effective cost where allocation has
run for the row's account and day (a team's share of the shared pools included, a commitment spread
over the days it covers), else DailyCost's. A team's estimate carries its pool shares at the
amortized unit cost, so a scope's history and the days still estimated add up the same way; read
as the tagged billed cost, the history left the pool shares and the commitments out and the first
estimated day looked like a jump in level (and a forecast fitted to it climbed from there).

Governance reads attribution's tables through these selectors only, so a move of attribution's
code does not reach the budget logic. DailyCost days are the providers' (UTC) charge days; a
period in another time zone takes the days whose date falls in it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, Sum

from attribution.costs.selectors import allocated_account_day
from attribution.currency.services import RateBook
from attribution.models import AllocatedCost, DailyCost, SpendEstimate

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
    return scopes_spend_daily(requests=[SpendRequest(scope, start, end, currency)])[0]


@dataclass(frozen=True)
class SpendRequest:
    scope: SpendScope
    start: dt.date
    end: dt.date  # exclusive
    currency: str


def _in_scope(scope: SpendScope, *, day, start, end, team_id, model_id, provider, account_id) -> bool:
    return (
        start <= day < end
        and (scope.team_id is None or scope.team_id == team_id)
        and (scope.model_id is None or scope.model_id == model_id)
        and (not scope.provider or scope.provider == provider)
        and (scope.account_id is None or scope.account_id == account_id)
    )


def _row_in_scope(request: SpendRequest, row: dict) -> bool:
    return _in_scope(
        request.scope,
        day=row["day"],
        start=request.start,
        end=request.end,
        team_id=row["team_id"],
        model_id=row["model_id"],
        provider=row["provider"],
        account_id=row["account_id"],
    )


@dataclass
class _ScopeRows:
    billed: list[dict]  # allocated basis: AllocatedCost, and DailyCost where allocation has not run
    estimated: list[dict]  # open estimates whose bill has not landed
    books: dict[str, RateBook]  # a rate book per requested currency


def _scope_rows(requests: list[SpendRequest], *, user=None, extra: dict | None = None) -> _ScopeRows:
    """The rows of every request's scope read together (three queries), per day, currency and the
    scope columns (plus `extra` values), over what `user` may see (everything without a user), and
    one rate book per requested currency covering every row's currency."""
    extra = extra or {}
    billed_filter, estimated_filter = Q(pk__in=[]), Q(pk__in=[])
    for request in requests:
        days = Q(day__gte=request.start, day__lt=request.end)
        billed_filter |= _scope_filter(request.scope, through_deployment=False) & days
        estimated_filter |= _scope_filter(request.scope, through_deployment=True) & days

    def rows_of(model):
        return model.objects.all() if user is None else model.objects.restrict(user)

    columns = ("day", "team_id", "model_id", "provider", "account_id")
    billed = [
        row
        for rows in (
            rows_of(AllocatedCost).filter(billed_filter),
            rows_of(DailyCost).filter(billed_filter).filter(~allocated_account_day()),
        )
        for row in rows.values(*columns, currency=F("billing_currency"), **extra)
        .annotate(amount=Sum("effective_cost"))
        .order_by()
    ]
    estimated = list(
        rows_of(SpendEstimate)
        .filter(estimated_filter, reconciled_at__isnull=True)
        .exclude(_bill_landed())
        .values(
            "day",
            "team_id",
            "model_id",
            "currency",
            provider=F("deployment__provider"),
            account_id=F("deployment__account_id"),
            **extra,
        )
        .annotate(amount=Sum("estimated_cost"))
        .order_by()
    )
    first, last = min(r.start for r in requests), max(r.end for r in requests)
    currencies = {row["currency"] for row in billed + estimated}
    # Which rate applies to a day does not depend on the range a book was loaded for.
    books = {
        target: RateBook(currencies=currencies, to_currency=target, start=first, end=last)
        for target in {r.currency for r in requests}
    }
    return _ScopeRows(billed=billed, estimated=estimated, books=books)


def scopes_spend_daily(*, requests: list[SpendRequest]) -> list[DailySpend]:
    """`scope_spend_daily` for many scopes at once (a page of budgets): three queries and one rate
    lookup per currency whatever the number of scopes, not three per scope.

    The rows of every scope are read together, per day, currency and the scope columns, and each
    scope adds up its own per (day, currency) before converting, as a lone read would, so a
    figure is the same to the last decimal whichever way it was read. Missing rates are listed in
    (day, currency) order."""
    if not requests:
        return []
    read = _scope_rows(requests)
    results = []
    for request in requests:
        book = read.books[request.currency]
        result = DailySpend(currency=request.currency)
        for rows, target in ((read.billed, result.billed), (read.estimated, result.estimated)):
            per_day_currency: dict[tuple[dt.date, str], Decimal] = defaultdict(lambda: ZERO)
            for row in rows:
                if _row_in_scope(request, row):
                    per_day_currency[(row["day"], row["currency"])] += row["amount"] or ZERO
            sums: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
            for (day, row_currency), amount in sorted(per_day_currency.items()):
                converted = book.convert(amount=amount, day=day, currency=row_currency)
                if converted is None:
                    result.missing_rates.append((day, row_currency))
                    continue
                sums[day] += converted.amount
            target.update(sums)
        results.append(result)
    return results


# What a scope's spend can be broken down by: the columns billed (AllocatedCost, DailyCost) and
# estimated (SpendEstimate) rows share.
BREAKDOWN_DIMENSIONS = ("team", "model", "deployment")


@dataclass
class SpendPart:
    """One value's share of a scope's spend: `key` is its slug, None for rows without one."""

    key: str | None
    billed: Decimal = ZERO
    estimated: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return (self.billed + self.estimated).quantize(CENT)


@dataclass
class SpendBreakdown:
    currency: str
    parts: list[SpendPart]  # largest first
    # The scope's spend as `scopes_spend_daily` gives it (billed total + estimated total).
    total: Decimal
    estimated_total: Decimal
    missing_rates: list[tuple[dt.date, str]] = field(default_factory=list)


def scopes_spend_breakdown(
    *, requests: list[SpendRequest], dimensions: list[str], user
) -> list[SpendBreakdown]:
    """The spend of each request's scope (as budgets measure it: allocated billed + open estimates, in
    the request's currency) split by the request's dimension (one of BREAKDOWN_DIMENSIONS), over the
    rows `user` may see. Three queries and a rate lookup per currency for any number of requests.

    Each value's billed and estimated amounts are converted per (day, currency) as the scope's
    own figure is, and `total` is that figure, so the parts add up to what the budget says."""
    if not requests:
        return []
    keys = {f"{name}_key": F(f"{name}__slug") for name in BREAKDOWN_DIMENSIONS}
    read = _scope_rows(requests, user=user, extra=keys)
    results = []
    for request, dimension in zip(requests, dimensions, strict=True):
        book = read.books[request.currency]
        parts: dict[str | None, SpendPart] = {}
        missing: set[tuple[dt.date, str]] = set()
        totals = {"billed": ZERO, "estimated": ZERO}
        for rows, side in ((read.billed, "billed"), (read.estimated, "estimated")):
            per_value: dict[tuple[str | None, dt.date, str], Decimal] = defaultdict(lambda: ZERO)
            per_day: dict[tuple[dt.date, str], Decimal] = defaultdict(lambda: ZERO)
            for row in rows:
                if _row_in_scope(request, row):
                    per_value[(row[f"{dimension}_key"], row["day"], row["currency"])] += row["amount"] or ZERO
                    per_day[(row["day"], row["currency"])] += row["amount"] or ZERO
            for (day, row_currency), amount in per_day.items():
                converted = book.convert(amount=amount, day=day, currency=row_currency)
                if converted is None:
                    missing.add((day, row_currency))
                else:
                    totals[side] += converted.amount
            for (key, day, row_currency), amount in per_value.items():
                converted = book.convert(amount=amount, day=day, currency=row_currency)
                if converted is not None:
                    part = parts.setdefault(key, SpendPart(key=key))
                    setattr(part, side, getattr(part, side) + converted.amount)
        results.append(
            SpendBreakdown(
                currency=request.currency,
                parts=sorted(parts.values(), key=lambda part: (-part.total, part.key or "")),
                total=totals["billed"].quantize(CENT) + totals["estimated"].quantize(CENT),
                estimated_total=totals["estimated"].quantize(CENT),
                missing_rates=sorted(missing),
            )
        )
    return results
