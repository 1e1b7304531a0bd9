"""Why an alert was raised: the team, model, deployment or service behind it, each linked to a page
that shows that cost, for the Alerts page.

- An anomaly stores its contributors when it is raised (governance/anomalies.py): the values whose
  spend that day rose most over their usual, on the basis the anomaly was judged on.
- A budget threshold stores none, so its spend in the period is split here on the budget's own basis
  (governance/spend.py: allocated billed cost, so a team carries its share of shared pools, plus the
  estimates for days not billed yet, in the budget's currency) by the first of team, model and
  deployment that the budget's scope leaves open: the largest few values, then the rest as one
  "other" line, so the lines add up to the budget's spend. One read for every budget alert on the page.

A link goes only where the page can show the value: the explorer (billed rollup) when every filter
is one of its choices for the reader; for a budget's team or model, the Overview filtered to it
(the same allocated + estimated basis); for a deployment known only from estimates, its estimate
accuracy page; otherwise no link. Both kinds are scoped to the reader: rows through `restrict(user)`,
stored contributors naming a team through the teams the reader may see.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from attribution.costs.explorer import DIMENSIONS, NONE_LABEL, explorer_filter_choices
from attribution.costs.overview import UNALLOCATED_LABEL, UNALLOCATED_TEAM
from attribution.models import ServedModel, Team
from governance.choices import AlertKind
from governance.models import Alert
from governance.spend import SpendRequest, SpendScope, scopes_spend_breakdown

# An anomaly's explorer view: the two weeks up to its day, so the jump shows against its usual.
ANOMALY_WINDOW_DAYS = 14
# What a budget's spend is split by: the first of these its scope leaves open.
BUDGET_DIMENSIONS = ("team", "model", "deployment")
# A budget's largest values listed by name; the rest are one "other" line.
BUDGET_TOP = 3
# The Overview filters by these (team and model by id, provider by code); the explorer by all DIMENSIONS.
OVERVIEW_FILTERS = ("team", "model", "provider")


@dataclass(frozen=True)
class AlertContributor:
    dimension: str
    value: str
    amount: Decimal
    currency: str
    # "rise": above the value's usual daily spend (anomalies); "spend": in the budget's period;
    # "other": the budget's spend on the values not listed (`value` says how many, "2 other models").
    measure: str
    # A page showing this cost, or "" where none can (the line is then plain text).
    url: str
    # The part of a budget's `amount` estimated from usage (days not billed yet).
    estimated: Decimal = Decimal(0)

    @property
    def dimension_label(self) -> str:
        return DIMENSIONS[self.dimension][0]


class _Links:
    """Where a contributor's cost can be shown to the reader. The explorer's choices and the ids of
    teams and models are read once per page, not per alert."""

    def __init__(self, *, user, teams: list[Team]) -> None:
        self.choices = explorer_filter_choices(user=user)
        self.currencies = {settings.REPORTING_CURRENCY, *self.choices["currency"]}
        self.team_ids = {team.slug: team.pk for team in teams}
        self.model_ids: dict[str, int] | None = None

    def explorer(self, *, start: dt.date, end: dt.date, currency: str, filters: dict[str, str]) -> str:
        """The explorer over [start, end] filtered to `filters`, or "" if it would refuse a filter."""
        if currency not in self.currencies or any(
            value not in self.choices[name] for name, value in filters.items()
        ):
            return ""
        query = {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "granularity": "day",
            # Anomalies and budgets are judged on effective (amortized) cost.
            "cost": "amortized",
            "currency": currency,
            "group_by": next(
                name for name in ("service", "deployment", "team", "region") if name not in filters
            ),
            **{f"f_{name}": value for name, value in filters.items()},
        }
        return reverse("attribution:explorer") + "?" + urlencode(query)

    def overview(self, *, start: dt.date, end: dt.date, filters: dict[str, str | None]) -> str:
        """The Overview (allocated + estimated) over [start, end] filtered to `filters`, or "" if it
        cannot filter by one of them. A None team is the unallocated cost."""
        if not set(filters) <= set(OVERVIEW_FILTERS):
            return ""
        query = {"start": start.isoformat(), "end": end.isoformat()}
        if "team" in filters:
            team = filters["team"]
            if team is not None and team not in self.team_ids:
                return ""
            query["team"] = UNALLOCATED_TEAM if team is None else str(self.team_ids[team])
        if "model" in filters:
            if self.model_ids is None:
                self.model_ids = dict(ServedModel.objects.values_list("slug", "pk"))
            if filters["model"] not in self.model_ids:
                return ""
            query["model"] = str(self.model_ids[filters["model"]])
        if filters.get("provider"):
            query["provider"] = filters["provider"]
        return reverse("attribution:overview") + "?" + urlencode(query)

    @staticmethod
    def accuracy(deployment: str) -> str:
        return reverse("attribution:deployment-accuracy", args=[deployment])


def alert_contributors(*, alerts: list[Alert], user, teams: list[Team]) -> dict[int, list[AlertContributor]]:
    """Contributors per alert id, for the anomaly and budget alerts among `alerts` (others: none).
    `teams` are the teams the reader may see.

    The budget alerts need their budget's team, model and account loaded (`select_related`)."""
    anomalies = [alert for alert in alerts if alert.kind == AlertKind.ANOMALY]
    budget_alerts = [
        alert
        for alert in alerts
        if alert.kind == AlertKind.BUDGET_THRESHOLD and alert.budget_id and "period_start" in alert.details
    ]
    if not anomalies and not budget_alerts:
        return {}
    links = _Links(user=user, teams=teams)
    result = {alert.pk: _anomaly_contributors(alert, links) for alert in anomalies}
    result.update(_budget_contributors(budget_alerts, user, links))
    return result


def _anomaly_contributors(alert: Alert, links: _Links) -> list[AlertContributor]:
    details = alert.details
    try:
        day = dt.date.fromisoformat(details["day"])
        scope = {details["dimension"]: details["value"]}
    except (KeyError, ValueError):
        return []
    currency = details.get("currency", "USD")
    start = day - dt.timedelta(days=ANOMALY_WINDOW_DAYS - 1)
    contributors = []
    for item in details.get("contributors", []):
        dimension, value = item.get("dimension"), item.get("value")
        if dimension not in DIMENSIONS or not value or value.startswith("provider:"):
            # A deployment without an account is judged by its provider: no account to filter on.
            continue
        if dimension == "team" and value not in links.team_ids:
            continue
        filters = {**scope, dimension: value}
        url = links.explorer(start=start, end=day, currency=currency, filters=filters) or links.overview(
            start=start, end=day, filters=filters
        )
        if not url and dimension == "deployment":
            url = links.accuracy(value)
        contributors.append(
            AlertContributor(
                dimension=dimension,
                value=value,
                amount=Decimal(item["delta"]),
                currency=currency,
                measure="rise",
                url=url,
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


def _budget_contributors(alerts: list[Alert], user, links: _Links) -> dict[int, list[AlertContributor]]:
    alerts = [
        alert for alert in alerts if any(name not in _budget_scope(alert) for name in BUDGET_DIMENSIONS)
    ]
    if not alerts:
        return {}
    requests, dimensions = [], []
    for alert in alerts:
        requests.append(
            SpendRequest(
                SpendScope.of_budget(alert.budget),
                dt.date.fromisoformat(alert.details["period_start"]),
                dt.date.fromisoformat(alert.details["period_end"]),  # the first day after the period
                alert.budget.currency,
            )
        )
        dimensions.append(next(name for name in BUDGET_DIMENSIONS if name not in _budget_scope(alert)))
    breakdowns = scopes_spend_breakdown(requests=requests, dimensions=dimensions, user=user)
    result = {}
    for alert, request, dimension, breakdown in zip(alerts, requests, dimensions, breakdowns, strict=True):
        scope, last_day = _budget_scope(alert), request.end - dt.timedelta(days=1)
        top = [part for part in breakdown.parts if part.total][:BUDGET_TOP]
        contributors = []
        for part in top:
            filters = {**scope, dimension: part.key}
            url = ""
            if dimension in ("team", "model"):
                # The Overview is on the budget's basis (allocated + estimated); the explorer is not.
                url = links.overview(start=request.start, end=last_day, filters=filters)
            if not url and part.key is not None:
                url = links.explorer(
                    start=request.start, end=last_day, currency=request.currency, filters=filters
                )
            if not url and dimension == "deployment" and part.key is not None and part.estimated:
                url = links.accuracy(part.key)
            label = part.key or (UNALLOCATED_LABEL if dimension == "team" else NONE_LABEL)
            contributors.append(
                AlertContributor(
                    dimension=dimension,
                    value=label,
                    amount=part.total,
                    currency=request.currency,
                    measure="spend",
                    url=url,
                    estimated=part.estimated.quantize(Decimal("0.01")),
                )
            )
        rest = len([part for part in breakdown.parts if part.total]) - len(top)
        if rest:
            contributors.append(
                AlertContributor(
                    dimension=dimension,
                    value=f"{rest} other {DIMENSIONS[dimension][0].lower()}{'s' if rest > 1 else ''}",
                    amount=breakdown.total - sum((part.total for part in top), Decimal(0)),
                    currency=request.currency,
                    measure="other",
                    url="",
                )
            )
        result[alert.pk] = contributors
    return result
