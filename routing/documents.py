"""The policy document a gateway receives: built from the stored route weights, budget actions and
quotas; canonical JSON bytes, their SHA-256 (the strong ETag), and the diff between versions.

The content holds nothing that changes by itself (no timestamps, no version), so the same routing
state gives the same bytes and the same hash, and publishing it again creates no new version.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.urls import reverse

from attribution.models import Deployment, ServedModel, Team
from routing import selectors
from routing.models import Gateway, RouteState
from routing.optimiser import shares_to_points

SCHEMA_VERSION = 1
# How often a pulling gateway should ask again (it sends If-None-Match, so an unchanged answer is a
# 304 of a few bytes).
REFRESH_SECONDS = 5


def canonical_bytes(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


def document_body(*, version: int, content_hash_hex: str, content: dict[str, Any]) -> bytes:
    """What GET .../policy returns: the version and hash around the content, canonical bytes."""
    return canonical_bytes({"version": version, "content_hash": content_hash_hex, "policy": content})


def gateway_content_build(*, gateway: Gateway, enforcement: list) -> dict[str, Any]:
    models = list(gateway.served_models.order_by("slug"))
    model_ids = [m.id for m in models]
    origins = gateway.origins
    states = [
        s
        for s in RouteState.objects.filter(model_id__in=model_ids, origin__in=origins).order_by(
            "model_id", "request_class", "origin", "team_id"
        )
    ]
    deployments = {d.id: d for d in Deployment.objects.filter(model_id__in=model_ids).order_by("slug")}
    team_ids = {s.team_id for s in states if s.team_id} | {s.team_id for s in enforcement if s.team_id}
    teams = dict(Team.objects.filter(id__in=team_ids).values_list("id", "slug"))
    rerouted_teams = {
        (s.team_id, s.model_id) for s in enforcement if s.action == "reroute" and s.team_id is not None
    }
    content: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "gateway": gateway.slug,
        "origins": origins,
        "models": {},
        "quotas": [],
        "throttles": [],
        "blocks": [],
        "lease": {
            "policy_url": reverse("v1:gateway-self-policy"),
            "status_url": reverse("v1:gateway-self-status"),
            "refresh_seconds": REFRESH_SECONDS,
        },
    }
    for model in models:
        model_deployments = {d.id: d for d in deployments.values() if d.model_id == model.id}
        routes = []
        for state in states:
            if state.model_id != model.id or not state.weights:
                continue
            if state.team_id is not None and not (
                (state.team_id, model.id) in rerouted_teams or (state.team_id, None) in rerouted_teams
            ):
                continue
            shares = {int(k): float(v) for k, v in state.weights.items() if int(k) in model_deployments}
            points = shares_to_points(shares)
            routes.append(
                {
                    "class": state.request_class,
                    "origin": state.origin,
                    "team": teams.get(state.team_id) if state.team_id else None,
                    "weights": {model_deployments[d].slug: p for d, p in sorted(points.items())},
                }
            )
        content["models"][model.slug] = {
            "routes": routes,
            "deployments": {
                d.slug: {
                    "endpoint": d.endpoint_url,
                    "provider": d.provider,
                    "region": d.region,
                    "residency": d.residency_region,
                }
                for d in model_deployments.values()
            },
        }
    _governance_fill(content, gateway=gateway, models=models, teams=teams, enforcement=enforcement)
    return content


def _governance_fill(
    content: dict[str, Any],
    *,
    gateway: Gateway,
    models: list[ServedModel],
    teams: dict[int, str],
    enforcement: list,
) -> None:
    """Quotas, throttles and blocks that apply to the models this gateway serves."""
    slugs = {m.id: m.slug for m in models}
    # Governance's effective quotas already carry its throttles (limit cut by the share) and blocks
    # (limit 0); the document states them as gateways must enforce them.
    quotas = selectors.quotas_effective()
    missing_teams = {q.team_id for q in quotas} - set(teams)
    if missing_teams:
        teams.update(dict(Team.objects.filter(id__in=missing_teams).values_list("id", "slug")))
    for quota in quotas:
        if quota.model_id is not None and quota.model_id not in slugs:
            continue
        if quota.gateway_id is not None and quota.gateway_id != gateway.id:
            continue
        content["quotas"].append(
            {
                # The quota's id: what a gateway asks a lease for (POST /api/v1/leases {"quota": id}).
                "id": quota.quota_id,
                "team": teams.get(quota.team_id),
                "model": slugs.get(quota.model_id) if quota.model_id else None,
                "metric": quota.metric,
                "window": quota.window,
                "limit": int(quota.limit),
                "configured_limit": int(getattr(quota, "configured_limit", quota.limit)),
                "reason": getattr(quota, "reason", ""),
            }
        )
    for state in enforcement:
        if state.model_id is not None and state.model_id not in slugs:
            continue
        entry = {
            "team": teams.get(state.team_id) if state.team_id else None,
            "model": slugs.get(state.model_id) if state.model_id else None,
            "provider": state.provider or None,
            "reason": state.reason,
        }
        if state.action == "throttle" and state.throttle_share is not None:
            content["throttles"].append({**entry, "throttle_share": str(state.throttle_share)})
        elif state.action == "block":
            content["blocks"].append(entry)
    for key in ("quotas", "throttles", "blocks"):
        content[key].sort(key=lambda item: json.dumps(item, sort_keys=True))


def document_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """Weight points that moved per route and deployment, and quota/throttle/block changes."""
    changes: list[dict[str, Any]] = []

    def route_weights(content: dict[str, Any] | None) -> dict[tuple, dict[str, int]]:
        found = {}
        for model, body in ((content or {}).get("models") or {}).items():
            for route in body.get("routes", []):
                found[(model, route["class"], route["origin"], route["team"])] = route["weights"]
        return found

    old, new = route_weights(before), route_weights(after)
    for key in sorted(set(old) | set(new), key=lambda k: tuple(str(part) for part in k)):
        model, request_class, origin, team = key
        before_weights, after_weights = old.get(key, {}), new.get(key, {})
        for deployment in sorted(set(before_weights) | set(after_weights)):
            was, now = before_weights.get(deployment, 0), after_weights.get(deployment, 0)
            if was != now or key not in old or key not in new:
                changes.append(
                    {
                        "model": model,
                        "class": request_class,
                        "origin": origin,
                        "team": team,
                        "deployment": deployment,
                        "before": was if key in old else None,
                        "after": now if key in new else None,
                    }
                )
    for section in ("quotas", "throttles", "blocks"):
        was = (before or {}).get(section, [])
        now = after.get(section, [])
        if was != now:
            changes.append({"section": section, "before": was, "after": now})
    return changes
