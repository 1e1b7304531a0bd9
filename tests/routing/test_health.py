"""Health from active probes against real HTTP backends: drained within one cycle, restored
gradually, and the gateway-lag alert."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from governance.models import Alert
from routing import services
from routing.models import DeploymentRouting, Gateway, PolicyDocument
from tests.routing.conftest import routed_deployment
from tests.routing.stubs import StubBackends

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def backends():
    stubs = StubBackends(["aws", "gcp"])
    yield stubs
    stubs.close()


def route(document: PolicyDocument) -> dict[str, int]:
    return document.content["models"]["llama-70b"]["routes"][0]["weights"]


@pytest.fixture
def probed(llama, pull_gateway, backends):
    backends.healthy.update(aws=True, gcp=True)
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00", endpoint=backends.url("aws"))
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp", endpoint=backends.url("gcp"))
    return pull_gateway[0]


def test_a_failing_probe_drains_within_one_cycle_and_recovery_is_gradual(probed, backends, settings):
    settings.ROUTING_RESTORE_STEP = "0.25"
    (first,) = services.evaluation_cycle_run()
    assert route(first) == {"llama-aws": 100, "llama-gcp": 0}

    backends.healthy["aws"] = False
    (drained,) = services.evaluation_cycle_run()
    assert route(drained) == {"llama-aws": 0, "llama-gcp": 100}
    assert drained.reason == "health" and "llama-aws failing: HTTP 503" in drained.reason_detail
    profile = DeploymentRouting.objects.get(deployment__slug="llama-aws")
    assert (profile.health, profile.health_source) == ("unhealthy", "probe")

    backends.healthy["aws"] = True
    shares = [route(services.evaluation_cycle_run()[0])["llama-aws"] for _ in range(3)]
    assert shares == [25, 50, 75]  # capped, one step per cycle
    (restored,) = services.evaluation_cycle_run()
    assert route(restored)["llama-aws"] == 100
    assert DeploymentRouting.objects.get(deployment__slug="llama-aws").health == "healthy"


def test_an_unreachable_deployment_is_drained(probed, backends):
    DeploymentRouting.objects.filter(deployment__slug="llama-gcp").update(
        probe_url="http://127.0.0.1:9/health"
    )
    services.evaluation_cycle_run(probe_timeout=0.5)
    profile = DeploymentRouting.objects.get(deployment__slug="llama-gcp")
    assert profile.health == "unhealthy"
    assert "127.0.0.1:9" in profile.health_reason


def test_a_gateway_that_does_not_apply_the_latest_version_raises_one_alert(probed, settings):
    settings.ROUTING_APPLY_DEADLINE_SECONDS = 60
    gateway = probed
    services.evaluation_cycle_run()
    assert services.gateways_lag_check() == 0  # still within the deadline
    later = timezone.now() + dt.timedelta(seconds=61)
    assert services.gateways_lag_check(now=later) == 1
    assert services.gateways_lag_check(now=later) == 0  # one alert per version, not per check
    alert = Alert.objects.get(kind="gateway_lag")
    assert "edge-us reports version none; version 1" in alert.message
    Gateway.objects.filter(pk=gateway.pk).update(applied_version=1)
    assert services.gateways_lag_check(now=later + dt.timedelta(minutes=5)) == 0
