"""A page per deployment: its estimates against its bills, day by day, and its calibration history."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from attribution import design
from attribution.costs.selectors import CostFilters
from attribution.estimates.accuracy import calibration_history, estimate_accuracy_report
from attribution.models import Deployment


def _trend_figure(days) -> dict:
    # Plain dicts (design.figure_json), the same JSON as Plotly's objects without their cost.
    ordered = sorted(days, key=lambda row: row.day)
    x = [row.day.isoformat() for row in ordered]
    traces = [
        {
            "type": "bar",
            "name": "Billed",
            "x": x,
            "y": [float(row.billed) for row in ordered],
            "marker": {"color": "#0f766e"},
        },
        {
            "type": "scatter",
            "name": "Estimated",
            "x": x,
            "y": [float(row.estimated) for row in ordered],
            "mode": "lines+markers",
            "line": {"color": "#f59e0b"},
        },
        {
            "type": "scatter",
            "name": "Uncalibrated",
            "x": x,
            "y": [float(row.uncalibrated) for row in ordered],
            "mode": "lines",
            "line": {"color": "#94a3b8", "dash": "dot"},
        },
    ]
    layout = {
        "template": design.plotly_default_template(),
        "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
        "height": 300,
        "legend": {"orientation": "h"},
    }
    return design.figure_json(data=traces, layout=layout)


@login_required
@require_GET
def deployment_accuracy_page(request: HttpRequest, slug: str) -> HttpResponse:
    deployment = Deployment.objects.filter(slug=slug).first()
    if deployment is None:
        raise Http404(f"No deployment {slug!r}.")
    report = estimate_accuracy_report(user=request.user, filters=CostFilters(deployment=slug), with_days=True)
    history = calibration_history(user=request.user, deployment=slug)
    days = sorted(report.deployment_days, key=lambda row: row.day, reverse=True)
    return render(
        request,
        "attribution/deployment_accuracy.html",
        {
            "deployment": deployment,
            "report": report,
            "days": days,
            "history": history,
            "figures": {"trend": _trend_figure(report.deployment_days)},
        },
    )
