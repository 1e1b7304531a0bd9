"""The gateway-facing API: policy pull with a strong ETag and 304, status reports, spot notices."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from governance.services import api_token_create
from routing import services
from routing.models import DeploymentRouting, Gateway, PolicyDocument, RouteLatency
from routing.services import gateway_token_rotate
from tests.factories import UserFactory
from tests.routing.conftest import routed_deployment

pytestmark = pytest.mark.django_db
POLICY = "/api/v1/gateways/self/policy"
STATUS = "/api/v1/gateways/self/status"


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def published(llama, pull_gateway):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    services.policies_republish(reason="cost")
    return pull_gateway


def test_it_serves_the_document_with_a_strong_etag_and_answers_304(published, django_assert_max_num_queries):
    gateway, token = published
    client = Client()
    response = client.get(POLICY, **bearer(token))
    assert response.status_code == 200
    document = PolicyDocument.objects.get(gateway=gateway)
    assert response["ETag"] == f'"1-{document.content_hash}"'
    body = json.loads(response.content)
    assert body["version"] == 1 and body["content_hash"] == document.content_hash
    assert body["policy"]["models"]["llama-70b"]["routes"][0]["weights"] == {"llama-aws": 100, "llama-gcp": 0}
    # The same bytes every time: the tag is over the stored content.
    assert client.get(POLICY, **bearer(token)).content == response.content
    with django_assert_max_num_queries(1):  # the token lookup brings the current (version, hash)
        again = client.get(POLICY, HTTP_IF_NONE_MATCH=response["ETag"], **bearer(token))
    assert again.status_code == 304 and again.content == b""
    assert client.get(POLICY, HTTP_IF_NONE_MATCH='"0-stale"', **bearer(token)).status_code == 200


def test_it_refuses_callers_that_are_not_this_gateway(published):
    client = Client()
    assert client.get(POLICY).status_code == 401
    assert client.get(POLICY, **bearer("ifs_abcdefgh_wrong")).status_code == 401
    user = UserFactory(username="finance", roles=["finance"])
    _, user_token = api_token_create(user=user, name="script", scopes=["read"])
    assert client.get(POLICY, **bearer(user_token)).status_code == 403


def test_a_gateway_sees_only_its_own_document(published, llama):
    other = Gateway.objects.create(name="Other", slug="other", kind="pull_only")
    token = gateway_token_rotate(gateway=other, actor=None)
    response = Client().get(POLICY, **bearer(token))
    assert response.status_code == 404
    assert "No policy has been published" in response.json()["detail"]


def test_status_records_the_applied_version_and_latencies(published):
    gateway, token = published
    response = Client().post(
        STATUS,
        {
            "applied_version": 1,
            "deployments": [
                {"deployment": "llama-gcp", "healthy": True, "latency_p95_ms": 420, "error_rate": 0.01}
            ],
        },
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"applied_version": 1, "latest_version": 1, "republished": []}
    gateway.refresh_from_db()
    assert gateway.applied_version == 1 and gateway.applied_at is not None
    latency = RouteLatency.objects.get(deployment__slug="llama-gcp")
    assert (latency.origin, latency.p95_ms, latency.reported_by) == ("us-east-1", 420, "edge-us")


def test_a_bad_status_report_is_refused_and_changes_nothing(published):
    gateway, token = published
    response = Client().post(
        STATUS,
        {
            "applied_version": 1,
            "deployments": [
                {"deployment": "llama-gcp", "latency_p95_ms": 100},
                {"deployment": "not-ours", "healthy": False},
            ],
        },
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 400
    assert (
        "deployments[1]: 'not-ours' is not a deployment of a model this gateway serves"
        in response.content.decode()
    )
    gateway.refresh_from_db()
    assert gateway.applied_version is None
    assert not RouteLatency.objects.exists()


def test_a_reported_failure_drains_the_deployment_at_once(published):
    gateway, token = published
    response = Client().post(
        STATUS,
        {"applied_version": 1, "deployments": [{"deployment": "llama-aws", "error_rate": 0.9}]},
        content_type="application/json",
        **bearer(token),
    )
    assert response.json()["republished"] == [2]
    document = PolicyDocument.objects.get(gateway=gateway, version=2)
    assert document.reason == "health"
    assert document.content["models"]["llama-70b"]["routes"][0]["weights"] == {
        "llama-aws": 0,
        "llama-gcp": 100,
    }


def test_a_spot_notice_drains_at_once_and_the_pair_takes_the_load(llama, pull_gateway):
    gateway, token = pull_gateway
    on_demand = routed_deployment(llama, "llama-aws-od", cost_per_1m="3.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    routed_deployment(llama, "llama-aws-spot", cost_per_1m="1.00", spot_pair=on_demand)
    from routing.models import RoutingPolicy

    RoutingPolicy.objects.filter(model=llama).update(max_step=Decimal("0.1"))
    services.policies_republish(reason="cost")
    assert PolicyDocument.objects.get(version=1).content["models"]["llama-70b"]["routes"][0]["weights"] == {
        "llama-aws-od": 0,
        "llama-aws-spot": 100,
        "llama-gcp": 0,
    }
    response = Client().post(
        STATUS,
        {"applied_version": 1, "deployments": [{"deployment": "llama-aws-spot", "spot_notice": True}]},
        content_type="application/json",
        **bearer(token),
    )
    assert response.json()["republished"] == [2]
    document = PolicyDocument.objects.get(gateway=gateway, version=2)
    assert document.reason == "spot_notice"
    # The on-demand pair takes it all, though GCP is cheaper; max step (10 points) does not hold it back.
    assert document.content["models"]["llama-70b"]["routes"][0]["weights"] == {
        "llama-aws-od": 100,
        "llama-aws-spot": 0,
        "llama-gcp": 0,
    }
    assert DeploymentRouting.objects.get(deployment__slug="llama-aws-spot").health == "interrupted"
