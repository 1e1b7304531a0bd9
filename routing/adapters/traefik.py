"""Traefik: dynamic configuration for its HTTP provider
(`--providers.http.endpoint=<base>/api/v1/gateways/self/traefik`,
`--providers.http.headers.Authorization=Bearer <gateway token>`).

One `weighted` service per model over one `loadBalancer` service per deployment (its endpoint
URL), a router per model on the `X-Inferensys-Model` header and a lowest-priority catch-all to
the first model. Traefik applies a config that decodes even when it is wrong (every request then
404s), so this is only ever rendered from a published, validated document.
"""

from __future__ import annotations

from typing import Any

from routing.adapters import route_weights

MODEL_HEADER = "X-Inferensys-Model"


def dynamic_configuration(
    *,
    content: dict[str, Any],
    origin: str,
    request_class: str = "realtime",
    entry_points: list[str] | None = None,
) -> dict[str, Any]:
    routers: dict[str, Any] = {}
    services: dict[str, Any] = {}
    first = None
    for model in sorted(content["models"]):
        weights = route_weights(content, model=model, request_class=request_class, origin=origin)
        positive = {slug: weight for slug, weight in sorted(weights.items()) if weight > 0}
        if not positive:
            continue
        body = content["models"][model]
        for slug in positive:
            endpoint = body["deployments"].get(slug, {}).get("endpoint")
            if endpoint:
                services[slug] = {"loadBalancer": {"servers": [{"url": endpoint}]}}
        services[f"model-{model}"] = {
            "weighted": {
                "services": [
                    {"name": slug, "weight": weight} for slug, weight in positive.items() if slug in services
                ]
            }
        }
        router = {
            "rule": f"Header(`{MODEL_HEADER}`, `{model}`)",
            "service": f"model-{model}",
            "priority": 100,
        }
        if entry_points:
            router["entryPoints"] = entry_points
        routers[f"model-{model}"] = router
        first = first or model
    if first is not None:
        router = {"rule": "PathPrefix(`/`)", "service": f"model-{first}", "priority": 1}
        if entry_points:
            router["entryPoints"] = entry_points
        routers["default"] = router
    return {"http": {"routers": routers, "services": services}}
