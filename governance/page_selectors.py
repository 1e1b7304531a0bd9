"""Reads for the governance pages: budget rows with their spend, the burn-down figure, filters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from attribution import design
from governance.models import Budget
from governance.selectors import BudgetStatusDetail, budget_statuses

BILLED_COLOR, ESTIMATED_COLOR, FORECAST_COLOR = "#2563eb", "#93c5fd", "#f59e0b"


@dataclass
class BudgetRow:
    budget: Budget
    status: dict

    @property
    def used_share(self) -> Decimal | None:
        if not self.budget.amount:
            return None
        return (self.status["spend_total"] / self.budget.amount * 100).quantize(Decimal("0.1"))

    @property
    def state(self) -> str:
        actions = [item["action"] for item in self.status["actions"]]
        for action in ("block", "throttle", "reroute", "notify"):
            if action in actions:
                return action
        forecast = self.status["forecast"]
        if forecast is not None and forecast > self.budget.amount:
            return "over_forecast"
        return "ok"


def budget_rows(*, user) -> list[BudgetRow]:
    budgets = list(
        Budget.objects.restrict(user)
        .select_related("team", "model", "account")
        .prefetch_related("thresholds")
        .order_by("name", "id")
    )
    statuses = budget_statuses(budgets=budgets, now=timezone.now())
    return [BudgetRow(budget=budget, status=status) for budget, status in zip(budgets, statuses, strict=True)]


def budget_burndown_figure(*, budget: Budget, detail: BudgetStatusDetail, thresholds: list) -> dict:
    """Cumulative spend this period (billed and estimated), the forecast with its 80 % band, the
    budget and each threshold as horizontal lines. Drawn from the spend and stored forecast the
    status was computed from (`budget_status_detail`), so the page reads them once.

    Plain dicts (design.trace, design.figure_json): the same JSON bytes as Plotly's objects gave,
    without building them on every request."""
    layout: dict = {"template": design.plotly_default_template()}
    status, spend, stored = detail.status, detail.spend, detail.stored_forecast
    start, end = status["period_start"], status["period_end"]
    if start is None or spend is None:
        return design.figure_json(data=[], layout=layout)
    today = timezone.now().date()
    days, billed, estimated = [], [], []
    running_billed = running_estimated = Decimal("0")
    day = start
    while day <= min(today, end - dt.timedelta(days=1)):
        running_billed += spend.billed.get(day, Decimal("0"))
        running_estimated += spend.estimated.get(day, Decimal("0"))
        days.append(day.isoformat())
        billed.append(float(running_billed))
        estimated.append(float(running_estimated))
        day += dt.timedelta(days=1)
    traces = [
        design.trace(
            "scatter", line={"color": BILLED_COLOR}, name="Billed", stackgroup="spend", x=days, y=billed
        ),
        design.trace(
            "scatter",
            line={"color": ESTIMATED_COLOR},
            name="Estimated",
            stackgroup="spend",
            x=days,
            y=estimated,
        ),
    ]
    path = [item for item in (stored.daily if stored else []) if "forecast" in item]
    if path:
        x = [item["day"] for item in path]
        traces += [
            design.trace(
                "scatter",
                hoverinfo="skip",
                line={"width": 0},
                name="80 % upper",
                showlegend=False,
                x=x,
                y=[float(item["upper"]) for item in path],
            ),
            design.trace(
                "scatter",
                fill="tonexty",
                fillcolor="rgba(245,158,11,0.2)",
                line={"width": 0},
                name="80 % interval",
                x=x,
                y=[float(item["lower"]) for item in path],
            ),
            design.trace(
                "scatter",
                line={"color": FORECAST_COLOR, "dash": "dash"},
                name=f"Forecast ({stored.method})",
                x=x,
                y=[float(item["forecast"]) for item in path],
            ),
        ]
    x_range = [start.isoformat(), (end - dt.timedelta(days=1)).isoformat()]
    traces.append(
        design.trace(
            "scatter",
            line={"color": "#111827", "width": 2},
            mode="lines",
            name="Budget",
            x=x_range,
            y=[float(budget.amount)] * 2,
        )
    )
    for threshold in thresholds:
        level = float(threshold.limit_for(budget.amount))
        level_text = f"{threshold.percent}%" if threshold.percent is not None else f"{threshold.amount}"
        label = f"{threshold.effective_action} at {level_text}"
        color = "#dc2626" if threshold.effective_action == "block" else "#9ca3af"
        traces.append(
            design.trace(
                "scatter",
                line={"color": color, "dash": "dot"},
                mode="lines",
                name=f"{label} ({threshold.basis})",
                x=x_range,
                y=[level] * 2,
            )
        )
    layout.update(
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        yaxis={"title": {"text": budget.currency}},
        legend={"orientation": "h"},
    )
    return design.figure_json(data=traces, layout=layout)
