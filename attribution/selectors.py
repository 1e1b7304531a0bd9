"""Reads for the attribution pages. Everything here reads the DailyCost rollup, never line items.

Every selector takes the user and applies `restrict(user)` where the rows are queried, so no page
can forget the role scoping. Money stays Decimal until the very edge of a chart (`_chart_number`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import plotly.graph_objects as go
from django.db.models import Max, Q, QuerySet, Sum

from attribution.choices import PricingMode, Provider
from attribution.models import DailyCost, ServedModel, Team

DEFAULT_RANGE_DAYS = 90
# A bound on the range keeps the figure payload (days x series) small whatever the user asks for.
MAX_RANGE_DAYS = 3 * 366
TOP_DEPLOYMENTS = 10

UNALLOCATED_TEAM = "unallocated"
UNALLOCATED_LABEL = "Unallocated"
NO_MODEL_LABEL = "No model"

# What the charts are drawn from. Only billed exports exist so far; when near-real-time estimates
# arrive, the figures gain an "estimated" series per chart and this label becomes e.g.
# "Billed + estimated" (see ChartSpec.basis and the `basis` badge in the template).
BASIS_BILLED = "Billed cost"

PROVIDER_COLORS = {
    Provider.AWS: "#f59e0b",
    Provider.GCP: "#2563eb",
    Provider.AZURE: "#0891b2",
    Provider.OCI: "#dc2626",
}
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


@dataclass(frozen=True)
class OverviewFilters:
    """What the user asked for; None start/end mean "the default range"."""

    start: dt.date | None = None
    end: dt.date | None = None
    provider: str = ""
    # "" = every team the user may see, UNALLOCATED_TEAM = rows without a team, else a team id.
    team: str = ""
    model_id: int | None = None


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    billed_cost: Decimal
    effective_cost: Decimal


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    basis: str
    description: str


@dataclass
class Overview:
    start: dt.date
    end: dt.date
    latest_day: dt.date | None
    currency: str
    billed_cost: Decimal = Decimal(0)
    effective_cost: Decimal = Decimal(0)
    month_start: dt.date | None = None
    month_to_date_billed: Decimal = Decimal(0)
    month_to_date_effective: Decimal = Decimal(0)
    unallocated_cost: Decimal = Decimal(0)
    # None when nothing was billed in the range (no share to speak of).
    unallocated_share: Decimal | None = None
    # False for roles that never see unallocated rows: the share would always read 0 %.
    unallocated_visible: bool = True
    line_items: int = 0
    other_currencies: list[CurrencyTotal] = field(default_factory=list)
    charts: list[ChartSpec] = field(default_factory=list)
    figures: dict[str, dict] = field(default_factory=dict)
    top_deployments: list[dict] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return self.line_items > 0 or bool(self.billed_cost) or bool(self.other_currencies)


def dailycost_visible(*, user) -> QuerySet[DailyCost]:
    return DailyCost.objects.restrict(user)


def dailycost_latest_day(*, user) -> dt.date | None:
    return dailycost_visible(user=user).aggregate(latest=Max("day"))["latest"]


def overview_filter_choices(*, user) -> dict[str, list[tuple[str, str]]]:
    """Options for the filter form: only teams the user may see; unallocated only if visible."""
    teams = [(str(team.pk), team.name) for team in Team.objects.restrict(user).only("pk", "name")]
    if _sees_unscoped_rows(user=user):
        teams.append((UNALLOCATED_TEAM, UNALLOCATED_LABEL))
    models = [(str(served.pk), served.name) for served in ServedModel.objects.only("pk", "name")]
    return {"providers": list(Provider.choices), "teams": teams, "models": models}


def overview_build(*, user, filters: OverviewFilters, currency: str, today: dt.date) -> Overview:
    """Headline figures, charts and the top deployments for the overview page.

    A fixed number of queries whatever the data size: one for the latest day (only when the range
    is defaulted), one for the headline sums, three for the charts, one for the deployments.
    """
    base = DailyCost.objects.all()
    visible = base.restrict(user)
    # restrict() hands back the queryset itself when the role sees everything; otherwise rows
    # without a team are filtered out for this user and "unallocated" means nothing to them.
    unallocated_visible = visible is base

    latest_day = None
    end = filters.end
    if end is None:
        latest_day = visible.aggregate(latest=Max("day"))["latest"]
        end = latest_day or today
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
    _fill_headline(overview, scoped)

    in_range = scoped.filter(day__gte=start, day__lte=end, billing_currency=currency)
    days = [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]
    overview.charts = [
        ChartSpec(
            "by_provider", "Spend by provider", BASIS_BILLED, "Daily billed cost, stacked by provider."
        ),
        ChartSpec(
            "by_team",
            "Spend by team",
            BASIS_BILLED,
            "Daily billed cost, stacked by team; cost no allocation rule covers is its own series.",
        ),
        ChartSpec("by_model", "Spend by model", BASIS_BILLED, "Billed cost in the range, per model."),
    ]
    overview.figures = {
        "by_provider": _provider_figure(in_range, days=days, currency=currency),
        "by_team": _team_figure(in_range, days=days, currency=currency),
        "by_model": _model_figure(in_range, currency=currency),
    }
    overview.top_deployments = _top_deployments(in_range)
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


def _fill_headline(overview: Overview, scoped: QuerySet[DailyCost]) -> None:
    """Range totals and month-to-date in one pass, per currency (currencies are never added up)."""
    in_range = Q(day__gte=overview.start)
    in_month = Q(day__gte=overview.month_start)
    first_day = min(overview.start, overview.month_start)
    rows = (
        scoped.filter(day__gte=first_day, day__lte=overview.end)
        .values("billing_currency")
        .annotate(
            billed=Sum("billed_cost", filter=in_range),
            effective=Sum("effective_cost", filter=in_range),
            unallocated=Sum("billed_cost", filter=in_range & Q(team__isnull=True)),
            line_items=Sum("line_items", filter=in_range),
            month_billed=Sum("billed_cost", filter=in_month),
            month_effective=Sum("effective_cost", filter=in_month),
        )
        .order_by("billing_currency")
    )
    zero = Decimal(0)
    for row in rows:
        # Line items are a count, not money: they add up across currencies.
        overview.line_items += row["line_items"] or 0
        if row["billing_currency"] == overview.currency:
            overview.billed_cost = row["billed"] or zero
            overview.effective_cost = row["effective"] or zero
            overview.unallocated_cost = row["unallocated"] or zero
            overview.month_to_date_billed = row["month_billed"] or zero
            overview.month_to_date_effective = row["month_effective"] or zero
        elif row["billed"] is not None:
            overview.other_currencies.append(
                CurrencyTotal(row["billing_currency"], row["billed"], row["effective"] or zero)
            )
    if overview.billed_cost:
        overview.unallocated_share = overview.unallocated_cost / overview.billed_cost * 100


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


def _provider_figure(rows: QuerySet[DailyCost], *, days: list[dt.date], currency: str) -> dict:
    series: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for row in rows.values("day", "provider").annotate(billed=Sum("billed_cost")).order_by("provider", "day"):
        series[row["provider"]][row["day"]] = row["billed"]
    figure = go.Figure(layout={"template": _CHART_TEMPLATE, "barmode": "stack", "bargap": 0.15})
    for provider, per_day in series.items():
        label = Provider(provider).label if provider in Provider.values else provider
        figure.add_trace(
            go.Bar(
                name=label,
                x=[day.isoformat() for day in per_day],
                y=[_chart_number(value) for value in per_day.values()],
                marker={"color": PROVIDER_COLORS.get(provider)},
                hovertemplate=_money_hover(currency),
            )
        )
    figure.update_layout(yaxis=_axis_title(currency), xaxis=_date_axis(days), legend={"traceorder": "normal"})
    return figure.to_plotly_json()


def _team_figure(rows: QuerySet[DailyCost], *, days: list[dt.date], currency: str) -> dict:
    series: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows.values("day", "team_id", "team__name").annotate(billed=Sum("billed_cost")):
        name = row["team__name"] if row["team_id"] is not None else UNALLOCATED_LABEL
        series[name][row["day"]] = row["billed"]
        totals[name] += row["billed"] or 0
    figure = go.Figure(layout={"template": _CHART_TEMPLATE})
    # Largest teams at the bottom of the stack; unallocated always on top, in grey, so it stands out.
    names = sorted((name for name in series if name != UNALLOCATED_LABEL), key=lambda name: -totals[name])
    if UNALLOCATED_LABEL in series:
        names.append(UNALLOCATED_LABEL)
    x = [day.isoformat() for day in days]
    for index, name in enumerate(names):
        color = UNALLOCATED_COLOR if name == UNALLOCATED_LABEL else SERIES_COLORS[index % len(SERIES_COLORS)]
        per_day = series[name]
        figure.add_trace(
            go.Scatter(
                name=name,
                x=x,
                # Stacked areas need every day present, or Plotly interpolates across the gaps.
                y=[_chart_number(per_day.get(day)) for day in days],
                mode="lines",
                stackgroup="teams",
                line={"width": 1, "color": color},
                hovertemplate=_money_hover(currency),
            )
        )
    figure.update_layout(yaxis=_axis_title(currency), xaxis=_date_axis(days), legend={"traceorder": "normal"})
    return figure.to_plotly_json()


def _model_figure(rows: QuerySet[DailyCost], *, currency: str) -> dict:
    totals = list(
        rows.values("model_id", "model__name")
        .annotate(billed=Sum("billed_cost"))
        .order_by("billed", "model__name")
    )
    labels = [row["model__name"] or NO_MODEL_LABEL for row in totals]
    figure = go.Figure(layout={"template": _CHART_TEMPLATE})
    if totals:
        figure.add_trace(
            go.Bar(
                orientation="h",
                x=[_chart_number(row["billed"]) for row in totals],
                y=labels,
                marker={
                    "color": [SERIES_COLORS[0] if row["model_id"] else UNALLOCATED_COLOR for row in totals]
                },
                hovertemplate=f"%{{y}}: %{{x:,.2f}} {currency}<extra></extra>",
            )
        )
    figure.update_layout(
        xaxis=_axis_title(currency),
        yaxis={"automargin": True},
        margin={"l": 8},
        # Keep bars a readable thickness whether there are 2 models or 20.
        height=max(260, 60 + 28 * len(labels)),
        showlegend=False,
    )
    return figure.to_plotly_json()


def _top_deployments(rows: QuerySet[DailyCost]) -> list[dict]:
    top = list(
        rows.filter(deployment__isnull=False)
        .values(
            "deployment_id",
            "deployment__slug",
            "deployment__provider",
            "deployment__region",
            "deployment__pricing_mode",
            "deployment__model__name",
        )
        .annotate(
            billed=Sum("billed_cost"),
            effective=Sum("effective_cost"),
            requests=Sum("requests"),
            line_items=Sum("line_items"),
        )
        .order_by("-billed", "deployment__slug")[:TOP_DEPLOYMENTS]
    )
    for row in top:
        provider = row["deployment__provider"]
        row["provider_label"] = Provider(provider).label if provider in Provider.values else provider
        mode = row["deployment__pricing_mode"]
        row["pricing_mode_label"] = PricingMode(mode).label if mode in PricingMode.values else mode
    return top
