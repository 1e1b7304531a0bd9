"""Reads for the attribution pages. Everything here reads rollups (DailyCost, AllocatedCost,
SpendEstimate, UnitCost), never line items.

Every selector takes the user and applies `restrict(user)` where the rows are queried, so no page
can forget the role scoping. Money stays Decimal until the very edge of a chart (`_chart_number`).

Every figure says how much of it is billed and how much estimated (see attribution/costs/selectors.py):
estimated days are drawn as their own hatched series, the headline cards carry "of which estimated".
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Case, CharField, DateField, F, Max, QuerySet, Sum, Value, When

from attribution import design
from attribution.choices import PricingMode, Provider
from attribution.costs import selectors as cost_selectors
from attribution.costs.selectors import REASON_NOT_ALLOCATED, CostFilters, reason_label
from attribution.currency.codes import ISO_4217_CODES
from attribution.currency.services import RateBook
from attribution.design import go
from attribution.estimates.accuracy import AccuracyReport, accuracy_per_deployment, estimate_accuracy_report
from attribution.estimates.calibration import calibration_factors_current
from attribution.models import DailyCost, Deployment, ServedModel, Team, UnitCost
from attribution.models.allocation import UnitCostRatioSource

DEFAULT_RANGE_DAYS = 90
# A bound on the range keeps the figure payload (days x series) small whatever the user asks for.
MAX_RANGE_DAYS = 3 * 366
TOP_DEPLOYMENTS = 10

UNALLOCATED_TEAM = "unallocated"
UNALLOCATED_LABEL = "Unallocated"
NO_MODEL_LABEL = "No model"

# What the charts are drawn from (the `basis` badge of each panel).
BASIS_BILLED = "Billed cost"
BASIS_BILLED_ESTIMATED = "Billed + estimated"
BASIS_ALLOCATED_ESTIMATED = "Allocated + estimated"
ESTIMATED_SUFFIX = " (estimated)"
NO_TEAM_LABEL = "No team"
UNIT_COST_ROWS = 20
# Hatching marks estimated series in every chart; the same hue as the billed series, lighter.
ESTIMATE_PATTERN = {"shape": "/", "size": 6, "solidity": 0.35}

# One colour per provider everywhere (the CSS chips use the same values).
PROVIDER_COLORS = design.PROVIDER_COLORS
SERIES_COLORS = [
    "#4f46e5",
    "#0d9488",
    "#d97706",
    "#db2777",
    "#2563eb",
    "#65a30d",
    "#7c3aed",
    "#0891b2",
    "#ea580c",
    "#475569",
]
UNALLOCATED_COLOR = "#9ca3af"

_CHART_TEMPLATE = go.layout.Template(
    layout={
        "font": {
            "family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
            "size": 12,
            "color": "#334155",
        },
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "colorway": SERIES_COLORS,
        "xaxis": {"gridcolor": "#eef2f7", "linecolor": "#cbd5e1", "zeroline": False},
        "yaxis": {"gridcolor": "#eef2f7", "linecolor": "#cbd5e1", "zeroline": False},
        "hoverlabel": {"font": {"family": "system-ui, sans-serif"}},
        "legend": {"orientation": "h", "y": -0.18, "x": 0, "font": {"size": 11}},
        "margin": {"l": 56, "r": 16, "t": 12, "b": 40},
    }
)


_CHART_TEMPLATE_JSON = _CHART_TEMPLATE.to_plotly_json()


@dataclass(frozen=True)
class OverviewFilters:
    """What the user asked for; None start/end mean "the default range"."""

    start: dt.date | None = None
    end: dt.date | None = None
    provider: str = ""
    # "" = every team the user may see, UNALLOCATED_TEAM = rows without a team, else a team id.
    team: str = ""
    model_id: int | None = None


@dataclass
class CurrencyNote:
    """Cost in the range billed in a currency other than the reporting one: what the figures
    include, converted at the rate of each charge day, and what they leave out for want of a rate."""

    currency: str
    converted_from: Decimal = Decimal(0)  # in `currency`, included in the figures
    converted_to: Decimal = Decimal(0)  # the same amount in the reporting currency
    rate_dates: set[dt.date] = field(default_factory=set)
    missing: Decimal = Decimal(0)  # in `currency`, in no figure: no rate within the window
    missing_days: set[dt.date] = field(default_factory=set)

    @property
    def first_rate_date(self) -> dt.date | None:
        return min(self.rate_dates, default=None)

    @property
    def last_rate_date(self) -> dt.date | None:
        return max(self.rate_dates, default=None)

    @property
    def first_missing_day(self) -> dt.date | None:
        return min(self.missing_days, default=None)

    @property
    def last_missing_day(self) -> dt.date | None:
        return max(self.missing_days, default=None)


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    basis: str
    description: str


@dataclass
class UnallocatedReasonRow:
    reason: str
    label: str
    billed_cost: Decimal
    # Share of everything billed in the range (the reporting currency), in percent.
    share: Decimal | None


@dataclass
class Overview:
    start: dt.date
    end: dt.date
    latest_day: dt.date | None
    currency: str
    billed_cost: Decimal = Decimal(0)
    effective_cost: Decimal = Decimal(0)
    # Spend estimated from usage for days (deployments) whose bill has not landed yet.
    estimated_cost: Decimal = Decimal(0)
    month_start: dt.date | None = None
    month_to_date_billed: Decimal = Decimal(0)
    month_to_date_effective: Decimal = Decimal(0)
    month_to_date_estimated: Decimal = Decimal(0)
    # The last day that has an estimate standing in for a bill, if any.
    estimated_through: dt.date | None = None
    unallocated_cost: Decimal = Decimal(0)
    # None when nothing was billed in the range (no share to speak of).
    unallocated_share: Decimal | None = None
    # False for roles that never see unallocated rows: the share would always read 0 %.
    unallocated_visible: bool = True
    unallocated_by_reason: list[UnallocatedReasonRow] = field(default_factory=list)
    line_items: int = 0
    # Per other billing currency: converted (and at which rates) or missing a rate.
    currency_notes_by_code: dict[str, CurrencyNote] = field(default_factory=dict)
    # Rates to the reporting currency, loaded once, on the first row in another currency.
    rate_book: RateBook | None = field(default=None, repr=False)
    charts: list[ChartSpec] = field(default_factory=list)
    figures: dict[str, dict] = field(default_factory=dict)
    top_deployments: list[dict] = field(default_factory=list)
    estimate_accuracy: list[cost_selectors.EstimateAccuracy] = field(default_factory=list)
    # Median / p90 error per deployment-day, calibrated and not, and the unestimated share.
    accuracy_report: AccuracyReport | None = None
    unit_costs: list[dict] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return (
            self.line_items > 0
            or bool(self.billed_cost)
            or bool(self.estimated_cost)
            or bool(self.currency_notes_by_code)
        )

    @property
    def currency_notes(self) -> list[CurrencyNote]:
        return [self.currency_notes_by_code[code] for code in sorted(self.currency_notes_by_code)]

    @property
    def total_cost(self) -> Decimal:
        return self.billed_cost + self.estimated_cost

    @property
    def month_to_date_total(self) -> Decimal:
        return self.month_to_date_billed + self.month_to_date_estimated


def dailycost_visible(*, user) -> QuerySet[DailyCost]:
    return DailyCost.objects.restrict(user)


def dailycost_latest_day(*, user) -> dt.date | None:
    return dailycost_visible(user=user).aggregate(latest=Max("day"))["latest"]


def overview_filter_choices(*, user) -> dict[str, list[tuple[str, str]]]:
    """Options for the filter form: only teams the user may see; unallocated only if visible."""
    visible_teams = list(Team.objects.restrict(user).only("pk", "name", "slug"))
    teams = [(str(team.pk), team.name) for team in visible_teams]
    if _sees_unscoped_rows(user=user):
        teams.append((UNALLOCATED_TEAM, UNALLOCATED_LABEL))
    served_models = list(ServedModel.objects.only("pk", "name", "slug"))
    models = [(str(served.pk), served.name) for served in served_models]
    return {
        "providers": list(Provider.choices),
        "teams": teams,
        "models": models,
        # Names and ids to slugs, for the links into the explorer (which filters by slug).
        "team_slug_by_id": [(str(team.pk), team.slug) for team in visible_teams],
        "team_slug_by_name": [(team.name, team.slug) for team in visible_teams],
        "model_slug_by_id": [(str(served.pk), served.slug) for served in served_models],
        "model_slug_by_name": [(served.name, served.slug) for served in served_models],
    }


def _cost_filters(filters: OverviewFilters, *, start: dt.date, end: dt.date, currency: str) -> CostFilters:
    team = filters.team
    return CostFilters(
        day_from=start,
        day_to=end,
        provider=filters.provider,
        team_id=int(team) if team and team != UNALLOCATED_TEAM else None,
        unallocated_only=team == UNALLOCATED_TEAM,
        model_id=filters.model_id,
        currency=currency,
    )


def overview_build(*, user, filters: OverviewFilters, currency: str, today: dt.date) -> Overview:
    """Headline figures, charts and tables for the overview page.

    A fixed number of queries whatever the data size: the latest billed and estimated days (only
    when the range is defaulted), the allocated-basis sums (headline, provider, team and model
    figures), the open estimates, the deployments with the line item count, estimate accuracy and
    unit costs.
    """
    base = DailyCost.objects.all()
    visible = base.restrict(user)
    # restrict() hands back the queryset itself when the role sees everything; otherwise rows
    # without a team are filtered out for this user and "unallocated" means nothing to them.
    unallocated_visible = visible is base

    latest_day = None
    end = filters.end
    estimated_through = None
    if end is None:
        latest_day = visible.aggregate(latest=Max("day"))["latest"]
        estimated_through = (
            cost_selectors.estimates_open(user=user, filters=CostFilters())
            .order_by()
            .aggregate(latest=Max("day"))["latest"]
        )
        # The range ends at the last day anything is known for, billed or estimated.
        end = max((day for day in (latest_day, estimated_through) if day is not None), default=today)
    start = filters.start or end - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
    month_start = end.replace(day=1)

    scoped = _apply_dimension_filters(visible, filters)
    overview = Overview(
        start=start,
        end=end,
        latest_day=latest_day,
        currency=currency,
        month_start=month_start,
        unallocated_visible=unallocated_visible,
    )
    # Billed figures are on the allocated basis: a team's figures include its share of shared
    # pools, and the headline, the charts and the unallocated card all add up to the same total.
    # Every currency is read and converted to the reporting one at the rate of each charge day
    # (see _to_reporting): a figure never adds up amounts in different currencies.
    sums = _allocation_sums(
        user=user,
        filters=_cost_filters(filters, start=min(start, month_start), end=end, currency=""),
        currency=currency,
        start=start,
    )
    # Rows in another currency come at full detail and convert one by one, as they always did,
    # so every figure keeps its cents; they then count in each of the three groupings.
    foreign = _to_reporting(overview, sums.foreign, amounts=("billed", "effective"))
    foreign_in_range = [row for row in foreign if row["day"] >= start]
    by_provider = sums.by_provider + foreign
    _fill_billed(overview, by_provider)
    by_team = [row for row in sums.by_team if row["day"] >= start] + foreign_in_range
    _fill_unallocated(overview, by_team)
    by_model = sums.by_model + foreign_in_range

    in_range = scoped.filter(day__gte=start, day__lte=end)
    days = [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]
    estimates = _open_estimates(user=user, filters=filters, overview=overview, currency=currency)
    overview.estimated_through = estimated_through or max(
        (row["day"] for row in estimates if row["day"] >= start), default=None
    )

    has_estimates = any(row["day"] >= start for row in estimates)
    time_basis = BASIS_BILLED_ESTIMATED if has_estimates else BASIS_BILLED
    allocated_basis = BASIS_ALLOCATED_ESTIMATED if has_estimates else "Allocated cost"
    overview.charts = [
        ChartSpec(
            "by_provider",
            "Spend by provider",
            time_basis,
            "Daily cost, stacked by provider; hatched bars are estimated from usage (not billed yet).",
        ),
        ChartSpec(
            "by_team",
            "Spend by team",
            allocated_basis,
            "Daily cost per team including its share of shared GPU pools; unallocated cost by reason; "
            "hatched areas are estimated.",
        ),
        ChartSpec(
            "by_model",
            "Spend by model",
            allocated_basis,
            "Cost in the range per model, shared pools included; the hatched part is estimated.",
        ),
    ]
    range_estimates = [row for row in estimates if row["day"] >= start]
    overview.figures = {
        "by_provider": _provider_figure(
            [row for row in by_provider if row["day"] >= start], range_estimates, days=days, currency=currency
        ),
        "by_team": _team_figure(by_team, range_estimates, days=days, currency=currency),
        "by_model": _model_figure(by_model, range_estimates, currency=currency),
    }
    _fill_top_deployments(overview, in_range, range_estimates)
    accuracy_filters = _cost_filters(filters, start=start, end=end, currency=currency)
    report = estimate_accuracy_report(user=user, filters=accuracy_filters, with_days=True, by_day=False)
    overview.estimate_accuracy = accuracy_per_deployment(report.deployment_days)
    if overview.estimate_accuracy:
        report.deployment_days = []  # read once for the per-deployment rows; not shown one by one
        overview.accuracy_report = report
        factors = calibration_factors_current(
            deployment_ids={row.deployment_id for row in overview.estimate_accuracy}
        )
        for row in overview.estimate_accuracy:
            # A factor per basis: a deployment that changed basis has one for each.
            row.calibration_factors = sorted(
                (basis, factor.factor)
                for (deployment_id, basis, row_currency), factor in factors.items()
                if deployment_id == row.deployment_id and row_currency == row.currency
            )
    overview.unit_costs = _latest_unit_costs(overview, filters=filters, end=end)
    return overview


def _sees_unscoped_rows(*, user) -> bool:
    base = DailyCost.objects.all()
    return base.restrict(user) is base


def _apply_dimension_filters(rows: QuerySet[DailyCost], filters: OverviewFilters) -> QuerySet[DailyCost]:
    if filters.provider:
        rows = rows.filter(provider=filters.provider)
    if filters.team == UNALLOCATED_TEAM:
        rows = rows.filter(team__isnull=True)
    elif filters.team:
        rows = rows.filter(team_id=int(filters.team))
    if filters.model_id is not None:
        rows = rows.filter(model_id=filters.model_id)
    return rows


def _to_reporting(
    overview: Overview, rows: list[dict], *, amounts: tuple[str, ...], note: bool = True
) -> list[dict]:
    """`rows` (each with `day` and `currency`) with their `amounts` in the reporting currency.

    Each row converts at the rate of its own charge day (or the latest earlier one within the
    rate window, attribution.currency.services). A row without a usable rate is left out, never
    counted as if it were already in the reporting currency; with `note`, rows in the range are
    recorded per currency (converted from/to, rate dates, missing amount and days) for the page.
    """
    kept = []
    for row in rows:
        currency = row["currency"]
        if currency == overview.currency:
            kept.append(row)
            continue
        if overview.rate_book is None:
            # One query for every currency and the whole range, whichever rows come first.
            overview.rate_book = RateBook(
                currencies=ISO_4217_CODES,
                to_currency=overview.currency,
                start=min(overview.start, overview.month_start or overview.start),
                end=overview.end,
            )
        in_range = note and overview.start <= row["day"] <= overview.end
        if in_range:
            currency_note = overview.currency_notes_by_code.setdefault(currency, CurrencyNote(currency))
        original = row[amounts[0]] or Decimal(0)
        conversions = {
            key: overview.rate_book.convert(amount=row[key], day=row["day"], currency=currency)
            for key in amounts
            if row[key] is not None
        }
        if any(conversion is None for conversion in conversions.values()):
            if in_range:
                currency_note.missing += original
                currency_note.missing_days.add(row["day"])
            continue
        for key, conversion in conversions.items():
            row[key] = conversion.amount
        if in_range:
            currency_note.converted_from += original
            currency_note.converted_to += row[amounts[0]] or Decimal(0)
            currency_note.rate_dates.update(
                conversion.rate_date for conversion in conversions.values() if conversion.rate_date
            )
        kept.append(row)
    return kept


def _fill_billed(overview: Overview, rows: list[dict]) -> None:
    """Range and month-to-date billed and effective cost from the allocated-basis rows."""
    for row in rows:
        billed, effective = row["billed"] or 0, row["effective"] or 0
        if row["day"] >= overview.start:
            overview.billed_cost += billed
            overview.effective_cost += effective
        if row["day"] >= overview.month_start:
            overview.month_to_date_billed += billed
            overview.month_to_date_effective += effective


def _open_estimates(*, user, filters: OverviewFilters, overview: Overview, currency: str) -> list[dict]:
    """Open estimates (bill not landed) from the month start or range start, whichever is first."""
    first_day = min(overview.start, overview.month_start)
    rows = list(
        cost_selectors.estimates_open(
            user=user, filters=_cost_filters(filters, start=first_day, end=overview.end, currency="")
        )
        .values(
            "day",
            "team_id",
            "team__name",
            "model_id",
            "model__name",
            "deployment_id",
            "currency",
            provider=F("deployment__provider"),
        )
        .annotate(estimated=Sum("estimated_cost"))
        .order_by("day", "deployment_id", "team_id", "model_id", "currency")
    )
    rows = _to_reporting(overview, rows, amounts=("estimated",))
    for row in rows:
        if row["day"] >= overview.start:
            overview.estimated_cost += row["estimated"]
        if row["day"] >= overview.month_start:
            overview.month_to_date_estimated += row["estimated"]
    return rows


@dataclass
class _AllocationSums:
    """Billed and effective cost on the allocated basis, summed in SQL the three ways the page
    shows it. Cost in the reporting currency: per day x provider (the headline, the month to date
    and the provider chart), per day x team x unallocated reason (the team chart and the
    unallocated card) and per model over the range (the model chart). Cost in any other currency
    comes per day x provider x team x model x reason (`foreign`): it converts at the rate of its
    own day, row by row, and then counts in every grouping."""

    by_provider: list[dict]
    by_team: list[dict]
    by_model: list[dict]
    foreign: list[dict]


# One pass over the rows, four groupings (GROUPING SETS, hashed together). GROUPING() tells the sets
# apart: 7 per day x provider, 11 per day x team x reason, 13 per model (split by `in_range`, the
# model chart's range), 14 the other currencies at full detail (their `foreign_*` keys are NULL for
# rows in the reporting currency, which collapse into one group left out below). The other three
# sets keep only the reporting currency.
_ALLOCATION_SUMS_SQL = """
WITH sums AS (
  SELECT GROUPING(provider, team_id, model_id, foreign_day) AS set_id,
         day, provider, team_id, reason, model_id, in_range, currency,
         foreign_day, foreign_provider, foreign_team_id, foreign_model_id, foreign_reason,
         SUM(billed_cost) AS billed, SUM(effective_cost) AS effective
    FROM (
      SELECT marked.*,
             CASE WHEN is_foreign THEN day END AS foreign_day,
             CASE WHEN is_foreign THEN provider END AS foreign_provider,
             CASE WHEN is_foreign THEN team_id END AS foreign_team_id,
             CASE WHEN is_foreign THEN model_id END AS foreign_model_id,
             CASE WHEN is_foreign THEN reason END AS foreign_reason
        FROM (
          SELECT base.*, base.day >= %s AS in_range, base.currency <> %s AS is_foreign
            FROM ({allocated} UNION ALL {pending}) base
        ) marked
    ) detail
   GROUP BY GROUPING SETS (
     (day, provider, currency),
     (day, team_id, reason, currency),
     (model_id, in_range, currency),
     (foreign_day, foreign_provider, foreign_team_id, foreign_model_id, foreign_reason, currency)
   )
)
SELECT CASE sums.set_id WHEN 7 THEN 'provider' WHEN 11 THEN 'team' WHEN 13 THEN 'model' ELSE 'foreign' END,
       COALESCE(sums.day, sums.foreign_day), COALESCE(sums.provider, sums.foreign_provider),
       COALESCE(sums.team_id, sums.foreign_team_id), team.name,
       COALESCE(sums.model_id, sums.foreign_model_id), model.name,
       COALESCE(sums.reason, sums.foreign_reason), sums.currency, sums.billed, sums.effective
  FROM sums
  LEFT JOIN {team_table} team ON team.id = COALESCE(sums.team_id, sums.foreign_team_id)
  LEFT JOIN {model_table} model ON model.id = COALESCE(sums.model_id, sums.foreign_model_id)
 WHERE CASE sums.set_id
         WHEN 14 THEN sums.currency <> %s
         WHEN 13 THEN sums.currency = %s AND sums.in_range
         ELSE sums.currency = %s
       END
 ORDER BY sums.set_id, 2, 3, 4, 8, 6
"""
_ALLOCATION_SUMS_COLUMNS = (
    "day",
    "provider",
    "team_id",
    "team__name",
    "model_id",
    "model__name",
    "reason",
    "currency",
    "billed",
    "effective",
)


def _allocation_sums(*, user, filters: CostFilters, currency: str, start: dt.date) -> _AllocationSums:
    """One query over the two sources of allocated-basis cost: AllocatedCost for the account-days
    allocation covers (teams carry their share of shared pools), DailyCost for the others (team-less
    cost there is "not allocated yet"). Grouping in SQL returns about 1,100 rows at demo scale where
    one row per day x provider x team x model x reason returned 4,200, each read and converted
    here (the page's largest cost). The four groupings are GROUPING SETS of one pass over the rows:
    a materialised CTE read four times and sorted three times took about half as long again."""
    allocated, pending = cost_selectors.billed_sources(user=user, filters=filters, basis="allocated")
    # Names are joined after grouping: the rows grouped stay narrow.
    columns = ("day", "provider", "team_id", "model_id")
    costs = ("billed_cost", "effective_cost")
    billing_currency = F("billing_currency")
    pending_reason = Case(
        When(team__isnull=True, then=Value(REASON_NOT_ALLOCATED)), default=Value(""), output_field=CharField()
    )
    allocated_sql, allocated_params = (
        allocated.values(*columns, *costs, currency=billing_currency, reason=F("unallocated_reason"))
        .order_by()
        .query.sql_with_params()
    )
    pending_sql, pending_params = (
        pending.values(*columns, *costs, currency=billing_currency, reason=pending_reason)
        .order_by()
        .query.sql_with_params()
    )
    sql = _ALLOCATION_SUMS_SQL.format(
        allocated=allocated_sql,
        pending=pending_sql,
        team_table=connection.ops.quote_name(Team._meta.db_table),
        model_table=connection.ops.quote_name(ServedModel._meta.db_table),
    )
    params = (start, currency, *allocated_params, *pending_params, currency, currency, currency)
    sums = _AllocationSums(by_provider=[], by_team=[], by_model=[], foreign=[])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, *values in cursor.fetchall():
            getattr(sums, f"by_{kind}" if kind != "foreign" else kind).append(
                dict(zip(_ALLOCATION_SUMS_COLUMNS, values, strict=True))
            )
    return sums


def _fill_unallocated(overview: Overview, rows: list[dict]) -> None:
    by_reason: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        if row["reason"]:
            by_reason[row["reason"]] += row["billed"] or 0
    overview.unallocated_cost = sum(by_reason.values(), Decimal(0))
    billed = overview.billed_cost
    if billed:
        overview.unallocated_share = overview.unallocated_cost / billed * 100
    overview.unallocated_by_reason = [
        UnallocatedReasonRow(reason, reason_label(reason), amount, amount / billed * 100 if billed else None)
        for reason, amount in sorted(by_reason.items(), key=lambda item: -item[1])
    ]


def _chart_template_json() -> dict:
    """The chart template as JSON, a fresh copy for each figure (pages may add to a figure)."""
    return copy.deepcopy(_CHART_TEMPLATE_JSON)


def _chart_number(value: Decimal | None) -> float:
    # The only place money becomes float: JSON for the browser's chart library.
    return float(value or 0)


def _money_hover(currency: str) -> str:
    return f"%{{fullData.name}}<br>%{{x}}: %{{y:,.2f}} {currency}<extra></extra>"


def _axis_title(currency: str) -> dict:
    return {"title": {"text": currency}, "tickformat": ",.0f"}


def _date_axis(days: list[dt.date]) -> dict:
    # Both time charts span exactly the selected range, so they line up and gaps read as "no cost".
    half_day = dt.timedelta(hours=12)
    start = dt.datetime.combine(days[0], dt.time()) - half_day
    end = dt.datetime.combine(days[-1], dt.time()) + half_day
    return {"type": "date", "range": [start.isoformat(), end.isoformat()]}


def _provider_label(provider: str) -> str:
    return Provider(provider).label if provider in Provider.values else provider


def _provider_figure(rows: list[dict], estimates: list[dict], *, days: list[dt.date], currency: str) -> dict:
    series: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in sorted(rows, key=lambda row: (row["provider"], row["day"])):
        series[row["provider"]][row["day"]] += row["billed"] or 0
    estimated: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in estimates:
        estimated[row["provider"]][row["day"]] += row["estimated"]
    traces = []
    for provider, per_day in series.items():
        traces.append(
            {
                "type": "bar",
                "name": _provider_label(provider),
                "x": [day.isoformat() for day in per_day],
                "y": [_chart_number(value) for value in per_day.values()],
                "marker": {"color": PROVIDER_COLORS.get(provider)},
                "hovertemplate": _money_hover(currency),
                "legendgroup": provider,
            }
        )
    for provider in sorted(estimated):
        per_day = dict(sorted(estimated[provider].items()))
        color = PROVIDER_COLORS.get(provider, SERIES_COLORS[0])
        traces.append(
            {
                "type": "bar",
                "name": _provider_label(provider) + ESTIMATED_SUFFIX,
                "x": [day.isoformat() for day in per_day],
                "y": [_chart_number(value) for value in per_day.values()],
                "marker": {
                    "color": "rgba(255,255,255,0.6)",
                    "line": {"color": color, "width": 1},
                    "pattern": {**ESTIMATE_PATTERN, "fgcolor": color},
                },
                "hovertemplate": _money_hover(currency),
                "legendgroup": provider,
            }
        )
    layout = {
        "template": _chart_template_json(),
        "barmode": "stack",
        "bargap": 0.15,
        "yaxis": _axis_title(currency),
        "xaxis": _date_axis(days),
        "legend": {"traceorder": "normal"},
    }
    return design.figure_json(data=traces, layout=layout)


def _team_name(row: dict) -> str:
    if row["reason"]:
        return f"{UNALLOCATED_LABEL} — {reason_label(row['reason'])}"
    return row["team__name"] if row["team_id"] is not None else NO_TEAM_LABEL


def _team_figure(rows: list[dict], estimates: list[dict], *, days: list[dt.date], currency: str) -> dict:
    series: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        name = _team_name(row)
        series[name][row["day"]] += row["billed"] or 0
        totals[name] += row["billed"] or 0
    estimated: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in estimates:
        name = row["team__name"] if row["team_id"] is not None else NO_TEAM_LABEL
        estimated[name][row["day"]] += row["estimated"]
        totals[name] += 0  # an estimated-only team still gets a colour in the order below

    traces = []
    # Largest teams at the bottom of the stack; unallocated reasons on top of them in greys, so
    # they stand out; estimated areas last, hatched in their team's colour.
    teams = sorted(
        (name for name in totals if not name.startswith(UNALLOCATED_LABEL)),
        key=lambda name: (-totals[name], name),
    )
    unallocated = sorted(
        (name for name in series if name.startswith(UNALLOCATED_LABEL)), key=lambda n: -totals[n]
    )
    colors = {name: SERIES_COLORS[index % len(SERIES_COLORS)] for index, name in enumerate(teams)}
    x = [day.isoformat() for day in days]
    for index, name in enumerate([*(name for name in teams if name in series), *unallocated]):
        color = colors.get(name) or _GREYS[index % len(_GREYS)]
        per_day = series[name]
        traces.append(
            {
                "type": "scatter",
                "name": name,
                "x": x,
                # Stacked areas need every day present, or Plotly interpolates across the gaps.
                "y": [_chart_number(per_day.get(day)) for day in days],
                "mode": "lines",
                "stackgroup": "teams",
                "line": {"width": 1, "color": color},
                "hovertemplate": _money_hover(currency),
                "legendgroup": name,
            }
        )
    for name in (name for name in teams if name in estimated):
        per_day = estimated[name]
        color = colors[name]
        traces.append(
            {
                "type": "scatter",
                "name": name + ESTIMATED_SUFFIX,
                "x": x,
                "y": [_chart_number(per_day.get(day)) for day in days],
                "mode": "lines",
                "stackgroup": "teams",
                "line": {"width": 1, "color": color, "dash": "dot"},
                "fillcolor": "rgba(255,255,255,0.5)",
                "fillpattern": {**ESTIMATE_PATTERN, "fgcolor": color},
                "hovertemplate": _money_hover(currency),
                "legendgroup": name,
            }
        )
    layout = {
        "template": _chart_template_json(),
        "yaxis": _axis_title(currency),
        "xaxis": _date_axis(days),
        "legend": {"traceorder": "normal"},
    }
    return design.figure_json(data=traces, layout=layout)


_GREYS = ["#9ca3af", "#6b7280", "#cbd5e1", "#4b5563", "#d1d5db"]


def _model_figure(rows: list[dict], estimates: list[dict], *, currency: str) -> dict:
    billed: dict[str, Decimal] = defaultdict(Decimal)
    estimated: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        billed[row["model__name"] or NO_MODEL_LABEL] += row["billed"] or 0
    for row in estimates:
        estimated[row["model__name"] or NO_MODEL_LABEL] += row["estimated"]
    # Ascending by total, so the largest is on top of the horizontal bar chart.
    labels = sorted(set(billed) | set(estimated), key=lambda name: (billed[name] + estimated[name], name))
    traces = []
    if labels:
        traces.append(
            {
                "type": "bar",
                "name": "Billed",
                "orientation": "h",
                "x": [_chart_number(billed[name]) for name in labels],
                "y": labels,
                "marker": {
                    "color": [
                        UNALLOCATED_COLOR if name == NO_MODEL_LABEL else SERIES_COLORS[0] for name in labels
                    ]
                },
                "hovertemplate": f"%{{y}}: %{{x:,.2f}} {currency} billed<extra></extra>",
            }
        )
    if any(estimated.values()):
        traces.append(
            {
                "type": "bar",
                "name": "Estimated",
                "orientation": "h",
                "x": [_chart_number(estimated[name]) for name in labels],
                "y": labels,
                "marker": {
                    "color": "rgba(255,255,255,0.6)",
                    "line": {"color": SERIES_COLORS[0], "width": 1},
                    "pattern": {**ESTIMATE_PATTERN, "fgcolor": SERIES_COLORS[0]},
                },
                "hovertemplate": f"%{{y}}: %{{x:,.2f}} {currency} estimated<extra></extra>",
            }
        )
    layout = {
        "template": _chart_template_json(),
        "barmode": "stack",
        "xaxis": _axis_title(currency),
        "yaxis": {"automargin": True},
        "margin": {"l": 8},
        # Keep bars a readable thickness whether there are 2 models or 20.
        "height": max(260, 60 + 28 * len(labels)),
        "showlegend": any(estimated.values()),
    }
    return design.figure_json(data=traces, layout=layout)


_TOP_DEPLOYMENTS_SQL = """
SELECT g.deployment_id, deployment.slug, deployment.provider, deployment.region, deployment.pricing_mode,
       model.name, g.currency, g.rate_day, g.billed, g.effective, g.line_items
  FROM ({grouped}) g
  LEFT JOIN {deployment_table} deployment ON deployment.id = g.deployment_id
  LEFT JOIN {model_table} model ON model.id = deployment.model_id
"""
_TOP_DEPLOYMENTS_COLUMNS = (
    "deployment_id",
    "deployment__slug",
    "deployment__provider",
    "deployment__region",
    "deployment__pricing_mode",
    "deployment__model__name",
    "currency",
    "day",
    "billed",
    "effective",
    "line_items",
)


def _fill_top_deployments(overview: Overview, rows: QuerySet[DailyCost], estimates: list[dict]) -> None:
    """The deployments billed most in the range, in the reporting currency, and the range's line
    items (a count, not money, so every row counts whatever its currency): one read.

    Read per deployment, day and currency so that each day converts at its own rate, then summed
    here. Cost already in the reporting currency needs no rate, so its days are summed in SQL (a row
    per deployment instead of per deployment-day); rows without a deployment only count their line
    items. Grouped on ids and joined to the names after grouping, so the rows grouped stay narrow
    (EXPLAIN ANALYZE at demo scale: grouping on the joined names read the rollup by its deployment
    index, 1,440 buffers for 4,100 rows, and took several times as long).
    """
    grouped, params = (
        rows.values(
            "deployment_id",
            currency=F("billing_currency"),
            rate_day=Case(
                When(billing_currency=overview.currency, then=Value(None)),
                default=F("day"),
                output_field=DateField(),
            ),
        )
        .annotate(billed=Sum("billed_cost"), effective=Sum("effective_cost"), line_items=Sum("line_items"))
        .order_by()
        .query.sql_with_params()
    )
    sql = _TOP_DEPLOYMENTS_SQL.format(
        grouped=grouped,
        deployment_table=connection.ops.quote_name(Deployment._meta.db_table),
        model_table=connection.ops.quote_name(ServedModel._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = [dict(zip(_TOP_DEPLOYMENTS_COLUMNS, values, strict=True)) for values in cursor.fetchall()]
    per_deployment = []
    for row in fetched:
        overview.line_items += row["line_items"] or 0
        if row["deployment_id"] is not None:
            per_deployment.append(row)
    # The same cost is noted once, from the allocation rows (note=False).
    per_day = _to_reporting(overview, per_deployment, amounts=("billed", "effective"), note=False)
    details = _TOP_DEPLOYMENTS_COLUMNS[:6]
    totals: dict[int, dict] = {}
    for row in per_day:
        total = totals.setdefault(
            row["deployment_id"],
            {
                **{key: row[key] for key in details},
                "billed": Decimal(0),
                "effective": Decimal(0),
                "line_items": 0,
            },
        )
        total["billed"] += row["billed"] or 0
        total["effective"] += row["effective"] or 0
        total["line_items"] += row["line_items"] or 0
    top = sorted(totals.values(), key=lambda row: (-row["billed"], row["deployment__slug"]))[:TOP_DEPLOYMENTS]
    estimated: dict[int, Decimal] = defaultdict(Decimal)
    for row in estimates:
        estimated[row["deployment_id"]] += row["estimated"]
    for row in top:
        provider = row["deployment__provider"]
        row["provider_label"] = _provider_label(provider)
        mode = row["deployment__pricing_mode"]
        row["pricing_mode_label"] = PricingMode(mode).label if mode in PricingMode.values else mode
        row["estimated"] = estimated.get(row["deployment_id"], Decimal(0))
    overview.top_deployments = top


def _latest_unit_costs(overview: Overview, *, filters: OverviewFilters, end: dt.date) -> list[dict]:
    """The latest unit cost on or before `end` per model × deployment (one DISTINCT ON query).

    Unit costs are per deployment, not per team: shared reference figures like the deployments.
    A deployment billed in another currency is shown converted at the rate of the unit cost's
    day; without a rate it is shown in its own currency, and says so (`shown_currency`).
    """
    rows = UnitCost.objects.filter(day__lte=end)
    if filters.provider:
        rows = rows.filter(provider=filters.provider)
    if filters.model_id is not None:
        rows = rows.filter(model_id=filters.model_id)
    # DISTINCT ON over the narrow rows (ids), then the chosen rows with their names: sorting the
    # 2,700 joined rows at full width took several times as long (EXPLAIN ANALYZE at demo scale).
    latest_ids = (
        rows.order_by("deployment_id", "model_id", "-day")
        .distinct("deployment_id", "model_id")
        .values("id")[: UNIT_COST_ROWS * 5]
    )
    latest = list(
        UnitCost.objects.filter(id__in=latest_ids).values(
            "day",
            "model__name",
            "deployment__slug",
            "provider",
            "requests",
            "input_tokens",
            "output_tokens",
            "cost_per_1m_input_tokens",
            "cost_per_1m_output_tokens",
            "cost_per_1k_requests",
            "output_input_ratio",
            "ratio_source",
            "currency",
        )
    )
    prices = ("cost_per_1m_input_tokens", "cost_per_1m_output_tokens", "cost_per_1k_requests")
    for row in latest:
        row["shown_currency"] = row["currency"]
        if row["currency"] != overview.currency and _to_reporting(
            overview, [row], amounts=prices, note=False
        ):
            row["shown_currency"] = overview.currency  # converted in place
    latest.sort(key=lambda row: (row["model__name"], row["deployment__slug"]))
    for row in latest:
        row["provider_label"] = _provider_label(row["provider"])
        # Which basis split the cost over input and output tokens: a default ratio must never
        # pass for a price.
        source = row["ratio_source"]
        row["ratio_label"] = (
            UnitCostRatioSource(source).label if source in UnitCostRatioSource.values else "not recorded"
        )
    return latest[:UNIT_COST_ROWS]
