"""Routing's alerts are governance alerts like any other: an infeasible policy and a gateway that
lags behind the latest version each make an Alert whose kind is one of AlertKind's choices, that the
alerts API lists and filters by kind, and that the Alerts page shows with a readable label."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from governance.choices import AlertKind
from governance.models import Alert
from routing import services
from routing.models import RoutingPolicy
from tests.factories import UserFactory
from tests.routing.conftest import routed_deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(username="cfo", roles=["finance"]))
    return client


def listed(client: APIClient, kind: str) -> list[dict]:
    response = client.get(f"/api/v1/alerts?kind={kind}&state=open")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_an_infeasible_policy_makes_an_alert_the_alerts_api_lists(llama, pull_gateway, finance_api):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    services.policies_republish(reason="cost")
    assert listed(finance_api, "routing_infeasible") == []
    # Two providers can not each have at least 60%.
    RoutingPolicy.objects.filter(model=llama).update(min_share_per_provider=Decimal("0.6"))
    services.policies_republish(reason="manual")

    alerts = listed(finance_api, "routing_infeasible")
    assert {alert["details"]["request_class"] for alert in alerts} == {"realtime", "batch"}
    assert all(alert["kind"] == "routing_infeasible" for alert in alerts)
    assert all("min_share_per_provider" in alert["message"] for alert in alerts)
    # The filter really filters: the other routing kind lists none of them.
    assert listed(finance_api, "gateway_lag") == []
    for alert in Alert.objects.filter(kind=AlertKind.ROUTING_INFEASIBLE):
        alert.full_clean()  # the stored kind is a valid choice


def _infeasible_messages() -> set[str]:
    return set(Alert.objects.filter(kind=AlertKind.ROUTING_INFEASIBLE).values_list("message", flat=True))


def test_a_cost_ceiling_alert_shows_money_as_the_ui_does(llama, pull_gateway):
    """The ceiling is stored with 10 decimal places and the route's cost is averaged from the bill:
    the alert (mail, Slack, the alerts page) shows both in cents with the currency, and says what
    happened to the weights."""
    routed_deployment(llama, "llama-aws", cost_per_1m="1.23456789")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.5", provider="gcp")
    services.policies_republish(reason="cost")
    RoutingPolicy.objects.filter(model=llama).update(
        objective="fastest_within_budget", cost_ceiling_per_1m_tokens=Decimal("0.5")
    )
    services.policies_republish(reason="manual")

    assert _infeasible_messages() == {
        "Routing policy for llama-70b realtime from us-east-1 is infeasible (cost_ceiling): Cost ceiling "
        "0.50 USD per 1M tokens is below the cheapest route (1.23 USD). The last weights are kept."
    }


def test_a_first_publish_under_an_infeasible_policy_says_what_it_relaxed(llama, pull_gateway):
    RoutingPolicy.objects.filter(model=llama).update(
        objective="fastest_within_budget", cost_ceiling_per_1m_tokens=Decimal("0.5")
    )
    routed_deployment(llama, "llama-aws", cost_per_1m="1.23456789")
    services.policies_republish(reason="manual")

    assert _infeasible_messages() == {
        "Routing policy for llama-70b realtime from us-east-1 is infeasible (cost_ceiling): Cost ceiling "
        "0.50 USD per 1M tokens is below the cheapest route (1.23 USD). "
        "No earlier weights to keep: published with cost_ceiling relaxed."
    }


def test_a_lagging_gateway_makes_an_alert_the_alerts_api_lists(llama, pull_gateway, finance_api, settings):
    settings.ROUTING_APPLY_DEADLINE_SECONDS = 60
    gateway, _ = pull_gateway
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    (document,) = services.policies_republish(reason="cost")
    assert services.gateways_lag_check(now=timezone.now() + dt.timedelta(seconds=61)) == 1

    (alert,) = listed(finance_api, "gateway_lag")
    assert alert["details"] == {"gateway": gateway.slug, "latest": document.version, "applied": None}
    assert f"Gateway {gateway.slug} reports version none" in alert["message"]
    assert listed(finance_api, "routing_infeasible") == []
    Alert.objects.get(pk=alert["id"]).full_clean()


def test_an_unknown_kind_is_refused_with_the_valid_choices(finance_api):
    response = finance_api.get("/api/v1/alerts?kind=no_such_kind")
    assert response.status_code == 400
    assert "kind" in response.json()


def test_the_alerts_page_labels_and_filters_routing_kinds(llama, pull_gateway, settings):
    settings.ROUTING_APPLY_DEADLINE_SECONDS = 60
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    services.policies_republish(reason="cost")
    services.gateways_lag_check(now=timezone.now() + dt.timedelta(seconds=61))
    RoutingPolicy.objects.filter(model=llama).update(min_share_per_provider=Decimal("0.6"))
    services.policies_republish(reason="manual")
    client = Client()
    client.force_login(UserFactory(username="cfo", roles=["finance"]))

    page = client.get("/governance/alerts/?state=open&kind=gateway_lag").content.decode()
    assert '<option value="gateway_lag" selected>Gateway behind the latest policy</option>' in page
    assert '<option value="routing_infeasible">Routing policy infeasible</option>' in page
    assert "<td>Gateway behind the latest policy</td>" in page
    assert "<td>Routing policy infeasible</td>" not in page

    page = client.get("/governance/alerts/?state=open&kind=routing_infeasible").content.decode()
    assert "<td>Routing policy infeasible</td>" in page
    assert "<td>Gateway behind the latest policy</td>" not in page
