"""Traefik: dynamic configuration for its HTTP provider
(`--providers.http.endpoint=<base>/api/v1/gateways/self/traefik`,
`--providers.http.headers.Authorization=Bearer <gateway token>`).

One `weighted` service per model and request class over one `loadBalancer` service per
deployment (its endpoint URL). Routers: per model on the `X-Inferensys-Model` header (realtime,
the default class) and on that header plus `x-inferensys-class: batch` (batch, higher priority);
then low-priority catch-alls to the first model (batch on the class header, else realtime).
Traefik applies a config that decodes even when it is wrong (every request then 404s), so this is
only ever rendered from a published, validated document.
"""

from __future__ import annotations

from typing import Any

from routing.adapters import BATCH, CLASS_HEADER, REALTIME, route_weights

MODEL_HEADER = "X-Inferensys-Model"
CLASS_RULE = f"Header(`{CLASS_HEADER}`, `{BATCH}`)"


def dynamic_configuration(
    *, content: dict[str, Any], origin: str, entry_points: list[str] | None = None
) -> dict[str, Any]:
    routers: dict[str, Any] = {}
    services: dict[str, Any] = {}
    first: dict[str, str] = {}  # request class -> the weighted service of the first model

    def router(rule: str, service: str, priority: int) -> dict[str, Any]:
        found = {"rule": rule, "service": service, "priority": priority}
        if entry_points:
            found["entryPoints"] = entry_points
        return found

    for model in sorted(content["models"]):
        body = content["models"][model]
        for request_class in (REALTIME, BATCH):
            weights = route_weights(content, model=model, request_class=request_class, origin=origin)
            positive = {slug: weight for slug, weight in sorted(weights.items()) if weight > 0}
            if not positive:
                continue  # a model without a batch route: its batch requests take the realtime one
            for slug in positive:
                endpoint = body["deployments"].get(slug, {}).get("endpoint")
                if endpoint:
                    services[slug] = {"loadBalancer": {"servers": [{"url": endpoint}]}}
            name = f"model-{model}" if request_class == REALTIME else f"model-{model}-{request_class}"
            services[name] = {
                "weighted": {
                    "services": [
                        {"name": slug, "weight": weight}
                        for slug, weight in positive.items()
                        if slug in services
                    ]
                }
            }
            rule = f"Header(`{MODEL_HEADER}`, `{model}`)"
            if request_class == REALTIME:
                routers[name] = router(rule, name, 100)
            else:  # the longer rule wins by priority, not by Traefik's default (rule length)
                routers[name] = router(f"{rule} && {CLASS_RULE}", name, 200)
            first.setdefault(request_class, name)
    if BATCH in first:
        routers["default-batch"] = router(CLASS_RULE, first[BATCH], 2)
    if REALTIME in first:
        routers["default"] = router("PathPrefix(`/`)", first[REALTIME], 1)
    return {"http": {"routers": routers, "services": services}}
