"""The Overview's "open anomalies and alerts" panel (registered in GovernanceConfig.ready()).

Counts per kind and the latest few open alerts the user may see (Alert.objects.restrict: admin and
finance see every alert, others their teams'), each linking to the Alerts page filtered to it."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse

from attribution.costs.panels import OverviewPanel
from governance.choices import AlertKind
from governance.models import Alert

LATEST = 5


def open_alerts_panel(*, user, month_start: dt.date, today: dt.date) -> OverviewPanel | None:
    alerts_url = reverse("governance:alerts")
    open_alerts = Alert.objects.restrict(user).filter(acknowledged_at__isnull=True)
    counts = dict(open_alerts.order_by().values_list("kind").annotate(count=Count("id")))
    labels = dict(AlertKind.choices)
    by_kind = [
        {
            "kind": kind,
            "label": labels.get(kind, kind),
            "count": count,
            "url": f"{alerts_url}?{urlencode({'state': 'open', 'kind': kind})}",
        }
        for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    latest = list(open_alerts.select_related("team").order_by("-created_at", "-id")[:LATEST])
    return OverviewPanel(
        key="alerts",
        template="governance/overview_alerts_panel.html",
        context={
            "total": sum(counts.values()),
            "anomalies": counts.get(AlertKind.ANOMALY, 0),
            "by_kind": by_kind,
            "latest": [{"alert": alert, "url": _alert_url(alerts_url, alert)} for alert in latest],
            "alerts_url": f"{alerts_url}?state=open",
            "anomalies_url": f"{alerts_url}?{urlencode({'state': 'open', 'kind': AlertKind.ANOMALY})}",
        },
    )


def _alert_url(alerts_url: str, alert: Alert) -> str:
    query = {"state": "open", "kind": alert.kind}
    if alert.team is not None:
        query["team"] = alert.team.slug
    return f"{alerts_url}?{urlencode(query)}"
