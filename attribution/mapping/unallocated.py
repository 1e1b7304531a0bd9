"""Reads for the Unallocated page: billed cost no team carries, by reason, account, service and
resource, its trend, and the open rule suggestions that would give it an owner.

Only admin and finance see team-less cost (ScopedQuerySet.restrict); for anyone else every figure
here is empty and the page says why. Reasons, the trend, accounts and services come from the
rollups (AllocatedCost, DailyCost), the top untagged resources from DailyResourceCost: this page
reads no line items.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Abs

from attribution import design
from attribution.costs import selectors as cost_selectors
from attribution.costs.selectors import CostFilters, _apply, _sees_everything, allocated_account_day
from attribution.models import AllocatedCost, DailyCost, DailyResourceCost, RuleSuggestion, SuggestionState

ZERO = Decimal(0)
RESOURCE_LIMIT = 25
DEFAULT_DAYS = 90
REASON_COLOURS = {
    "untagged": "#dc2626",
    "no_usage": "#f59e0b",
    "no_rule": "#8b5cf6",
    "idle": "#64748b",
    "not_allocated": "#94a3b8",
}


@dataclass
class Group:
    key: str
    currency: str
    billed: Decimal
    label: str = ""
    share: Decimal | None = None  # of all unallocated billed cost of that currency


@dataclass
class UnallocatedPage:
    visible: bool
    start: dt.date | None = None
    end: dt.date | None = None
    billed_total: dict[str, Decimal] = field(default_factory=dict)
    unallocated_total: dict[str, Decimal] = field(default_factory=dict)
    by_reason: list[Group] = field(default_factory=list)
    by_account: list[Group] = field(default_factory=list)
    by_service: list[Group] = field(default_factory=list)
    by_resource: list[Group] = field(default_factory=list)
    trend: dict = field(default_factory=dict)
    suggestions: list[RuleSuggestion] = field(default_factory=list)

    @property
    def shares(self) -> list[tuple[str, Decimal, Decimal, Decimal | None]]:
        return [
            (
                currency,
                amount,
                self.billed_total.get(currency, ZERO),
                amount / self.billed_total[currency] * 100 if self.billed_total.get(currency) else None,
            )
            for currency, amount in sorted(self.unallocated_total.items())
        ]


def _unallocated_rows(*, user, filters: CostFilters):
    """(allocated rows with a reason, DailyCost rows of account-days not allocated yet), team-less."""
    allocated = _apply(AllocatedCost.objects.restrict(user), filters).exclude(unallocated_reason="")
    pending = (
        _apply(DailyCost.objects.restrict(user), filters)
        .filter(team__isnull=True)
        .filter(~allocated_account_day())
    )
    return allocated, pending


def _grouped(*, user, filters: CostFilters, column: str, label_column: str | None = None) -> list[Group]:
    allocated, pending = _unallocated_rows(user=user, filters=filters)
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    labels: dict[str, str] = {}
    for source in (allocated, pending):
        group = F(column)
        if column == "unallocated_reason" and source is pending:
            group = Value(cost_selectors.REASON_NOT_ALLOCATED)  # DailyCost has no reason: not allocated yet
        values = {"group": group, "currency": F("billing_currency")}
        if label_column:
            values["label"] = F(label_column)
        for row in source.values(**values).annotate(amount=Sum("billed_cost")).order_by():
            key = str(row["group"] or "")
            totals[(key, row["currency"])] += row["amount"] or ZERO
            if label_column:
                labels[key] = row["label"] or key
    per_currency: dict[str, Decimal] = defaultdict(Decimal)
    for (_, currency), amount in totals.items():
        per_currency[currency] += amount
    groups = [
        Group(
            key=key,
            currency=currency,
            billed=amount,
            label=labels.get(key, key) or "—",
            share=amount / per_currency[currency] * 100 if per_currency[currency] else None,
        )
        for (key, currency), amount in totals.items()
    ]
    return sorted(groups, key=lambda group: -group.billed)


def _by_resource(*, filters: CostFilters) -> list[Group]:
    """The untagged resources billed most in the range, from the DailyResourceCost rollup (team-less,
    deployment-less spend per day and resource), RESOURCE_LIMIT of them."""
    if filters.day_from is None or filters.day_to is None:
        return []
    rows = (
        DailyResourceCost.objects.filter(day__gte=filters.day_from, day__lte=filters.day_to)
        .values("resource", "billing_currency")
        .annotate(amount=Sum("billed_cost"), size=Abs(Sum("billed_cost")))
        .order_by("-size", "resource", "billing_currency")[:RESOURCE_LIMIT]
    )
    return [
        Group(
            key=row["resource"], currency=row["billing_currency"], billed=row["amount"], label=row["resource"]
        )
        for row in rows
    ]


def _trend(*, user, filters: CostFilters, currency: str) -> dict:
    allocated, pending = _unallocated_rows(user=user, filters=filters)
    by_reason: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in (
        allocated.filter(billing_currency=currency)
        .values("day", "unallocated_reason")
        .annotate(amount=Sum("billed_cost"))
        .order_by()
    ):
        by_reason[row["unallocated_reason"]][row["day"]] += row["amount"] or ZERO
    for row in (
        pending.filter(billing_currency=currency).values("day").annotate(amount=Sum("billed_cost")).order_by()
    ):
        by_reason[cost_selectors.REASON_NOT_ALLOCATED][row["day"]] += row["amount"] or ZERO
    # Plain dicts (design.figure_json), the same JSON as Plotly's objects without their cost.
    traces = []
    for reason, days in sorted(by_reason.items()):
        ordered = sorted(days)
        traces.append(
            {
                "type": "bar",
                "name": cost_selectors.reason_label(reason),
                "x": [day.isoformat() for day in ordered],
                "y": [float(days[day]) for day in ordered],
                "marker": {"color": REASON_COLOURS.get(reason, "#0ea5e9")},
            }
        )
    layout = {
        "template": design.plotly_default_template(),
        "barmode": "stack",
        "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
        "height": 280,
        "yaxis": {"title": {"text": f"Unallocated, {currency}"}},
        "legend": {"orientation": "h"},
    }
    return design.figure_json(data=traces, layout=layout)


def unallocated_page_build(*, user, start: dt.date | None, end: dt.date | None) -> UnallocatedPage:
    if not _sees_everything(user):
        return UnallocatedPage(visible=False)
    latest = DailyCost.objects.order_by("-day").values_list("day", flat=True).first()
    end = end or latest or dt.date.today()
    start = start or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    filters = CostFilters(day_from=start, day_to=end)
    page = UnallocatedPage(visible=True, start=start, end=end)
    for row in (
        _apply(DailyCost.objects.all(), filters)
        .values("billing_currency")
        .annotate(amount=Sum("billed_cost"))
        .order_by()
    ):
        page.billed_total[row["billing_currency"]] = row["amount"] or ZERO
    page.by_reason = _grouped(user=user, filters=filters, column="unallocated_reason")
    for group in page.by_reason:
        group.label = cost_selectors.reason_label(group.key or cost_selectors.REASON_NOT_ALLOCATED)
        page.unallocated_total[group.currency] = (
            page.unallocated_total.get(group.currency, ZERO) + group.billed
        )
    page.by_account = _grouped(
        user=user, filters=filters, column="account__slug", label_column="account__name"
    )
    page.by_service = _unallocated_services(filters=filters)
    page.by_resource = _by_resource(filters=filters)
    main_currency = max(page.billed_total, key=lambda currency: page.billed_total[currency], default="USD")
    page.trend = _trend(user=user, filters=filters, currency=main_currency)
    page.suggestions = list(
        RuleSuggestion.objects.filter(state=SuggestionState.OPEN)
        .select_related("account", "set_team", "set_model")
        .order_by("-untagged_cost", "id")[:20]
    )
    return page


def _unallocated_services(*, filters: CostFilters) -> list[Group]:
    """Team-less billed cost per service, from DailyCost (AllocatedCost has no service column)."""
    rows = (
        _apply(DailyCost.objects.all(), filters)
        .filter(Q(team__isnull=True))
        .values("service_name", "billing_currency")
        .annotate(amount=Sum("billed_cost"))
        .order_by()
    )
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row["billing_currency"]] += row["amount"] or ZERO
    groups = [
        Group(
            key=row["service_name"] or "",
            currency=row["billing_currency"],
            billed=row["amount"] or ZERO,
            label=row["service_name"] or "—",
            share=(row["amount"] or ZERO) / totals[row["billing_currency"]] * 100
            if totals[row["billing_currency"]]
            else None,
        )
        for row in rows
    ]
    return sorted(groups, key=lambda group: -group.billed)[:15]
