"""What the Routing, Gateways and Deployments pages show, in a bounded number of queries.

Routing data is shared reference data (no team owns a gateway or a deployment), so every signed-in
role reads these pages; changing them (pins, policies, tokens) is the admin's, in the admin.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from attribution import design
from attribution.models import Deployment, ServedModel
from routing import selectors
from routing.models import DeploymentRouting, Gateway, PolicyDocument, PushAttempt, RouteState, WeightPin
from routing.whatif import pareto_frontier

TIMELINE_LIMIT = 50


def routed_models() -> list[ServedModel]:
    return list(ServedModel.objects.filter(gateways__isnull=False).distinct().order_by("name"))


def model_routes(*, model: ServedModel) -> list[dict]:
    """Current weights per class, origin and team, from the stored route states."""
    slugs = dict(Deployment.objects.filter(model=model).values_list("id", "slug"))
    from routing.optimiser import shares_to_points

    rows = []
    for state in (
        RouteState.objects.filter(model=model)
        .select_related("team")
        .order_by("request_class", "origin", "team_id")
    ):
        points = shares_to_points({int(k): float(v) for k, v in state.weights.items()})
        rows.append(
            {
                "request_class": state.request_class,
                "origin": state.origin or "any",
                "team": state.team.name if state.team else "",
                "weights": sorted(
                    ((slugs.get(d, d), p) for d, p in points.items()), key=lambda item: -item[1]
                ),
                "problem": state.last_problem,
                "updated_at": state.updated_at,
            }
        )
    return rows


def model_timeline(*, model: ServedModel) -> list[dict]:
    """Weight changes of this model with their reason, newest first (one row per published change;
    the same change published to several gateways is shown once)."""
    seen: set[tuple] = set()
    rows = []
    documents = PolicyDocument.objects.filter(gateway__served_models=model).order_by("-created_at")
    for document in documents.only("created_at", "reason", "reason_detail", "diff", "version")[:500]:
        moves = [_move_text(change) for change in document.diff if change.get("model") == model.slug]
        if not moves:
            continue
        key = (document.reason, document.reason_detail, tuple(moves))
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "at": document.created_at,
                "reason": document.get_reason_display(),
                "detail": document.reason_detail,
                "moves": moves,
            }
        )
        if len(rows) >= TIMELINE_LIMIT:
            break
    return rows


def _move_text(change: dict) -> str:
    before = "–" if change["before"] is None else change["before"]
    after = "–" if change["after"] is None else change["after"]
    scope = change["class"] + (f", {change['team']}" if change["team"] else "")
    return f"{change['deployment']} {before}→{after} ({scope})"


def model_pins(*, model: ServedModel, now: dt.datetime) -> list[WeightPin]:
    return list(WeightPin.objects.filter(model=model, expires_at__gt=now).select_related("created_by"))


def pareto_figure(*, model: ServedModel, now: dt.datetime, proposed: dict[str, int] | None = None) -> dict:
    """Each deployment's unit cost vs p95; the frontier; the current (and proposed) mix. Plain dicts
    (design.trace, design.figure_json): the same JSON bytes as Plotly's objects gave."""
    deployments = selectors.routable_deployments(model=model)
    ids = [d.id for d in deployments]
    costs = selectors.unit_costs_per_1m_tokens(
        deployment_ids=ids, today=now.date(), currency=selectors.routing_currency()
    )
    latencies = selectors.route_latencies(deployment_ids=ids, origin="")
    points = [
        (d.slug, float(costs[d.id]), latencies[d.id])
        for d in deployments
        if d.id in costs and d.id in latencies
    ]
    layout: dict = {"template": design.plotly_default_template()}
    if not points:
        return design.figure_json(data=[], layout=layout)
    frontier = pareto_frontier(points)
    traces = [
        design.trace(
            "scatter",
            mode="markers+text",
            name="Deployments",
            text=[p[0] for p in points],
            textposition="top center",
            x=[p[1] for p in points],
            y=[p[2] for p in points],
        ),
        design.trace(
            "scatter",
            mode="lines",
            name="Pareto frontier",
            x=[p[1] for p in frontier],
            y=[p[2] for p in frontier],
        ),
    ]
    by_slug = {p[0]: p for p in points}
    state = RouteState.objects.filter(model=model, request_class="realtime", team=None).first()
    mixes = []
    if state and state.weights:
        slugs = dict(Deployment.objects.filter(model=model).values_list("id", "slug"))
        mixes.append(("Current", {slugs.get(int(k)): float(v) * 100 for k, v in state.weights.items()}))
    if proposed:
        mixes.append(("Proposed", {k: float(v) for k, v in proposed.items()}))
    for name, weights in mixes:
        known = {slug: w for slug, w in weights.items() if slug in by_slug and w > 0}
        total = sum(known.values())
        if total:
            traces.append(
                design.trace(
                    "scatter",
                    marker={"size": 14, "symbol": "diamond"},
                    mode="markers",
                    name=f"{name} policy",
                    x=[sum(by_slug[s][1] * w for s, w in known.items()) / total],
                    y=[sum(by_slug[s][2] * w for s, w in known.items()) / total],
                )
            )
    layout.update(
        xaxis={"title": {"text": f"Unit cost per 1M tokens ({selectors.routing_currency()})"}},
        yaxis={"title": {"text": "p95 latency (ms)"}},
        margin={"t": 20, "l": 60, "r": 20, "b": 50},
        height=360,
    )
    return design.figure_json(data=traces, layout=layout)


def gateway_rows() -> list[dict]:
    gateways = list(Gateway.objects.prefetch_related("served_models").order_by("slug"))
    latest = {
        row["gateway_id"]: row
        for row in PolicyDocument.objects.order_by("gateway_id", "-version")
        .distinct("gateway_id")
        .values("gateway_id", "version", "created_at", "reason")
    }
    pushes: dict[int, list[PushAttempt]] = {}
    for attempt in PushAttempt.objects.select_related("document").order_by("-started_at")[:200]:
        pushes.setdefault(attempt.gateway_id, [])
        if len(pushes[attempt.gateway_id]) < 5:
            pushes[attempt.gateway_id].append(attempt)
    return [
        {
            "gateway": gateway,
            "models": [m.slug for m in gateway.served_models.all()],
            "latest": latest.get(gateway.id),
            "lagging": latest.get(gateway.id) is not None
            and (gateway.applied_version or 0) < latest[gateway.id]["version"],
            "pushes": pushes.get(gateway.id, []),
        }
        for gateway in gateways
    ]


def deployment_rows(*, now: dt.datetime) -> list[dict]:
    deployments = list(
        Deployment.objects.select_related("model", "routing", "routing__spot_pair").order_by(
            "model__name", "slug"
        )
    )
    costs = selectors.unit_costs_per_1m_tokens(
        deployment_ids=[d.id for d in deployments], today=now.date(), currency=selectors.routing_currency()
    )
    rows = []
    for deployment in deployments:
        profile: DeploymentRouting | None = getattr(deployment, "routing", None)
        rows.append(
            {
                "deployment": deployment,
                "profile": profile,
                "health": profile.get_health_display() if profile else "Healthy (not probed)",
                "health_key": profile.health if profile else "healthy",
                "unit_cost": costs.get(deployment.id),
                "capacity_tps": profile.capacity_tps if profile else None,
            }
        )
    return rows


def parse_decimal(value: str | None) -> Decimal | None:
    try:
        return Decimal(value) if value not in (None, "") else None
    except ArithmeticError:
        return None
