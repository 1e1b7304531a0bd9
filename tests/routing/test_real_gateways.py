"""Real gateways follow the published weights: HAProxy (runtime API push), Envoy (REST xDS pull) and
Traefik (HTTP provider pull), each in front of two real HTTP backends.

For each: the optimiser publishes 70/30 (cheapest capped at a 70% maximum share), 1,000 requests
split within ±5 points; a price change publishes 20/80, checked again; a failing backend is drained
within one evaluation cycle (plus the gateway's poll); with the control plane gone, the gateway keeps
routing on its last document. Processes start once per test (one test per gateway in this module).
"""

from __future__ import annotations

import shutil
import threading
import time
from decimal import Decimal

import pytest

from attribution.models import UnitCost
from routing import services
from routing.models import Gateway, PolicyDocument, RoutingPolicy
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
REQUESTS = 1000
TOLERANCE = 50  # ±5 points of 1,000


@pytest.fixture(scope="module")
def backends():
    stubs = StubBackends(["llama-aws", "llama-gcp"])
    yield stubs
    stubs.close()


@pytest.fixture
def routed(backends):
    """One model on two backends; AWS cheaper, capped at 70% so the optimiser publishes 70/30."""
    backends.healthy.update({"llama-aws": True, "llama-gcp": True})
    model = ServedModelFactory(slug="llama-70b", name="llama-70b")
    RoutingPolicy.objects.create(
        model=model,
        objective="cheapest_within_slo",
        max_share_per_deployment=Decimal("0.7"),
        max_step=1,
        hysteresis=0,
    )
    routed_deployment(model, "llama-aws", cost_per_1m="1.00", endpoint=backends.url("llama-aws"))
    routed_deployment(
        model, "llama-gcp", cost_per_1m="2.00", provider="gcp", endpoint=backends.url("llama-gcp")
    )
    return model


def gateway_create(model, kind: str, **fields) -> tuple[Gateway, str]:
    gateway = Gateway.objects.create(name=kind, slug=f"{kind}-edge", kind=kind, **fields)
    gateway.served_models.add(model)
    return gateway, gateway_token_rotate(gateway=gateway, actor=None)


def assert_split(answered, *, aws: int, gcp: int) -> None:
    assert sum(answered.values()) == REQUESTS, answered
    assert abs(answered["llama-aws"] - aws * 10) <= TOLERANCE, answered
    assert abs(answered["llama-gcp"] - gcp * 10) <= TOLERANCE, answered


def weights(gateway: Gateway) -> dict[str, int]:
    document = PolicyDocument.objects.filter(gateway=gateway).latest("version")
    return document.content["models"]["llama-70b"]["routes"][0]["weights"]


def publish_price_change() -> None:
    """AWS becomes dearer and the cap rises to 80%: the optimiser publishes 20/80."""
    UnitCost.objects.filter(deployment__slug="llama-aws").update(effective_cost=Decimal("3.00"))
    RoutingPolicy.objects.update(max_share_per_deployment=Decimal("0.8"))
    services.policies_republish(reason="cost")


def push_latest(gateway: Gateway) -> None:
    """What the routing.policy_push task does after commit."""
    document = PolicyDocument.objects.filter(gateway=gateway).latest("version")
    attempt = services.policy_document_push(document_id=document.id)
    assert attempt is not None and attempt.outcome == "succeeded", attempt and attempt.error


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed (.ci/run installs it)")
def test_haproxy_follows_pushed_weights(routed, backends):
    workdir = scratch_dir("haproxy-")
    port, runtime_port = free_port(), free_port()
    config = haproxy_config(
        port=port,
        runtime_port=runtime_port,
        backend="llama-70b",
        servers={name: backends.ports[name] for name in ("llama-aws", "llama-gcp")},
        state_file=workdir / "state",
    )
    gateway, _ = gateway_create(
        routed,
        "haproxy",
        push_settings={"runtime_api": f"127.0.0.1:{runtime_port}", "state_file": str(workdir / "state")},
    )
    haproxy = haproxy_start(workdir=workdir, config=config)
    url = f"http://127.0.0.1:{port}/v1/chat"
    try:
        wait_for(
            lambda: send_requests(url, 1)["llama-aws"] + send_requests(url, 1)["llama-gcp"],
            timeout=5,
            what="haproxy",
        )
        services.policies_republish(reason="cost")
        assert weights(gateway) == {"llama-aws": 70, "llama-gcp": 30}
        push_latest(gateway)
        backends.reset()
        assert_split(send_requests(url, REQUESTS), aws=70, gcp=30)
        gateway.refresh_from_db()
        assert gateway.applied_version == 1

        publish_price_change()
        # Traffic flows while the push runs: raising before lowering never leaves the backend
        # without weight, so no request fails.
        during: list = []
        sender = threading.Thread(target=lambda: during.append(send_requests(url, 300)))
        sender.start()
        push_latest(gateway)
        sender.join()
        assert set(during[0]) <= {"llama-aws", "llama-gcp"}, during
        detail = gateway.push_attempts.latest("id").error
        assert detail.index("llama-gcp 30->80") < detail.index("llama-aws 70->20"), detail
        assert_split(send_requests(url, REQUESTS), aws=20, gcp=80)

        backends.healthy["llama-gcp"] = False
        services.evaluation_cycle_run()
        push_latest(gateway)
        assert weights(gateway) == {"llama-aws": 100, "llama-gcp": 0}
        assert send_requests(url, 200) == {"llama-aws": 200}

        # A reload (restart) reads the state file the push wrote: the pushed weights survive.
        haproxy.stop()
        haproxy = haproxy_start(workdir=workdir, config=config)
        wait_for(lambda: send_requests(url, 1)["llama-aws"], timeout=5, what="haproxy after restart")
        assert send_requests(url, 200) == {"llama-aws": 200}
    finally:
        haproxy.stop()


def test_envoy_follows_polled_weights_and_survives_the_control_plane(routed, backends):
    workdir = scratch_dir("envoy-")
    control_plane = ControlPlane()
    gateway, token = gateway_create(routed, "envoy")
    services.policies_republish(reason="cost")
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
    url = f"http://127.0.0.1:{port}/v1/chat"

    def applied(version: int):
        gateway.refresh_from_db()
        return gateway.applied_version == version

    try:
        wait_for(lambda: applied(1), timeout=20, what=f"envoy to ACK version 1 ({envoy.output()})")
        backends.reset()
        assert_split(send_requests(url, REQUESTS), aws=70, gcp=30)

        publish_price_change()
        wait_for(lambda: applied(2), timeout=5, what="envoy to ACK version 2")
        assert_split(send_requests(url, REQUESTS), aws=20, gcp=80)

        backends.healthy["llama-gcp"] = False
        services.evaluation_cycle_run()
        started = time.monotonic()
        wait_for(lambda: applied(3), timeout=5, what="envoy to ACK the drain")
        assert time.monotonic() - started < 3.5  # within its 1 s refresh (+ the request)
        assert send_requests(url, 200) == {"llama-aws": 200}

        control_plane.stop()
        control_plane = None
        time.sleep(2.5)  # several failed polls
        assert send_requests(url, REQUESTS) == {"llama-aws": REQUESTS}
    finally:
        envoy.stop()
        if control_plane is not None:
            control_plane.stop()


def test_traefik_follows_polled_weights_and_survives_the_control_plane(routed, backends):
    workdir = scratch_dir("traefik-")
    control_plane = ControlPlane()
    gateway, token = gateway_create(routed, "traefik")
    services.policies_republish(reason="cost")
    port = free_port()
    traefik = traefik_start(
        workdir=workdir,
        port=port,
        endpoint=f"{control_plane.url}/api/v1/gateways/self/traefik",
        token=token,
    )
    url = f"http://127.0.0.1:{port}/v1/chat"

    def split_is(aws: int) -> bool:
        return abs(send_requests(url, 100)["llama-aws"] - aws) <= 10

    try:
        # Traefik answers 404 until its routes are loaded: ready when a backend answers.
        wait_for(
            lambda: send_requests(url, 1).keys() & {"llama-aws", "llama-gcp"}, timeout=20, what="traefik"
        )
        backends.reset()
        assert_split(send_requests(url, REQUESTS), aws=70, gcp=30)

        publish_price_change()
        wait_for(lambda: split_is(20), timeout=5, interval=0.2, what="traefik to apply 20/80")
        assert_split(send_requests(url, REQUESTS), aws=20, gcp=80)

        backends.healthy["llama-gcp"] = False
        services.evaluation_cycle_run()
        started = time.monotonic()
        wait_for(lambda: send_requests(url, 20) == {"llama-aws": 20}, timeout=5, interval=0.2, what="drain")
        assert time.monotonic() - started < 4  # 1 s poll + apply
        assert send_requests(url, 200) == {"llama-aws": 200}

        control_plane.stop()
        control_plane = None
        time.sleep(2.5)
        assert send_requests(url, REQUESTS) == {"llama-aws": REQUESTS}
    finally:
        traefik.stop()
        if control_plane is not None:
            control_plane.stop()
