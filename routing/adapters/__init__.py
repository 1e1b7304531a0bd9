"""Renderers and pushers that turn one policy document into what each kind of gateway speaks.

Pull gateways (Envoy REST xDS, Traefik's HTTP provider, any HTTP client of GET .../policy) render
on request; push gateways (HAProxy runtime API, signed webhook) are pushed by `routing.tasks`. Every
adapter reads the same document, so all gateways route by the same weights.
"""

from __future__ import annotations

from typing import Any

from routing.choices import RequestClass

# The request header that selects a request class at a gateway; without it (or with any other
# value) a request is realtime. Gateways match it case-insensitively on the name, exactly on the value.
CLASS_HEADER = "x-inferensys-class"
REALTIME = RequestClass.REALTIME.value
BATCH = RequestClass.BATCH.value


class PushError(Exception):
    """A push did not take: the gateway stays on its last good document and the push is retried."""


def route_weights(content: dict[str, Any], *, model: str, request_class: str, origin: str) -> dict[str, int]:
    """The weights of the default (no team) route of one model, class and origin; the first origin's
    route when this origin has none."""
    routes = [r for r in content["models"].get(model, {}).get("routes", []) if r["team"] is None]
    for route in routes:
        if route["class"] == request_class and route["origin"] == origin:
            return route["weights"]
    for route in routes:
        if route["class"] == request_class:
            return route["weights"]
    return {}
