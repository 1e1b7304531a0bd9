"""Why an alert was raised: the team, model, deployment or service behind it, each with a link into
the cost explorer filtered to it, for the Alerts page.

- An anomaly stores its contributors when it is raised (governance/anomalies.py): the values whose
  spend that day rose most over their usual, on the basis the anomaly was judged on.
- A budget threshold stores none, so they are read here from the daily rollup (never line items): in
  the budget's scope and period, the value that spent most of each dimension the scope leaves open.
  One query for every budget alert on the page, however many there are.

Both are scoped to the reader: rollup rows through `restrict(user)`, stored contributors naming a team
through the teams the reader may see, so a lead never sees another team's name here.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Q, Sum
from django.urls import reverse

from attribution.costs.explorer import DIMENSIONS, NONE_LABEL
from attribution.models import DailyCost
from governance.choices import AlertKind
from governance.models import Alert

# An anomaly's explorer view: the two weeks up to its day, so the jump shows against its usual.
ANOMALY_WINDOW_DAYS = 14
# What a budget's spend is broken down by, when the budget's scope does not fix it already.
BUDGET_DIMENSIONS = ("team", "model", "deployment", "service")
# The rollup's column for each of them, as the explorer filters it.
ROLLUP_COLUMNS = {name: DIMENSIONS[name][1] for name in (*BUDGET_DIMENSIONS, "provider", "account")}


@dataclass(frozen=True)
class AlertContributor:
    dimension: str
    value: str
    amount: Decimal
    currency: str
    # "rise": above the value's usual daily spend (anomalies); "spend": in the budget's period.
    measure: str
    explorer_url: str

    @property
    def dimension_label(self) -> str:
        return DIMENSIONS[self.dimension][0]


def alert_contributors(
    *, alerts: list[Alert], user, visible_team_slugs: set[str]
) -> dict[int, list[AlertContributor]]:
    """Contributors per alert id, for the anomaly and budget alerts among `alerts` (others: none).

    The budget alerts need their budget's team, model and account loaded (`select_related`)."""
    result: dict[int, list[AlertContributor]] = {}
    for alert in alerts:
        if alert.kind == AlertKind.ANOMALY:
            result[alert.pk] = _anomaly_contributors(alert, visible_team_slugs)
    budget_alerts = [
        alert
        for alert in alerts
        if alert.kind == AlertKind.BUDGET_THRESHOLD and alert.budget_id and "period_start" in alert.details
    ]
    result.update(_budget_contributors(budget_alerts, user))
    return result


def _explorer_url(
    *, start: dt.date, end: dt.date, currency: str, filters: dict[str, str], group_by: str
) -> str:
    query = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "granularity": "day",
        # Anomalies and budgets are judged on effective (amortized) cost.
        "cost": "amortized",
        "currency": currency,
        "group_by": group_by,
        **{f"f_{name}": value for name, value in filters.items()},
    }
    return reverse("attribution:explorer") + "?" + urlencode(query)


def _group_by(filtered: set[str]) -> str:
    """What the explorer view breaks the filtered spend down by: the first dimension not filtered."""
    return next(name for name in ("service", "deployment", "team", "region") if name not in filtered)


def _anomaly_contributors(alert: Alert, visible_team_slugs: set[str]) -> list[AlertContributor]:
    details = alert.details
    try:
        day = dt.date.fromisoformat(details["day"])
        scope = {details["dimension"]: details["value"]}
    except (KeyError, ValueError):
        return []
    contributors = []
    for item in details.get("contributors", []):
        dimension, value = item.get("dimension"), item.get("value")
        if dimension not in DIMENSIONS or not value or value.startswith("provider:"):
            # A deployment without an account is judged by its provider: no account to filter on.
            continue
        if dimension == "team" and value not in visible_team_slugs:
            continue
        filters = {**scope, dimension: value}
        contributors.append(
            AlertContributor(
                dimension=dimension,
                value=value,
                amount=Decimal(item["delta"]),
                currency=details.get("currency", "USD"),
                measure="rise",
                explorer_url=_explorer_url(
                    start=day - dt.timedelta(days=ANOMALY_WINDOW_DAYS - 1),
                    end=day,
                    currency=details.get("currency", "USD"),
                    filters=filters,
                    group_by=_group_by(set(filters)),
                ),
            )
        )
    return contributors


def _budget_scope(alert: Alert) -> dict[str, str]:
    """The budget's scope as explorer filters (dimension: value)."""
    budget = alert.budget
    scope = {}
    if budget.team_id:
        scope["team"] = budget.team.slug
    if budget.model_id:
        scope["model"] = budget.model.slug
    if budget.provider:
        scope["provider"] = budget.provider
    if budget.account_id:
        scope["account"] = budget.account.slug
    return scope


def _budget_contributors(alerts: list[Alert], user) -> dict[int, list[AlertContributor]]:
    if not alerts:
        return {}
    windows = {}
    for alert in alerts:
        start = dt.date.fromisoformat(alert.details["period_start"])
        end = dt.date.fromisoformat(alert.details["period_end"])  # the first day after the period
        windows[alert.pk] = (start, end, _budget_scope(alert), alert.budget.currency)
    matches = [
        Q(
            day__gte=start,
            day__lt=end,
            billing_currency=currency,
            **{ROLLUP_COLUMNS[name]: value for name, value in scope.items()},
        )
        for start, end, scope, currency in windows.values()
    ]
    rows = (
        DailyCost.objects.restrict(user)
        .filter(functools.reduce(operator.or_, matches))
        .values("day", "billing_currency", *ROLLUP_COLUMNS.values())
        .annotate(amount=Sum("effective_cost"))
        .order_by()
    )
    spend: dict[int, dict[str, dict[str, Decimal]]] = {
        pk: defaultdict(lambda: defaultdict(Decimal)) for pk in windows
    }
    for row in rows:
        for pk, (start, end, scope, currency) in windows.items():
            in_scope = all(row[ROLLUP_COLUMNS[name]] == value for name, value in scope.items())
            if not (start <= row["day"] < end and row["billing_currency"] == currency and in_scope):
                continue
            for name in BUDGET_DIMENSIONS:
                if name not in scope:
                    spend[pk][name][row[ROLLUP_COLUMNS[name]] or NONE_LABEL] += row["amount"] or 0
    result = {}
    for pk, (start, end, scope, currency) in windows.items():
        contributors = []
        for name in BUDGET_DIMENSIONS:
            by_value = spend[pk].get(name)
            if not by_value:
                continue
            value, amount = max(by_value.items(), key=lambda item: (item[1], item[0]))
            filters = {**scope, name: value}
            contributors.append(
                AlertContributor(
                    dimension=name,
                    value=value,
                    amount=amount,
                    currency=currency,
                    measure="spend",
                    explorer_url=_explorer_url(
                        start=start,
                        end=end - dt.timedelta(days=1),
                        currency=currency,
                        filters=filters,
                        group_by=_group_by(set(filters)),
                    ),
                )
            )
        result[pk] = contributors
    return result
