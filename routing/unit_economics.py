"""The Unit economics page's reads: UnitCost rollups (never line items) and gateway p95 latencies.

Lives in routing, not attribution, because the scatter needs routing's latencies and Pareto helper
(a lower layer never imports a higher one). Scoped like the cost explorer: a user who sees every
cost sees every deployment; anyone else sees only the deployments their visible daily costs ran on.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Max, QuerySet

from attribution import design
from attribution.choices import PricingMode
from attribution.models import DailyCost, UnitCost
from attribution.models.allocation import UnitCostRatioSource
from routing.selectors import route_latencies
from routing.whatif import pareto_frontier

MAX_RANGE_DAYS = 92
METRICS = {
    "cost_per_1m_input_tokens": "Cost per 1M input tokens",
    "cost_per_1m_output_tokens": "Cost per 1M output tokens",
    "cost_per_1k_requests": "Cost per 1k requests",
}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class UnitEconomicsQuery:
    start: dt.date
    end: dt.date
    currency: str
    metric: str = "cost_per_1m_input_tokens"
    # The model whose deployments the trend chart draws (its slug); "" for the costliest one.
    model: str = ""


@dataclass
class UnitEconomicsRow:
    model: str
    deployment: str
    deployment_id: int
    provider: str
    region: str
    accelerator: str
    pricing_mode: str
    latest_day: dt.date
    cost_per_1m_input_tokens: Decimal | None
    cost_per_1m_output_tokens: Decimal | None
    cost_per_1k_requests: Decimal | None
    split_label: str
    output_input_ratio: Decimal | None
    # Over the whole range: effective cost / all tokens, so the split ratio cannot move it.
    period_cost: Decimal = Decimal(0)
    period_tokens: int = 0
    p95_ms: float | None = None

    @property
    def period_cost_per_1m_tokens(self) -> Decimal | None:
        if not self.period_tokens:
            return None
        return (self.period_cost * 1_000_000 / self.period_tokens).quantize(CENT, ROUND_HALF_UP)


@dataclass
class UnitEconomics:
    query: UnitEconomicsQuery
    rows: list[UnitEconomicsRow] = field(default_factory=list)
    other_currencies: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    # The model the trend chart draws, as (slug, name); None when there are no rows.
    trend_model: tuple[str, str] | None = None


def _scoped(user) -> QuerySet:
    rows = UnitCost.objects.all()
    costs = DailyCost.objects.all()
    scoped_costs = costs.restrict(user)
    if scoped_costs is not costs:
        # Unit costs are per deployment, not per team: a team sees the deployments it spent on.
        rows = rows.filter(
            deployment_id__in=scoped_costs.filter(deployment__isnull=False).values("deployment_id")
        )
    return rows


@dataclass(frozen=True)
class UnitEconomicsChoices:
    currencies: list[str]
    models: list[tuple[str, str]]  # (slug, name), by name: the trend chart's choices
    latest_day: dt.date | None


def unit_economics_choices(*, user) -> UnitEconomicsChoices:
    """The currencies and models the user has unit costs in, and their latest day, from one grouped
    read (a few rows: currencies x models) rather than one scan of the scoped rows for each."""
    groups = (
        _scoped(user)
        .order_by()
        .values_list("currency", "model__slug", "model__name")
        .annotate(latest=Max("day"))
    )
    currencies, models, latest_days = set(), set(), []
    for currency, slug, name, latest in groups:
        currencies.add(currency)
        models.add((slug, name))
        latest_days.append(latest)
    return UnitEconomicsChoices(
        currencies=sorted(currencies),
        models=sorted(models, key=lambda model: (model[1], model[0])),
        latest_day=max(latest_days, default=None),
    )


def unit_economics_build(*, user, query: UnitEconomicsQuery, currencies: list[str]) -> UnitEconomics:
    result = UnitEconomics(query=query, other_currencies=[c for c in currencies if c != query.currency])
    daily = list(
        _scoped(user)
        .filter(day__gte=query.start, day__lte=query.end, currency=query.currency)
        .order_by("model__name", "deployment__slug", "day")
        .values(
            "day",
            "model__name",
            "model__slug",
            "deployment_id",
            "deployment__slug",
            "deployment__region",
            "deployment__accelerator",
            "deployment__pricing_mode",
            "provider",
            "effective_cost",
            "input_tokens",
            "output_tokens",
            *METRICS,
            "output_input_ratio",
            "ratio_source",
        )
    )
    latest: dict[tuple[str, str], dict] = {}
    totals: dict[tuple[str, str], tuple[Decimal, int]] = {}
    series: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for item in daily:
        key = (item["model__name"], item["deployment__slug"])
        series[key].append(item)
        latest[key] = item  # rows come ordered by day, so the last one kept is the latest
        cost, tokens = totals.get(key, (Decimal(0), 0))
        totals[key] = (cost + item["effective_cost"], tokens + item["input_tokens"] + item["output_tokens"])
    by_key: dict[tuple[str, str], UnitEconomicsRow] = {}
    for key, item in latest.items():
        source = item["ratio_source"]
        mode = item["deployment__pricing_mode"]
        row = UnitEconomicsRow(
            model=item["model__name"],
            deployment=item["deployment__slug"],
            deployment_id=item["deployment_id"],
            provider=item["provider"],
            region=item["deployment__region"],
            accelerator=item["deployment__accelerator"] or "—",
            pricing_mode=PricingMode(mode).label if mode in PricingMode.values else mode,
            latest_day=item["day"],
            cost_per_1m_input_tokens=item["cost_per_1m_input_tokens"],
            cost_per_1m_output_tokens=item["cost_per_1m_output_tokens"],
            cost_per_1k_requests=item["cost_per_1k_requests"],
            # A default ratio must never pass for a price: say which basis split the cost.
            split_label=UnitCostRatioSource(source).label
            if source in UnitCostRatioSource.values
            else "not recorded",
            output_input_ratio=item["output_input_ratio"],
        )
        row.period_cost, row.period_tokens = totals[key]
        by_key[key] = row
    result.rows = list(by_key.values())
    latencies = route_latencies(deployment_ids=sorted({row.deployment_id for row in result.rows}), origin="")
    for row in result.rows:
        row.p95_ms = latencies.get(row.deployment_id)
    result.trend_model = _trend_model(result.rows, daily, chosen=query.model)
    trend_series = {
        key: items
        for key, items in series.items()
        if result.trend_model and items[0]["model__slug"] == result.trend_model[0]
    }
    result.figures = {
        "trend": _trend_figure(
            trend_series, metric=query.metric, currency=query.currency, start=query.start, end=query.end
        ),
        "pareto": _pareto_figure(result.rows, currency=query.currency),
    }
    return result


def _trend_model(rows: list[UnitEconomicsRow], daily: list[dict], *, chosen: str) -> tuple[str, str] | None:
    """The model the trend chart draws: the one chosen if it has rows, else the one that cost most.

    One model at a time: every deployment of every model on one chart was ~36 lines and a legend
    taller than the plot, and unit costs of different models (embeddings at cents, large models at
    dollars) do not share a useful scale. The table and the scatter still show every model."""
    names = {item["model__slug"]: item["model__name"] for item in daily}
    if chosen in names:
        return chosen, names[chosen]
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        spend[row.model] += row.period_cost
    slugs = {name: slug for slug, name in names.items()}
    costliest = min(spend, key=lambda model: (-spend[model], model), default=None)
    return (slugs[costliest], costliest) if costliest is not None else None


def _trend_figure(
    series: dict[tuple[str, str], list[dict]], *, metric: str, currency: str, start: dt.date, end: dt.date
) -> dict:
    # Plain dicts (design.figure_json): Plotly's objects cost this page half its CPU, unchecked.
    traces = []
    for (_model, deployment), items in series.items():
        points = [
            (item["day"].isoformat(), float(item[metric])) for item in items if item[metric] is not None
        ]
        traces.append(
            {
                "type": "scatter",
                "x": [day for day, _ in points],
                "y": [value for _, value in points],
                "mode": "lines+markers",
                "name": deployment,
            }
        )
    layout = {
        "template": design.plotly_default_template(),
        # The selected range, by day: a series of one day would otherwise be scaled to milliseconds.
        "xaxis": {
            "type": "date",
            "range": [
                (dt.datetime.combine(start, dt.time()) - dt.timedelta(hours=12)).isoformat(),
                (dt.datetime.combine(end, dt.time()) + dt.timedelta(hours=12)).isoformat(),
            ],
            "tickformat": "%b %-d",
        },
        "yaxis": {"title": {"text": f"{METRICS[metric]} ({currency})"}},
        "margin": {"t": 20},
        "legend": {"orientation": "h"},
        # One legend line per ~3 deployments below a plot that keeps its 300 px.
        "height": 300 + 24 * math.ceil(len(traces) / 3),
    }
    return design.figure_json(data=traces, layout=layout)


def _pareto_figure(rows: list[UnitEconomicsRow], *, currency: str) -> dict:
    """Per model: each deployment's period cost per 1M tokens vs its p95, and that model's frontier
    (deployments of different models do not compete, so each model gets its own).

    Every point is labelled with its deployment and silicon, so the cheapest accelerator reads off the
    chart without hovering. Labels point inwards (a point in the right half of an axis is labelled on
    its left, one in the top half below it), are drawn past the plot area's edge (`cliponaxis`), and
    the axes leave room around the extreme points, so no label is cut at the edges.

    One legend entry per model: its points and its frontier are one legend group in one colour
    (two entries per model were ~28 in the demo, taller than the plot), so a click on a model hides
    or shows both; the page's text says what the dotted line is."""
    traces = []
    by_model: dict[str, list[UnitEconomicsRow]] = defaultdict(list)
    for row in rows:
        if row.period_cost_per_1m_tokens is not None and row.p95_ms is not None:
            by_model[row.model].append(row)
    plotted = [row for members in by_model.values() for row in members]
    if not plotted:
        return design.figure_json(data=[], layout={"template": design.plotly_default_template()})
    costs = [float(row.period_cost_per_1m_tokens) for row in plotted]
    latencies = [float(row.p95_ms) for row in plotted]
    x_range = _padded_range(costs, floor=0.0)
    y_range = _padded_range(latencies, floor=0.0)
    x_middle, y_middle = sum(x_range) / 2, sum(y_range) / 2
    for index, (model, members) in enumerate(by_model.items()):
        color = design.SERIES_COLORS[index % len(design.SERIES_COLORS)]
        points = [(row.deployment, float(row.period_cost_per_1m_tokens), row.p95_ms) for row in members]
        traces.append(
            {
                "type": "scatter",
                "x": [p[1] for p in points],
                "y": [p[2] for p in points],
                "text": [f"{row.deployment}<br>{row.accelerator}, {row.pricing_mode}" for row in members],
                "textposition": [
                    ("bottom" if y > y_middle else "top") + (" left" if x > x_middle else " right")
                    for _, x, y in points
                ],
                "textfont": {"size": 10},
                "cliponaxis": False,
                "mode": "markers+text",
                "marker": {"size": 9, "color": color},
                "name": model,
                "legendgroup": model,
                "hovertemplate": "%{text}<br>%{x:.2f} "
                + currency
                + " per 1M tokens<br>p95 %{y:.0f} ms<extra></extra>",
            }
        )
        frontier = pareto_frontier(points)
        traces.append(
            {
                "type": "scatter",
                "x": [p[1] for p in frontier],
                "y": [p[2] for p in frontier],
                "mode": "lines",
                "line": {"dash": "dot", "color": color},
                "name": f"{model}: Pareto frontier",
                "legendgroup": model,
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
    layout = {
        "template": design.plotly_default_template(),
        "xaxis": {"title": {"text": f"Cost per 1M tokens, input + output ({currency})"}, "range": x_range},
        "yaxis": {"title": {"text": "p95 latency (ms)"}, "range": y_range},
        "margin": {"t": 20, "r": 30},
        # Below the plot, so the plot keeps the panel's width for the labels.
        "legend": {"orientation": "h", "y": -0.2},
        "height": 420 + 24 * math.ceil(len(by_model) / 3),
    }
    return design.figure_json(data=traces, layout=layout)


def _padded_range(values: list[float], *, floor: float) -> list[float]:
    """The axis range around `values` with a fifth of their spread (at least 10% of the largest) on
    each side, for the labels beside the extreme points; never below `floor` (no negative cost)."""
    low, high = min(values), max(values)
    pad = max((high - low) * 0.2, abs(high) * 0.1, 1e-9)
    return [max(floor, low - pad), high + pad]
