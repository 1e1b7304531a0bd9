"""The cost explorer: spend from the daily rollup grouped by any dimension, per day, week or month.

Reads DailyCost only (never line items), scoped to what the user may see where the rows are queried.
One currency at a time: amounts in different billing currencies are never added, so the explorer
shows the chosen currency (default: the reporting currency) and says which other currencies exist.
The table, the chart and the CSV are all built from the one `ExplorerResult`, so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from django.db.models import F, Max, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from attribution import design
from attribution.costs.selectors import visible
from attribution.design import go
from attribution.models import DailyCost

ZERO = Decimal(0)
CENT = Decimal("0.01")
MAX_RANGE_DAYS = 400

# Dimension -> (label, DailyCost column). Every dimension the rollup carries can group and filter.
DIMENSIONS: dict[str, tuple[str, str]] = {
    "provider": ("Provider", "provider"),
    "account": ("Cloud account", "account__slug"),
    "service": ("Service", "service_name"),
    "region": ("Region", "region_id"),
    "team": ("Team", "team__slug"),
    "model": ("Model", "model__slug"),
    "deployment": ("Deployment", "deployment__slug"),
    "accelerator": ("Accelerator", "deployment__accelerator"),
    "pricing_mode": ("Pricing mode", "deployment__pricing_mode"),
    "charge_category": ("Charge category", "charge_category"),
}
GRANULARITIES = {"day": "Daily", "week": "Weekly", "month": "Monthly"}
PERIOD_AXIS = {"day": "Day", "week": "Week (starting Monday)", "month": "Month"}
# Billed is what the invoice says for the day; amortized spreads commitments (FOCUS EffectiveCost).
COSTS = {"billed": ("Billed", "billed_cost"), "amortized": ("Amortized", "effective_cost")}
NONE_LABEL = "(none)"


@dataclass(frozen=True)
class ExplorerQuery:
    start: dt.date
    end: dt.date
    group_by: str = "provider"
    granularity: str = "day"
    cost: str = "billed"
    currency: str = "USD"
    filters: dict[str, str] = field(default_factory=dict)


@dataclass
class ExplorerRow:
    key: str
    label: str
    amounts: list[Decimal]
    total: Decimal


@dataclass
class ExplorerResult:
    query: ExplorerQuery
    periods: list[dt.date]
    rows: list[ExplorerRow]
    period_totals: list[Decimal]
    total: Decimal
    other_currencies: list[str]
    figure: dict

    def period_label(self, period: dt.date) -> str:
        if self.query.granularity == "month":
            return period.strftime("%Y-%m")
        if self.query.granularity == "week":
            return f"Week of {period.isoformat()}"
        return period.isoformat()

    @property
    def group_label(self) -> str:
        return DIMENSIONS[self.query.group_by][0]

    @property
    def period_labels(self) -> list[str]:
        return [self.period_label(period) for period in self.periods]

    def csv_rows(self) -> list[list[str]]:
        """Exactly the table: header, a row per group, the totals row (plain decimals to the cent,
        rounded half-even as the table's locale formatting rounds)."""
        rows = [[self.group_label, *self.period_labels, f"Total ({self.query.currency})"]]
        for row in self.rows:
            rows.append([row.label, *(_cents(amount) for amount in row.amounts), _cents(row.total)])
        rows.append(["Total", *(_cents(amount) for amount in self.period_totals), _cents(self.total)])
        return rows


def _cents(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_EVEN))


def _label(dimension: str, key: str | None) -> str:
    if key in (None, ""):
        return NONE_LABEL
    if dimension == "provider":
        return design.provider_label(key)
    return str(key)


def explorer_filter_choices(*, user) -> dict[str, list[str]]:
    """Values each dimension takes in the rows the user may see (for the filter selects), and the
    currencies present. One query: distinct combinations would be too many, so one per column is
    avoided by reading the distinct tuples of the small dimension columns together."""
    columns = [column for _, column in DIMENSIONS.values()]
    values: dict[str, set[str]] = {name: set() for name in DIMENSIONS}
    currencies: set[str] = set()
    for row in visible(DailyCost.objects.all(), user).values_list(*columns, "billing_currency").distinct():
        for name, value in zip(DIMENSIONS, row[:-1], strict=True):
            if value not in (None, ""):
                values[name].add(str(value))
        currencies.add(row[-1])
    choices = {name: sorted(found) for name, found in values.items()}
    choices["currency"] = sorted(currencies)
    return choices


def explorer_latest_day(*, user) -> dt.date | None:
    """The latest day with billed spend the user may see: the default range ends there, so the
    explorer opens on data even when bills lag the calendar by days."""
    return visible(DailyCost.objects.all(), user).aggregate(latest=Max("day"))["latest"]


def explorer_build(*, user, query: ExplorerQuery) -> ExplorerResult:
    group_column = DIMENSIONS[query.group_by][1]
    cost_column = COSTS[query.cost][1]
    rows = visible(DailyCost.objects.all(), user).filter(day__gte=query.start, day__lte=query.end)
    for name, value in query.filters.items():
        column = DIMENSIONS[name][1]
        rows = rows.filter(**({f"{column}__isnull": True} if value == NONE_LABEL else {column: value}))
    if query.granularity == "week":
        period = TruncWeek("day")
    elif query.granularity == "month":
        period = TruncMonth("day")
    else:
        period = F("day")
    cells: dict[str | None, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    other_currencies: set[str] = set()
    for item in (
        rows.values(period_start=period, group=F(group_column), currency=F("billing_currency"))
        .annotate(amount=Sum(cost_column))
        .order_by()
    ):
        if item["currency"] != query.currency:
            other_currencies.add(item["currency"])
            continue
        start = item["period_start"]
        start = start.date() if isinstance(start, dt.datetime) else start
        cells[item["group"]][start] += item["amount"] or ZERO
    periods = sorted({period for by_period in cells.values() for period in by_period})
    result_rows = [
        ExplorerRow(
            key="" if key is None else str(key),
            label=_label(query.group_by, key),
            amounts=[by_period.get(period, ZERO) for period in periods],
            total=sum(by_period.values(), ZERO),
        )
        for key, by_period in cells.items()
    ]
    result_rows.sort(key=lambda row: (-row.total, row.label))
    period_totals = [sum((row.amounts[index] for row in result_rows), ZERO) for index in range(len(periods))]
    result = ExplorerResult(
        query=query,
        periods=periods,
        rows=result_rows,
        period_totals=period_totals,
        total=sum(period_totals, ZERO),
        other_currencies=sorted(other_currencies),
        figure={},
    )
    result.figure = _figure(result)
    return result


def _figure(result: ExplorerResult) -> dict:
    query = result.query
    figure = go.Figure()
    for index, row in enumerate(result.rows):
        colour = (
            design.provider_color(row.key)
            if query.group_by == "provider"
            else design.SERIES_COLORS[index % len(design.SERIES_COLORS)]
        )
        figure.add_trace(
            go.Bar(
                name=row.label,
                x=result.period_labels,
                y=[float(amount) for amount in row.amounts],
                marker={"color": colour},
                hovertemplate="%{x}<br>" + row.label + ": %{y:,.2f} " + query.currency + "<extra></extra>",
            )
        )
    figure.update_layout(
        barmode="stack",
        title={"text": f"{COSTS[query.cost][0]} cost by {DIMENSIONS[query.group_by][0].lower()}"},
        xaxis={"title": {"text": PERIOD_AXIS[query.granularity]}, "type": "category"},
        yaxis={"title": {"text": f"{COSTS[query.cost][0]} cost ({query.currency})"}},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 16, "t": 48, "b": 40},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
    )
    return json.loads(figure.to_json()) if result.rows else {"data": [], "layout": {}}
