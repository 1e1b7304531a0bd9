"""Savings from routing this month, for the Overview (registered in RoutingConfig.ready()).

Realised saving = what this month's routed tokens would have cost under a cost-blind split (every
routable deployment of the model an equal share: round robin, the baseline bench/optimizer.py
compares the optimiser with) minus what they cost where the published weights actually sent them.
Both sides use the same unit costs per 1M tokens that the optimiser uses
(`selectors.unit_costs_per_1m_tokens`, reporting currency). Tokens come from the UsageDaily rollup,
scoped to the user's teams (admin and finance: every team). A model with fewer than two costed
deployments had nothing to choose between and is left out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote_plus, urlencode

from django.db.models import F, Sum
from django.urls import reverse

from attribution.costs.panels import OverviewPanel
from attribution.models import Deployment, UsageDaily
from routing import selectors

MILLION = Decimal(1_000_000)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ModelSaving:
    model_slug: str
    model_name: str
    tokens: int
    actual: Decimal
    baseline: Decimal

    @property
    def saving(self) -> Decimal:
        return self.baseline - self.actual


def routing_savings(*, user, month_start: dt.date, today: dt.date) -> tuple[str, list[ModelSaving]]:
    # Tuples, not model instances or dicts: the panel is on every cold Overview and its Python work
    # (query building, one Deployment and ServedModel per row) was ~9 % of that page's CPU.
    currency = selectors.routing_currency()
    usage = (
        UsageDaily.objects.restrict(user)
        .filter(day__gte=month_start, day__lte=today)
        .values_list("model_id", "deployment_id")
        .annotate(served=Sum(F("input_tokens") + F("output_tokens")))
        .order_by()
    )
    tokens: dict[int, dict[int, int]] = defaultdict(dict)
    for model_id, deployment_id, served in usage:
        if served:
            tokens[model_id][deployment_id] = int(served)
    if not tokens:
        return currency, []
    deployments = (
        Deployment.objects.filter(model_id__in=tokens, state__in=selectors.ROUTABLE_STATES)
        .order_by("slug")
        .values_list("pk", "model_id", "model__slug", "model__name")
    )
    routable: dict[int, list[int]] = defaultdict(list)
    models: dict[int, tuple[str, str]] = {}
    for deployment_id, model_id, model_slug, model_name in deployments:
        routable[model_id].append(deployment_id)
        models[model_id] = (model_slug, model_name)
    ids = sorted(
        {d for ids in routable.values() for d in ids} | {d for served in tokens.values() for d in served}
    )
    unit_costs = selectors.unit_costs_per_1m_tokens(deployment_ids=ids, today=today, currency=currency)
    result = []
    for model_id, served in tokens.items():
        costed = [d for d in routable[model_id] if d in unit_costs]
        if len(costed) < 2 or any(d not in unit_costs for d in served):
            continue
        total = sum(served.values())
        actual = sum((Decimal(count) * unit_costs[d] for d, count in served.items()), Decimal(0)) / MILLION
        mean_cost = sum((unit_costs[d] for d in costed), Decimal(0)) / len(costed)
        baseline = Decimal(total) * mean_cost / MILLION
        model_slug, model_name = models[model_id]
        result.append(
            ModelSaving(
                model_slug=model_slug,
                model_name=model_name,
                tokens=total,
                actual=actual.quantize(CENT),
                baseline=baseline.quantize(CENT),
            )
        )
    result.sort(key=lambda row: (-row.saving, row.model_slug))
    return currency, result


def routing_savings_panel(*, user, month_start: dt.date, today: dt.date) -> OverviewPanel | None:
    currency, rows = routing_savings(user=user, month_start=month_start, today=today)
    # One encoding for what every row's link shares; the model is what varies.
    shared = (
        reverse("attribution:explorer")
        + "?"
        + urlencode(
            {
                "start": month_start.isoformat(),
                "end": today.isoformat(),
                "group_by": "deployment",
                "granularity": "month",
            }
        )
    )
    return OverviewPanel(
        key="routing_savings",
        template="routing/overview_savings_panel.html",
        context={
            "currency": currency,
            "month_start": month_start,
            "today": today,
            "rows": [
                {"row": row, "explorer_url": f"{shared}&f_model={quote_plus(row.model_slug)}"} for row in rows
            ],
            "saving": sum((row.saving for row in rows), Decimal(0)),
            "actual": sum((row.actual for row in rows), Decimal(0)),
            "baseline": sum((row.baseline for row in rows), Decimal(0)),
        },
    )
