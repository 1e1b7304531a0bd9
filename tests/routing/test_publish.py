"""Evaluation and publishing: weights from attribution's unit costs, immutable versioned documents
with reason and diff, idempotent publish, infeasible policies, pins, budget actions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from governance.models import Alert, AuditEvent
from routing import services
from routing.models import EgressRate, PolicyDocument, RouteState, RoutingPolicy
from routing.selectors import EnforcementView
from tests.factories import TeamFactory, UserFactory
from tests.routing.conftest import price_card, routed_deployment

pytestmark = pytest.mark.django_db


def weights(document: PolicyDocument, model: str = "llama-70b", request_class: str = "realtime", team=None):
    for route in document.content["models"][model]["routes"]:
        if route["class"] == request_class and route["team"] == team:
            return route["weights"]
    raise AssertionError(f"no {request_class} route for team {team}")


def test_weights_follow_attribution_unit_costs_and_capacity(llama, pull_gateway):
    routed_deployment(llama, "llama-aws", cost_per_1m="2.00", capacity_tps=Decimal(1))
    routed_deployment(llama, "llama-gcp", cost_per_1m="1.20", provider="gcp", capacity_tps=Decimal(1))
    routed_deployment(llama, "llama-azure", cost_per_1m="3.00", provider="azure")
    # No usage: expected load 0, capacity does not bind, the cheapest takes everything.
    (document,) = services.policies_republish(reason="cost")
    assert weights(document) == {"llama-aws": 0, "llama-azure": 0, "llama-gcp": 100}
    assert document.version == 1 and document.reason == "initial"


def test_a_price_card_prices_a_deployment_without_unit_costs(llama, pull_gateway):
    routed_deployment(llama, "llama-aws", cost_per_1m="2.00")
    new = routed_deployment(llama, "llama-new", cost_per_1m="0", provider="gcp")
    new_unit_costs = new.__class__.objects.get(pk=new.pk)
    from attribution.models import UnitCost

    UnitCost.objects.filter(deployment=new_unit_costs).delete()
    price_card(new, "1.00")
    (document,) = services.policies_republish(reason="cost")
    assert weights(document) == {"llama-aws": 0, "llama-new": 100}


def test_egress_from_the_gateway_region_changes_the_ranking(llama, pull_gateway):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.50")
    routed_deployment(llama, "llama-gcp", cost_per_1m="1.00", provider="gcp", bytes_per_token=Decimal("5000"))
    (document,) = services.policies_republish(reason="cost")
    assert weights(document)["llama-gcp"] == 100
    # 0.12 $/GB × 5,000 bytes/token × 1M tokens = $0.60 per 1M tokens: now dearer than AWS.
    EgressRate.objects.create(provider="gcp", scope="internet", price_per_gb=Decimal("0.12"))
    (document,) = services.policies_republish(reason="cost")
    assert weights(document) == {"llama-aws": 100, "llama-gcp": 0}


def test_publishing_identical_content_makes_no_new_version(llama, pull_gateway):
    gateway, _ = pull_gateway
    routed_deployment(llama, "llama-aws", cost_per_1m="2.00")
    first = services.policies_republish(reason="cost")
    again = services.policies_republish(reason="cost")
    assert len(first) == 1 and again == []
    assert PolicyDocument.objects.filter(gateway=gateway).count() == 1


def test_a_new_version_says_why_and_what_moved(llama, pull_gateway):
    gateway, _ = pull_gateway
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    gcp = routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    services.policies_republish(reason="cost")
    from attribution.models import UnitCost

    UnitCost.objects.filter(deployment=gcp).update(effective_cost=Decimal("0.50"))
    (second,) = services.policies_republish(reason="cost", reason_detail="GCP price cut")
    assert (second.version, second.reason, second.reason_detail) == (2, "cost", "GCP price cut")
    moved = {
        (c["deployment"], c["class"]): (c["before"], c["after"]) for c in second.diff if "deployment" in c
    }
    assert moved[("llama-aws", "realtime")] == (100, 0)
    assert moved[("llama-gcp", "realtime")] == (0, 100)
    assert PolicyDocument.objects.get(gateway=gateway, version=1).content != second.content


def test_an_infeasible_policy_keeps_the_last_weights_and_raises_an_alert(llama, pull_gateway):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    (first,) = services.policies_republish(reason="cost")
    RoutingPolicy.objects.filter(model=llama).update(min_share_per_provider=Decimal("0.6"))
    assert services.policies_republish(reason="manual") == []
    alert = Alert.objects.get(kind="routing_infeasible", details__request_class="realtime")
    assert "min_share_per_provider" in alert.message and "60%" in alert.message
    state = RouteState.objects.get(model=llama, request_class="realtime", team=None)
    assert state.last_problem.startswith("min_share_per_provider")
    assert weights(PolicyDocument.objects.latest("version")) == weights(first)


def test_a_pin_overrides_until_it_expires(llama, pull_gateway):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    lead = UserFactory(username="ops")
    expires = timezone.now() + dt.timedelta(hours=1)
    services.weight_pin_create(
        model=llama,
        weights={"llama-aws": 30, "llama-gcp": 70},
        reason="GPU driver test",
        expires_at=expires,
        actor=lead,
    )
    (document,) = services.policies_republish(reason="manual")
    assert weights(document) == {"llama-aws": 30, "llama-gcp": 70}
    assert AuditEvent.objects.filter(action="pin_weights", actor=lead).exists()
    (after,) = services.policies_republish(reason="cost", now=expires + dt.timedelta(seconds=1))
    assert weights(after) == {"llama-aws": 100, "llama-gcp": 0}


def test_a_pin_with_bad_weights_is_refused_and_nothing_is_stored(llama):
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    with pytest.raises(ValidationError, match="add up to 90"):
        services.weight_pin_create(
            model=llama,
            weights={"llama-aws": 90},
            reason="x",
            expires_at=timezone.now() + dt.timedelta(hours=1),
            actor=None,
        )
    with pytest.raises(ValidationError, match="Not deployments of llama-70b: nope"):
        services.weight_pin_create(
            model=llama,
            weights={"llama-aws": 50, "nope": 50},
            reason="x",
            expires_at=timezone.now() + dt.timedelta(hours=1),
            actor=None,
        )
    assert not llama.weight_pins.exists()


def test_budget_actions_reroute_a_team_and_put_throttles_and_blocks_in_the_document(llama, pull_gateway):
    gateway, _ = pull_gateway
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    RoutingPolicy.objects.filter(model=llama).update(objective="fastest_within_budget")
    from routing.models import RouteLatency

    RouteLatency.objects.create(
        deployment_id=llama.deployments.get(slug="llama-gcp").id, origin="us-east-1", p95_ms=100
    )
    RouteLatency.objects.create(
        deployment_id=llama.deployments.get(slug="llama-aws").id, origin="us-east-1", p95_ms=900
    )
    search, research, ads = TeamFactory(slug="search"), TeamFactory(slug="research"), TeamFactory(slug="ads")
    enforcement = [
        EnforcementView(1, search.id, llama.id, "gcp", "reroute", None, "search over budget"),
        EnforcementView(2, research.id, None, "", "throttle", Decimal("0.25"), "research at 95%"),
        EnforcementView(3, ads.id, llama.id, "", "block", None, "ads budget exhausted"),
    ]
    for model in [llama]:
        services.routes_evaluate(model=model, enforcement=enforcement)
    document, created = services.policy_document_publish(
        gateway=gateway, reason="budget_action", enforcement=enforcement
    )
    assert created
    # Everyone else gets the fastest; the rerouted team gets its own cheapest route (not GCP).
    assert weights(document) == {"llama-aws": 0, "llama-gcp": 100}
    assert weights(document, team="search") == {"llama-aws": 100, "llama-gcp": 0}
    assert document.content["throttles"] == [
        {
            "team": "research",
            "model": None,
            "provider": None,
            "reason": "research at 95%",
            "throttle_share": "0.25",
        }
    ]
    assert document.content["blocks"] == [
        {"team": "ads", "model": "llama-70b", "provider": None, "reason": "ads budget exhausted"}
    ]
    # The reroute lifted: the team's own route disappears.
    services.routes_evaluate(model=llama, enforcement=[])
    lifted, _ = services.policy_document_publish(gateway=gateway, reason="budget_action", enforcement=[])
    assert [r["team"] for r in lifted.content["models"]["llama-70b"]["routes"]] == [None, None]
    assert lifted.content["throttles"] == [] and lifted.content["blocks"] == []
