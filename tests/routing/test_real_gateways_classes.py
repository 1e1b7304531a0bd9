"""Real gateways honour the request class: `x-inferensys-class: batch` takes the model's batch route,
anything else its realtime route (HAProxy by header ACL to a batch backend whose weights are pushed,
Envoy by a header match in the polled RouteConfiguration, Traefik by a router on the header).

The case is small and exact: AWS is cheaper but too slow for the realtime SLO, so the optimiser
publishes realtime 0/100 (everything to GCP) and batch 100/0 (everything to AWS: batch ignores
latency). 200 requests of each class through each gateway go exactly where their class says. Each
gateway process starts once (one test per gateway).
"""

from __future__ import annotations

import shutil

import pytest

from routing import services
from routing.adapters import PushError
from routing.models import Gateway, PolicyDocument, RouteLatency, RoutingPolicy
from routing.services import gateway_token_rotate
from tests.factories import ServedModelFactory
from tests.routing.conftest import routed_deployment
from tests.routing.gateways import (
    ControlPlane,
    envoy_bootstrap,
    envoy_start,
    haproxy_config,
    haproxy_start,
    scratch_dir,
    send_requests,
    traefik_start,
    wait_for,
)
from tests.routing.stubs import StubBackends, free_port

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 200
BATCH = {"x-inferensys-class": "batch"}
MODEL = {"x-inferensys-model": "llama-70b"}


@pytest.fixture(scope="module")
def backends():
    stubs = StubBackends(["llama-aws", "llama-gcp"])
    yield stubs
    stubs.close()


@pytest.fixture
def routed(backends):
    model = ServedModelFactory(slug="llama-70b", name="llama-70b")
    RoutingPolicy.objects.create(
        model=model, objective="cheapest_within_slo", latency_slo_ms=500, max_step=1, hysteresis=0
    )
    aws = routed_deployment(model, "llama-aws", cost_per_1m="1.00", endpoint=backends.url("llama-aws"))
    routed_deployment(
        model, "llama-gcp", cost_per_1m="2.00", provider="gcp", endpoint=backends.url("llama-gcp")
    )
    RouteLatency.objects.create(deployment=aws, origin="", p95_ms=900)  # over the 500 ms SLO
    return model


def gateway_create(model, kind: str, **fields) -> tuple[Gateway, str]:
    gateway = Gateway.objects.create(name=kind, slug=f"{kind}-edge", kind=kind, **fields)
    gateway.served_models.add(model)
    return gateway, gateway_token_rotate(gateway=gateway, actor=None)


def publish(gateway: Gateway) -> PolicyDocument:
    services.policies_republish(reason="cost")
    document = PolicyDocument.objects.filter(gateway=gateway).latest("version")
    routes = {r["class"]: r["weights"] for r in document.content["models"]["llama-70b"]["routes"]}
    assert routes == {
        "realtime": {"llama-aws": 0, "llama-gcp": 100},
        "batch": {"llama-aws": 100, "llama-gcp": 0},
    }
    return document


def assert_classes_routed(url: str) -> None:
    """Realtime (no class header, or another value) to GCP, batch to AWS, with and without the
    model header; exact counts."""
    assert send_requests(url, REQUESTS) == {"llama-gcp": REQUESTS}
    assert send_requests(url, REQUESTS, headers=MODEL | {"x-inferensys-class": "realtime"}) == {
        "llama-gcp": REQUESTS
    }
    assert send_requests(url, REQUESTS, headers=MODEL | BATCH) == {"llama-aws": REQUESTS}
    assert send_requests(url, REQUESTS, headers=BATCH) == {"llama-aws": REQUESTS}


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed (.ci/run installs it)")
def test_haproxy_sends_batch_requests_to_the_batch_backend_with_its_weights(routed, backends):
    workdir = scratch_dir("haproxy-classes-")
    port, runtime_port = free_port(), free_port()
    config = haproxy_config(
        port=port,
        runtime_port=runtime_port,
        backend="llama-70b",
        batch_backend="llama-70b-batch",
        servers={name: backends.ports[name] for name in ("llama-aws", "llama-gcp")},
        state_file=workdir / "state",
    )
    gateway, _ = gateway_create(
        routed,
        "haproxy",
        push_settings={
            "runtime_api": f"127.0.0.1:{runtime_port}",
            "backends": {"llama-70b": {"realtime": "llama-70b", "batch": "llama-70b-batch"}},
        },
    )
    haproxy = haproxy_start(workdir=workdir, config=config)
    url = f"http://127.0.0.1:{port}/v1/chat"
    try:
        wait_for(lambda: send_requests(url, 1).keys() & {"llama-aws", "llama-gcp"}, timeout=5, what="haproxy")
        document = publish(gateway)
        attempt = services.policy_document_push(document_id=document.id)
        assert attempt.outcome == "succeeded", attempt.error
        assert "llama-70b-batch/llama-gcp 50->0" in attempt.error
        assert "llama-70b/llama-aws 50->0" in attempt.error
        assert_classes_routed(url)
    finally:
        haproxy.stop()


def test_haproxy_push_refuses_an_unknown_request_class(routed):
    gateway, _ = gateway_create(
        routed,
        "haproxy",
        push_settings={"runtime_api": "127.0.0.1:9", "backends": {"llama-70b": {"bulk": "llama-70b-bulk"}}},
    )
    document = publish(gateway)
    with pytest.raises(
        PushError, match=r"backends\.llama-70b: unknown request class 'bulk' \(realtime, batch\)"
    ):
        services.policy_document_push(document_id=document.id)
    attempt = gateway.push_attempts.get()
    assert attempt.outcome == "failed" and "unknown request class 'bulk'" in attempt.error


def test_envoy_routes_batch_requests_by_the_class_header(routed, backends):
    workdir = scratch_dir("envoy-classes-")
    control_plane = ControlPlane()
    gateway, token = gateway_create(routed, "envoy")
    publish(gateway)
    port = free_port()
    envoy = envoy_start(
        workdir=workdir,
        bootstrap=envoy_bootstrap(
            node_id=gateway.slug,
            token=token,
            port=port,
            admin_port=free_port(),
            control_plane_port=control_plane.port,
            clusters={name: backends.ports[name] for name in ("llama-aws", "llama-gcp")},
        ),
    )

    def applied() -> bool:
        gateway.refresh_from_db()
        return gateway.applied_version == 1

    try:
        wait_for(applied, timeout=20, what=f"envoy to ACK version 1 ({envoy.output()})")
        assert_classes_routed(f"http://127.0.0.1:{port}/v1/chat")
    finally:
        envoy.stop()
        control_plane.stop()


def test_traefik_routes_batch_requests_by_the_class_header(routed, backends):
    workdir = scratch_dir("traefik-classes-")
    control_plane = ControlPlane()
    gateway, token = gateway_create(routed, "traefik")
    publish(gateway)
    port = free_port()
    traefik = traefik_start(
        workdir=workdir,
        port=port,
        endpoint=f"{control_plane.url}/api/v1/gateways/self/traefik",
        token=token,
    )
    url = f"http://127.0.0.1:{port}/v1/chat"
    try:
        # Traefik answers 404 until its routes are loaded: ready when a backend answers.
        wait_for(
            lambda: send_requests(url, 1).keys() & {"llama-aws", "llama-gcp"}, timeout=20, what="traefik"
        )
        assert_classes_routed(url)
    finally:
        traefik.stop()
        control_plane.stop()
