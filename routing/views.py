"""Routing pages: per model (weights, timeline, Pareto, what-if, pins), gateways, deployments."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from attribution.models import ServedModel
from routing import page_selectors, selectors
from routing.choices import Objective
from routing.whatif import Proposal, whatif_replay

MAX_REPLAY_DAYS = 31


@login_required
def routing_index(request: HttpRequest) -> HttpResponse:
    return render(request, "routing/index.html", {"models": page_selectors.routed_models()})


def _proposal(request: HttpRequest) -> tuple[Proposal | None, list[str]]:
    if "replay" not in request.GET:
        return None, []
    errors = []
    params = request.GET
    objective = params.get("objective") or None
    if objective and objective not in Objective.values:
        errors.append(f"objective: choose one of {', '.join(Objective.values)}.")
    numbers = {}
    for name in ("latency_slo_ms", "max_share_per_deployment", "min_share_per_provider", "price_per_1m"):
        raw = params.get(name, "")
        value = page_selectors.parse_decimal(raw)
        if raw and value is None:
            errors.append(f"{name}: {raw!r} is not a number.")
        numbers[name] = value
    for name in ("max_share_per_deployment", "min_share_per_provider"):
        if numbers[name] is not None and not 0 <= numbers[name] <= 1:
            errors.append(f"{name}: give a share between 0 and 1.")
    if errors:
        return None, errors
    return (
        Proposal(
            objective=objective,
            latency_slo_ms=float(numbers["latency_slo_ms"])
            if numbers["latency_slo_ms"] is not None
            else None,
            max_share_per_deployment=float(numbers["max_share_per_deployment"])
            if numbers["max_share_per_deployment"] is not None
            else None,
            min_share_per_provider=float(numbers["min_share_per_provider"])
            if numbers["min_share_per_provider"] is not None
            else None,
            removed_deployment=params.get("removed_deployment", ""),
            price_slug=params.get("price_slug", ""),
            price_per_1m=numbers["price_per_1m"],
        ),
        [],
    )


@login_required
def routing_model(request: HttpRequest, slug: str) -> HttpResponse:
    model = get_object_or_404(ServedModel, slug=slug)
    now = timezone.now()
    proposal, errors = _proposal(request)
    try:
        days = min(MAX_REPLAY_DAYS, max(1, int(request.GET.get("days", 7))))
    except ValueError:
        days, errors = 7, [*errors, "days: give a whole number of days."]
    replay = whatif_replay(model=model, proposal=proposal, days=days, now=now) if proposal else None
    return render(
        request,
        "routing/model.html",
        {
            "model": model,
            "routes": page_selectors.model_routes(model=model),
            "timeline": page_selectors.model_timeline(model=model),
            "pins": page_selectors.model_pins(model=model, now=now),
            "deployments": list(model.deployments.order_by("slug").values_list("slug", flat=True)),
            "objectives": Objective.choices,
            "replay": replay,
            "errors": errors,
            "days": days,
            "query": request.GET,
            "figures": {
                "pareto": page_selectors.pareto_figure(
                    model=model, now=now, proposed=replay.proposed_weights if replay else None
                )
            },
        },
    )


@login_required
def gateways(request: HttpRequest) -> HttpResponse:
    return render(request, "routing/gateways.html", {"rows": page_selectors.gateway_rows()})


@login_required
def deployments(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "routing/deployments.html",
        {
            "rows": page_selectors.deployment_rows(now=timezone.now()),
            # The currency deployment_rows' unit costs are in (one, for the whole routing table).
            "currency": selectors.routing_currency(),
        },
    )
