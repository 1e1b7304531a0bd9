"""The cost explorer: spend from the daily rollup grouped by any dimension, per day, week or month.

Reads DailyCost only (never line items), scoped to what the user may see where the rows are queried.
One currency at a time: amounts in different billing currencies are never added, so the explorer
shows the chosen currency (default: the reporting currency) and says which other currencies exist.
The table, the chart and the CSV are all built from the one `ExplorerResult`, so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import CharField, DateField, F, Func, Max, QuerySet, Sum, Value
from django.db.models.functions import TruncMonth, TruncWeek

from attribution import design
from attribution.costs.selectors import CostFilters, _sees_everything, estimates_open
from attribution.models import CloudAccount, DailyCost, DailyTagCost, Deployment, ServedModel, Team

ZERO = Decimal(0)
CENT = Decimal("0.01")
# The longest range per granularity: a column a day for at most 400 days; weeks and months cover
# the Overview's longest range (3 years), so every Overview link opens a view the explorer can show.
MAX_RANGE_DAYS = {"day": 400, "week": 3 * 366, "week_to_end": 3 * 366, "month": 3 * 366}

# Dimension -> (label, DailyCost column). Every dimension the rollup carries can group and filter.
DIMENSIONS: dict[str, tuple[str, str]] = {
    "provider": ("Provider", "provider"),
    "account": ("Cloud account", "account__slug"),
    "service": ("Service", "service_name"),
    "region": ("Region", "region_id"),
    "sku": ("SKU", "sku_id"),
    "team": ("Team", "team__slug"),
    "model": ("Model", "model__slug"),
    "deployment": ("Deployment", "deployment__slug"),
    "accelerator": ("Accelerator", "deployment__accelerator"),
    "pricing_mode": ("Pricing mode", "deployment__pricing_mode"),
    "charge_category": ("Charge category", "charge_category"),
}
# "week_to_end": 7-day periods counted back from the end date, so the last period is the 7 days to the
# end and the one before it the 7 days before those (the top movers' two weeks), whatever the weekday.
GRANULARITIES = {
    "day": "Daily",
    "week": "Weekly",
    "week_to_end": "Weekly, to the end date",
    "month": "Monthly",
}
PERIOD_AXIS = {
    "day": "Day",
    "week": "Week (starting Monday)",
    "week_to_end": "7 days (the last ending on the end date)",
    "month": "Month",
}
# The chart's x axis labels at most this many periods: a date such as "Nov 29" is about 45 px wide,
# and the plot is about 900 px wide at a 1280 px window, so a dozen labels never touch.
MAX_TICKS = 12
# Tick steps per granularity, in periods, smallest first: days step by whole weeks once one label a
# day or two would crowd, weeks by 1, 2, 4... weeks, months by a quarter, a half, a year.
TICK_STEPS = {
    "day": (1, 2, 3, 7, 14, 28, 56),
    "week": (1, 2, 4, 8, 13, 26),
    "week_to_end": (1, 2, 4, 8, 13, 26),
    "month": (1, 2, 3, 6, 12),
}
PERIOD_DAYS = {"day": 1, "week": 7, "week_to_end": 7, "month": 30}
TICK_FORMAT = {"day": "%b %-d", "week": "%b %-d", "week_to_end": "%b %-d", "month": "%b %Y"}
HOVER_PERIOD = {
    "day": "%{x|%Y-%m-%d}",
    "week": "Week of %{x|%Y-%m-%d}",
    "week_to_end": "7 days from %{x|%Y-%m-%d}",
    "month": "%{x|%Y-%m}",
}
DAY_MS = 86_400_000
# Billed is what the invoice says for the day; amortized spreads commitments (FOCUS EffectiveCost).
COSTS = {"billed": ("Billed", "billed_cost"), "amortized": ("Amortized", "effective_cost")}
NONE_LABEL = "(none)"
# Grouping by a tag key is `group_by=tag:<key>`; a tag filter is `f_tag=<key>=<value>` (or
# `<key>=(none)` for spend without that key). Tags come from the DailyTagCost rollup.
TAG_PREFIX = "tag:"


def tag_group_key(group_by: str) -> str | None:
    return group_by[len(TAG_PREFIX) :] if group_by.startswith(TAG_PREFIX) else None


def group_label(group_by: str) -> str:
    tag_key = tag_group_key(group_by)
    return f"Tag {tag_key}" if tag_key is not None else DIMENSIONS[group_by][0]


@dataclass(frozen=True)
class ExplorerQuery:
    start: dt.date
    end: dt.date
    group_by: str = "provider"
    granularity: str = "day"
    cost: str = "billed"
    currency: str = "USD"
    filters: dict[str, str] = field(default_factory=dict)
    # (tag key, value or NONE_LABEL): at most one tag filter, on the tag key grouped by if any.
    tag_filter: tuple[str, str] | None = None


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
        if self.query.granularity == "week_to_end":
            # The days the column sums: the first period may start before the range (then it has
            # fewer than 7 days in it).
            first = max(period, self.query.start)
            return f"{first.isoformat()} – {(period + dt.timedelta(days=6)).isoformat()}"
        return period.isoformat()

    @property
    def group_label(self) -> str:
        return group_label(self.query.group_by)

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


# The filter selects' options are the distinct values the visible rollup rows take. DISTINCT over
# the rollups reads every row (20-60 ms at demo scale); these walk the distinct tuples of an index
# instead (a loose index scan: one probe per distinct tuple, about a hundred at demo scale, under
# a millisecond), the indexes `dailycost_options` and `dailytagcost_options` (migration 0025).
# The team leads each tuple, so a role that sees only some teams walks only theirs; NULL ids are
# walked as 0 (a row comparison with NULL would stop the walk), which no team, model or
# deployment has. The dimension -> column map below must name every DIMENSIONS entry.
_COST_OPTION_KEYS = (
    "COALESCE(team_id, 0)",
    "provider",
    "account_id",
    "service_name",
    "region_id",
    "sku_id",
    "COALESCE(model_id, 0)",
    "COALESCE(deployment_id, 0)",
    "charge_category",
    "billing_currency",
)
_TAG_OPTION_KEYS = ("COALESCE(team_id, 0)", "tag_key", "tag_value")
_COST_OPTION_COLUMNS = {
    "provider": "walk.k1",
    "account": "account.slug",
    "service": "walk.k3",
    "region": "walk.k4",
    "sku": "walk.k5",
    "team": "team.slug",
    "model": "model.slug",
    "deployment": "deployment.slug",
    "accelerator": "deployment.accelerator",
    "pricing_mode": "deployment.pricing_mode",
    "charge_category": "walk.k8",
}


def _walk_sql(table: str, keys: tuple[str, ...], scope: str, select: str) -> str:
    """`select` from `walk` (k0, k1, ...): the distinct `keys` tuples of `table`'s rows matching
    `scope` (SQL on team_id, or ""), found by a recursive CTE with one index probe each."""
    names = [f"k{index}" for index in range(len(keys))]
    listed = ", ".join(f"{key} AS {name}" for key, name in zip(keys, names, strict=True))
    order = ", ".join(str(index + 1) for index in range(len(keys)))
    previous = ", ".join(f"walk.{name}" for name in names)
    # The step's bare column names are the table's: the walk's own columns are k0, k1, ...
    return f"""WITH RECURSIVE walk AS (
        (SELECT {listed} FROM {table} {f"WHERE {scope}" if scope else ""} ORDER BY {order} LIMIT 1)
        UNION ALL
        SELECT step.* FROM walk, LATERAL (
            SELECT {", ".join(keys)} FROM {table}
            WHERE ({", ".join(keys)}) > ({previous}) {f"AND {scope}" if scope else ""}
            ORDER BY {order} LIMIT 1
        ) step
    ) {select}"""  # noqa: S608


def _team_scope(user) -> tuple[str, list] | None:
    """SQL restricting a rollup to the teams `user` may see, as ScopedQuerySet.restrict does ("" for
    every row), or None when the user sees no rows at all."""
    if _sees_everything(user):
        return "", []
    try:
        teams, params = Team.objects.restrict(user).order_by().values("id").query.sql_with_params()
    except EmptyResultSet:
        return None
    return f"COALESCE(team_id, 0) = ANY(ARRAY({teams}))", list(params)


def explorer_filter_choices(*, user) -> dict[str, list[str]]:
    """Values each dimension takes in the rows the user may see (for the filter selects), the
    currencies present and each tag key's values: two loose index scans (see `_walk_sql`)."""
    values: dict[str, set[str]] = {name: set() for name in DIMENSIONS}
    currencies: set[str] = set()
    tags: dict[str, set[str]] = defaultdict(set)
    scope = _team_scope(user)
    if scope is not None:
        condition, params = scope
        columns = ", ".join(_COST_OPTION_COLUMNS[name] for name in DIMENSIONS)
        labelled = f"""SELECT DISTINCT {columns}, walk.k9 FROM walk
            JOIN {CloudAccount._meta.db_table} account ON account.id = walk.k2
            LEFT JOIN {Team._meta.db_table} team ON team.id = walk.k0
            LEFT JOIN {ServedModel._meta.db_table} model ON model.id = walk.k6
            LEFT JOIN {Deployment._meta.db_table} deployment ON deployment.id = walk.k7"""  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(
                _walk_sql(DailyCost._meta.db_table, _COST_OPTION_KEYS, condition, labelled), params * 2
            )
            for row in cursor.fetchall():
                for name, value in zip(DIMENSIONS, row[:-1], strict=True):
                    if value not in (None, ""):
                        values[name].add(str(value))
                currencies.add(row[-1])
            cursor.execute(
                _walk_sql(
                    DailyTagCost._meta.db_table,
                    _TAG_OPTION_KEYS,
                    condition,
                    "SELECT DISTINCT k1, k2 FROM walk",
                ),
                params * 2,
            )
            for key, value in cursor.fetchall():
                tags[key].add(value)
    choices = {name: sorted(found) for name, found in values.items()}
    choices["currency"] = sorted(currencies)
    choices["tags"] = {key: sorted(values) for key, values in sorted(tags.items())}  # type: ignore[assignment]
    return choices


def explorer_latest_day(*, user) -> dt.date | None:
    """The latest day with billed spend the user may see: the default range ends there, so the
    explorer opens on data even when bills lag the calendar by days."""
    return DailyCost.objects.restrict(user).aggregate(latest=Max("day"))["latest"]


def _terms(query: ExplorerQuery, user) -> list[tuple[int, QuerySet, object, bool]]:
    """The signed rollup reads whose sum is the answer: (sign, rows, group expression, whether each
    amount is also taken off the "(none)" group, which saves reading a key's rows twice).

    Without tags: DailyCost. Grouped by tag K: K's tagged rows by value, plus DailyCost minus K's
    rows as "(none)". Filtered on K=V: K's rows with value V. Filtered on K=(none): DailyCost minus
    K's rows. So a key's groups always add up to DailyCost under the same filters, to the cent.
    """
    day_rows = DailyCost.objects.restrict(user).filter(day__gte=query.start, day__lte=query.end)
    tag_rows = DailyTagCost.objects.restrict(user).filter(day__gte=query.start, day__lte=query.end)
    for name, value in query.filters.items():
        column = DIMENSIONS[name][1]
        condition = {f"{column}__isnull": True} if value == NONE_LABEL else {column: value}
        if value == NONE_LABEL and column in ("service_name", "region_id", "sku_id", "charge_category"):
            condition = {column: ""}
        day_rows = day_rows.filter(**condition)
        tag_rows = tag_rows.filter(**condition)
    group_tag = tag_group_key(query.group_by)
    none_group = Value(None, output_field=CharField())
    if group_tag is None:
        column = F(DIMENSIONS[query.group_by][1])
        day_group = tag_group = tagged_group = column
    else:
        day_group = tag_group = none_group
        tagged_group = F("tag_value")
    if query.tag_filter is None:
        if group_tag is None:
            return [(1, day_rows, day_group, False)]
        return [(1, day_rows, day_group, False), (1, tag_rows.filter(tag_key=group_tag), tagged_group, True)]
    key, value = query.tag_filter
    keyed = tag_rows.filter(tag_key=key)
    if value == NONE_LABEL:
        return [(1, day_rows, day_group, False), (-1, keyed, tag_group, False)]
    return [(1, keyed.filter(tag_value=value), tagged_group, False)]


class _WeekToEnd(Func):
    """The first day of the 7-day period that holds the row's day, periods counted back from `end`:
    day - 6 + (end - day) mod 7 (date minus date is a number of days in Postgres)."""

    output_field = DateField()

    def __init__(self, end: dt.date) -> None:
        super().__init__(F("day"), Value(end, output_field=DateField()))

    def as_sql(self, compiler, connection, **extra_context):
        day_sql, day_params = compiler.compile(self.source_expressions[0])
        end_sql, end_params = compiler.compile(self.source_expressions[1])
        return (
            f"({day_sql} - 6 + MOD({end_sql} - {day_sql}, 7))",
            (*day_params, *end_params, *day_params),
        )


def explorer_build(*, user, query: ExplorerQuery) -> ExplorerResult:
    cost_column = COSTS[query.cost][1]
    if query.granularity == "week":
        period = TruncWeek("day")
    elif query.granularity == "week_to_end":
        period = _WeekToEnd(query.end)
    elif query.granularity == "month":
        period = TruncMonth("day")
    else:
        period = F("day")
    cells: dict[str | None, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    other_currencies: set[str] = set()
    terms = _terms(query, user)
    for sign, rows, group, off_none in terms:
        for item in (
            rows.values(period_start=period, group=group, currency=F("billing_currency"))
            .annotate(amount=Sum(cost_column))
            .order_by()
        ):
            if item["currency"] != query.currency:
                other_currencies.add(item["currency"])
                continue
            start = item["period_start"]
            start = start.date() if isinstance(start, dt.datetime) else start
            cells[item["group"]][start] += sign * (item["amount"] or ZERO)
            if off_none:
                cells[None][start] -= item["amount"] or ZERO
    if any(sign < 0 or off_none for sign, _rows, _group, off_none in terms):
        # What a subtraction left at zero everywhere (all of it tagged) is no group of its own.
        cells = defaultdict(
            lambda: defaultdict(lambda: ZERO),
            {key: by_period for key, by_period in cells.items() if any(by_period.values())},
        )
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


# Explorer filters that estimates can take too (SpendEstimate has a team, model and deployment, and
# through the deployment a provider and account): name -> CostFilters field. Estimates have no service,
# region, SKU, charge category or tags.
_ESTIMATE_FILTERS = {
    "provider": "provider",
    "account": "account",
    "team": "team",
    "model": "model",
    "deployment": "deployment",
}


@dataclass
class EstimatesNote:
    """Spend estimated from usage for days in the range whose bill has not landed yet. The Overview's
    spend and month-to-date figures include it; the explorer reads bills only, so a link from such a
    figure says how much of the figure is not in the table, and for which days."""

    currency: str
    total: Decimal = ZERO
    by_provider: list[tuple[str, Decimal]] = field(default_factory=list)  # (provider label, amount)
    days: list[dt.date] = field(default_factory=list)
    # Estimates in other currencies (the Overview converts them; this view shows one currency).
    other_currencies: list[str] = field(default_factory=list)
    # A filter of the view that estimates do not carry: then no amount can be matched to it.
    unmatched_filter: str = ""


def explorer_estimates_note(*, user, query: ExplorerQuery) -> EstimatesNote:
    """The open estimates (scoped to the user) in the query's range under its filters: one query."""
    note = EstimatesNote(currency=query.currency)
    options = {}
    for name, value in query.filters.items():
        if name == "team" and value == NONE_LABEL:
            options["unallocated_only"] = True
        elif name in _ESTIMATE_FILTERS and value != NONE_LABEL:
            options[_ESTIMATE_FILTERS[name]] = value
        else:
            note.unmatched_filter = DIMENSIONS[name][0]
    if query.tag_filter is not None:
        note.unmatched_filter = f"tag {query.tag_filter[0]}"
    if note.unmatched_filter:
        return note
    rows = (
        estimates_open(user=user, filters=CostFilters(day_from=query.start, day_to=query.end, **options))
        .values("day", "currency", provider=F("deployment__provider"))
        .annotate(amount=Sum("estimated_cost"))
        .order_by()
    )
    by_provider: dict[str, Decimal] = defaultdict(lambda: ZERO)
    days, other_currencies = set(), set()
    for row in rows:
        if row["currency"] != query.currency:
            other_currencies.add(row["currency"])
            continue
        by_provider[row["provider"]] += row["amount"] or ZERO
        days.add(row["day"])
    note.by_provider = sorted(
        ((design.provider_label(provider), amount) for provider, amount in by_provider.items()),
        key=lambda item: (-item[1], item[0]),
    )
    note.total = sum(by_provider.values(), ZERO)
    note.days = sorted(days)
    note.other_currencies = sorted(other_currencies)
    return note


def _title_dimension(group_by: str) -> str:
    tag_key = tag_group_key(group_by)
    return f"tag {tag_key}" if tag_key is not None else DIMENSIONS[group_by][0].lower()


def _period_axis(query: ExplorerQuery, periods: list[dt.date]) -> dict:
    """A date axis whose labels cannot overlap: a tick every `step` periods (at most MAX_TICKS), on
    period starts (Mondays when days step by weeks), over exactly the periods shown.

    A category axis labelled every period (as this chart had) rotated and crowded 90 daily labels
    at 1280 px; Plotly's automatic date ticks would put weekly ticks on Sundays."""
    granularity = query.granularity
    step = next(
        (step for step in TICK_STEPS[granularity] if -(-len(periods) // step) <= MAX_TICKS),
        TICK_STEPS[granularity][-1],
    )
    first = periods[0]
    if granularity == "day" and step % 7 == 0:
        first += dt.timedelta(days=-first.weekday() % 7)
    dtick: int | str = f"M{step}" if granularity == "month" else step * PERIOD_DAYS[granularity] * DAY_MS
    # Each bar is centred on its period's start: half a period of room on either side.
    half = dt.timedelta(days=PERIOD_DAYS[granularity] / 2)
    return {
        "title": {"text": PERIOD_AXIS[granularity]},
        "type": "date",
        "tickmode": "linear",
        "tick0": first.isoformat(),
        "dtick": dtick,
        "tickformat": TICK_FORMAT[granularity],
        "range": [
            (dt.datetime.combine(periods[0], dt.time()) - half).isoformat(),
            (dt.datetime.combine(periods[-1], dt.time()) + half).isoformat(),
        ],
    }


def _figure(result: ExplorerResult) -> dict:
    """The stacked bar chart, as plain dicts (design.figure_json): building it from Plotly's objects
    cost a 30-day chart 15 ms of CPU even unchecked."""
    if not result.rows:
        return {"data": [], "layout": {}}
    query = result.query
    x = [period.isoformat() for period in result.periods]
    # Explicit, so a single period is a bar and not a hairline (Plotly sizes bars on a date axis by
    # the gap between points).
    bar_width = PERIOD_DAYS[query.granularity] * DAY_MS * 0.8
    traces = [
        {
            "type": "bar",
            "name": row.label,
            "x": x,
            "y": [float(amount) for amount in row.amounts],
            "width": bar_width,
            "marker": {
                "color": design.provider_color(row.key)
                if query.group_by == "provider"
                else design.SERIES_COLORS[index % len(design.SERIES_COLORS)]
            },
            "hovertemplate": HOVER_PERIOD[query.granularity]
            + "<br>"
            + row.label
            + ": %{y:,.2f} "
            + query.currency
            + "<extra></extra>",
        }
        for index, row in enumerate(result.rows)
    ]
    layout = {
        "template": design.plotly_default_template(),
        "barmode": "stack",
        "title": {"text": f"{COSTS[query.cost][0]} cost by {_title_dimension(query.group_by)}"},
        "xaxis": _period_axis(query, result.periods),
        "yaxis": {"title": {"text": f"{COSTS[query.cost][0]} cost ({query.currency})"}},
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"l": 60, "r": 16, "t": 48, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
    }
    return design.figure_json(data=traces, layout=layout)
