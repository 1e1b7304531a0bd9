"""Envoy: REST-JSON xDS polling. Envoy POSTs a DiscoveryRequest to `/v3/discovery:routes` (and
`:clusters`) every `refresh_delay`; the answer is a DiscoveryResponse whose `version_info` is the
policy document's version, or HTTP 304 when Envoy already holds that version.

The gateway is identified by the request's `node.id` (its slug) and authenticated by
`node.metadata.token` (its gateway token), because a REST config source cannot add headers.

Routes per model and request class: `x-inferensys-model: <model>` with `x-inferensys-class: batch`
takes the model's batch route, the model header alone its realtime route (the default class);
then catch-alls to the first model (batch when the class header says so, else realtime). Each has
`weighted_clusters` over the model's deployments (cluster name = deployment slug).
Zero weights are left out: Envoy rejects a weighted cluster set whose weights sum to 0, and a
deployment with no weight must get nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from routing.adapters import BATCH, CLASS_HEADER, REALTIME, route_weights

ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
MODEL_HEADER = "x-inferensys-model"
CLASS_MATCH = {"name": CLASS_HEADER, "string_match": {"exact": BATCH}}


def _weighted(weights: dict[str, int]) -> dict[str, Any]:
    clusters = [{"name": slug, "weight": weight} for slug, weight in sorted(weights.items()) if weight > 0]
    return {"weighted_clusters": {"clusters": clusters}}


def routes_response(
    *, content: dict[str, Any], version: int, route_config_name: str, origin: str
) -> dict[str, Any]:
    # Envoy takes the first route that matches, so the batch routes (model and class headers) come
    # before the model's realtime route (model header only), and the catch-alls come last.
    routes = []
    defaults: dict[str, dict[str, int]] = {}
    for model in sorted(content["models"]):
        for request_class in (BATCH, REALTIME):
            weights = route_weights(content, model=model, request_class=request_class, origin=origin)
            if not any(weights.values()):
                continue  # a model without a batch route: its batch requests take the realtime one
            defaults.setdefault(request_class, weights)
            headers = [{"name": MODEL_HEADER, "string_match": {"exact": model}}]
            if request_class == BATCH:
                headers.append(CLASS_MATCH)
            routes.append(
                {
                    "name": f"{model}-{request_class}",
                    "match": {"prefix": "/", "headers": headers},
                    "route": _weighted(weights),
                }
            )
    if BATCH in defaults:
        routes.append(
            {"name": "default-batch", "match": {"prefix": "/", "headers": [CLASS_MATCH]},
             "route": _weighted(defaults[BATCH])}
        )  # fmt: skip
    if REALTIME in defaults:
        routes.append({"name": "default", "match": {"prefix": "/"}, "route": _weighted(defaults[REALTIME])})
    resource = {
        "@type": ROUTE_TYPE,
        "name": route_config_name,
        "virtual_hosts": [{"name": "inferensys", "domains": ["*"], "routes": routes}],
    }
    return {"version_info": str(version), "resources": [resource], "type_url": ROUTE_TYPE}


def clusters_response(*, content: dict[str, Any], version: int) -> dict[str, Any]:
    resources = []
    for model in sorted(content["models"]):
        for slug, deployment in sorted(content["models"][model]["deployments"].items()):
            endpoint = urlsplit(deployment["endpoint"] or "")
            if not endpoint.hostname:
                continue
            port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
            resources.append(
                {
                    "@type": CLUSTER_TYPE,
                    "name": slug,
                    "type": "STRICT_DNS",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": slug,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": endpoint.hostname,
                                                    "port_value": port,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            )
    return {"version_info": str(version), "resources": resources, "type_url": CLUSTER_TYPE}
