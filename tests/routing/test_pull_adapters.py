"""Envoy REST xDS and Traefik provider endpoints, as the gateways call them."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from routing import services
from routing.auth import LAST_SEEN_PRECISION
from routing.models import Gateway
from tests.routing.conftest import routed_deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(llama, pull_gateway):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00", endpoint="http://10.0.0.1:8000")
    routed_deployment(
        llama, "llama-gcp", cost_per_1m="2.00", provider="gcp", endpoint="https://gcp.example:8443"
    )
    services.policies_republish(reason="cost")
    return pull_gateway


def discovery(path: str, gateway, token: str, **fields):
    body = {"node": {"id": gateway.slug, "cluster": "edge", "metadata": {"token": token}}, **fields}
    return Client().post(path, json.dumps(body), content_type="application/json")


def test_envoy_routes_weighted_clusters_versioned_by_the_document(published):
    gateway, token = published
    response = discovery("/v3/discovery:routes", gateway, token, resource_names=["edge-routes"])
    assert response.status_code == 200
    answer = response.json()
    assert answer["version_info"] == "1"
    (resource,) = answer["resources"]
    assert resource["name"] == "edge-routes"
    assert resource["@type"] == "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    routes = {route["name"]: route for route in resource["virtual_hosts"][0]["routes"]}
    # Envoy takes the first match: the batch route (model and class headers) before the realtime
    # one (model header), the catch-alls last (batch on the class header, then everything).
    assert list(routes) == ["llama-70b-batch", "llama-70b-realtime", "default-batch", "default"]
    model = {"name": "x-inferensys-model", "string_match": {"exact": "llama-70b"}}
    batch = {"name": "x-inferensys-class", "string_match": {"exact": "batch"}}
    assert routes["llama-70b-batch"]["match"]["headers"] == [model, batch]
    assert routes["llama-70b-realtime"]["match"]["headers"] == [model]
    assert routes["default-batch"]["match"]["headers"] == [batch]
    assert routes["default"]["match"] == {"prefix": "/"}
    # Zero weights are left out: the drained or unused deployment gets nothing.
    for route in routes.values():
        assert route["route"]["weighted_clusters"]["clusters"] == [{"name": "llama-aws", "weight": 100}]
    # Envoy's ACK (version_info it holds) is the applied version, and unchanged means 304.
    assert discovery("/v3/discovery:routes", gateway, token, version_info="1").status_code == 304
    gateway.refresh_from_db()
    assert gateway.applied_version == 1


def test_envoy_polls_write_last_seen_at_most_every_few_seconds_but_every_applied_version(published):
    gateway, token = published
    discovery("/v3/discovery:routes", gateway, token)
    gateway.refresh_from_db()
    first_seen = gateway.last_seen_at
    assert first_seen is not None
    with CaptureQueriesContext(connection) as polls:
        for path in ("/v3/discovery:routes", "/v3/discovery:clusters", "/v3/discovery:routes"):
            assert discovery(path, gateway, token).status_code == 200
    assert not [q["sql"] for q in polls.captured_queries if q["sql"].startswith("UPDATE")]
    gateway.refresh_from_db()
    assert gateway.last_seen_at == first_seen
    # An ACK of a new version is written at once, with the time it was seen.
    assert discovery("/v3/discovery:routes", gateway, token, version_info="1").status_code == 304
    gateway.refresh_from_db()
    assert gateway.applied_version == 1 and gateway.last_seen_at > first_seen
    # Once "last seen" is older than its precision, the next poll refreshes it.
    stale = timezone.now() - LAST_SEEN_PRECISION - dt.timedelta(seconds=1)
    Gateway.objects.filter(pk=gateway.pk).update(last_seen_at=stale)
    discovery("/v3/discovery:clusters", gateway, token, version_info="1")
    gateway.refresh_from_db()
    assert gateway.last_seen_at > stale + LAST_SEEN_PRECISION


def test_envoy_clusters_name_each_deployment_endpoint(published):
    gateway, token = published
    clusters = discovery("/v3/discovery:clusters", gateway, token).json()["resources"]
    addresses = {
        c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ]
        for c in clusters
    }
    assert addresses == {
        "llama-aws": {"address": "10.0.0.1", "port_value": 8000},
        "llama-gcp": {"address": "gcp.example", "port_value": 8443},
    }


def test_envoy_discovery_refuses_a_wrong_token_or_node(published):
    gateway, token = published
    assert discovery("/v3/discovery:routes", gateway, "ifs_deadbeef_nope").status_code == 401
    gateway.slug = "someone-else"
    assert discovery("/v3/discovery:routes", gateway, token).status_code == 401
    assert (
        Client().post("/v3/discovery:routes", "not json", content_type="application/json").status_code == 400
    )


def test_traefik_gets_a_weighted_service_and_a_304_when_unchanged(published):
    gateway, token = published
    client = Client()
    response = client.get("/api/v1/gateways/self/traefik", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    config = response.json()["http"]
    assert config["services"]["model-llama-70b"] == {
        "weighted": {"services": [{"name": "llama-aws", "weight": 100}]}
    }
    assert config["services"]["llama-aws"] == {"loadBalancer": {"servers": [{"url": "http://10.0.0.1:8000"}]}}
    assert config["routers"]["default"]["service"] == "model-llama-70b"
    again = client.get(
        "/api/v1/gateways/self/traefik",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IF_NONE_MATCH=response["ETag"],
    )
    assert again.status_code == 304
