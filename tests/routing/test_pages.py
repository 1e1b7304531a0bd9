"""Routing pages: who may see them, what they show, bounded queries; the what-if replay to the cent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import UsageRecord
from routing import services
from routing.models import RouteLatency
from routing.whatif import Proposal, pareto_frontier, whatif_replay
from tests.factories import UserFactory
from tests.routing.conftest import routed_deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def routed(llama, pull_gateway):
    aws = routed_deployment(llama, "llama-aws", cost_per_1m="1.00", capacity_tps=Decimal("100"))
    gcp = routed_deployment(llama, "llama-gcp", cost_per_1m="3.00", provider="gcp")
    RouteLatency.objects.create(deployment=aws, origin="", p95_ms=900)
    RouteLatency.objects.create(deployment=gcp, origin="", p95_ms=300)
    services.policies_republish(reason="cost")
    return aws, gcp


def usage(deployment, hour: dt.datetime, tokens: int) -> None:
    UsageRecord.objects.create(
        bucket_start=hour,
        bucket_seconds=3600,
        reporter="edge-us",
        deployment=deployment,
        model=deployment.model,
        requests=tokens // 1000,
        input_tokens=tokens // 2,
        output_tokens=tokens // 2,
    )


def test_every_role_reads_the_pages_and_anonymous_is_sent_to_login(
    client, routed, django_assert_max_num_queries
):
    assert client.get("/routing/").status_code == 302
    client.force_login(UserFactory(username="viewer", roles=["viewer"]))
    assert "llama-70b" in client.get("/routing/").content.decode()
    with django_assert_max_num_queries(25):
        page = client.get("/routing/models/llama-70b/")
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-deployment="llama-aws">llama-aws 100' in body
    assert "First document" in body or "No changes published yet" in body
    with django_assert_max_num_queries(12):
        gateways = client.get("/routing/gateways/")
    assert 'data-gateway="edge-us"' in gateways.content.decode()
    with django_assert_max_num_queries(12):
        deployments = client.get("/routing/deployments/")
    assert "$1.00" in deployments.content.decode()  # unit cost per 1M tokens, as money


def test_the_pages_do_not_grow_queries_with_rows(client, routed, llama, django_assert_max_num_queries):
    client.force_login(UserFactory(username="finance", roles=["finance"]))
    for index in range(8):
        routed_deployment(llama, f"llama-extra-{index}", cost_per_1m="5.00", provider="azure")
    with django_assert_max_num_queries(12):
        assert client.get("/routing/deployments/").status_code == 200


def test_whatif_replays_usage_under_a_proposal_to_the_cent(routed):
    aws, gcp = routed
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    # Two hours: 720,000 tokens (200 tokens/s, AWS holds 100) and 180,000 (50 tokens/s).
    usage(gcp, now - dt.timedelta(hours=2), 720_000)
    usage(gcp, now - dt.timedelta(hours=1), 180_000)
    replay = whatif_replay(
        model=aws.model, proposal=Proposal(objective="cheapest_within_slo"), days=1, now=now
    )
    # What happened: all 900,000 tokens on GCP at 3.00 per 1M = 2.70.
    assert replay.actual.cost == Decimal("2.70")
    # Proposed: hour 1 half on AWS (capacity 100 of 200 tokens/s): 360k x 1 + 360k x 3 = 1.44;
    # hour 2 all on AWS: 0.18. Total 1.62.
    assert replay.proposed.cost == Decimal("1.62")
    assert replay.saving == Decimal("1.08")
    assert replay.proposed_weights == {"llama-aws": 50, "llama-gcp": 50}
    with_slo = whatif_replay(
        model=aws.model,
        proposal=Proposal(objective="cheapest_within_slo", latency_slo_ms=500),
        days=1,
        now=now,
    )
    assert with_slo.proposed.cost == Decimal("2.70") and with_slo.proposed.slo_violations == 0
    assert with_slo.actual.slo_violations == 0
    removed = whatif_replay(
        model=aws.model, proposal=Proposal(removed_deployment="llama-aws"), days=1, now=now
    )
    assert removed.proposed.cost == Decimal("2.70")
    cheaper = whatif_replay(
        model=aws.model,
        proposal=Proposal(price_slug="llama-gcp", price_per_1m=Decimal("0.50")),
        days=1,
        now=now,
    )
    assert cheaper.proposed.cost == Decimal("0.45")


def test_the_whatif_form_reports_bad_input(client, routed):
    client.force_login(UserFactory(username="lead", roles=["team_lead"]))
    page = client.get(
        "/routing/models/llama-70b/", {"replay": 1, "max_share_per_deployment": "2", "latency_slo_ms": "x"}
    )
    body = page.content.decode()
    assert "latency_slo_ms: &#x27;x&#x27; is not a number." in body
    ok = client.get("/routing/models/llama-70b/", {"replay": 1, "objective": "cheapest_within_slo"})
    assert 'id="replay"' in ok.content.decode()


def test_the_pareto_frontier_keeps_only_undominated_points():
    points = [("a", 1.0, 900.0), ("b", 2.0, 300.0), ("c", 2.5, 800.0), ("d", 4.0, 100.0), ("e", 1.0, 950.0)]
    assert pareto_frontier(points) == [("a", 1.0, 900.0), ("b", 2.0, 300.0), ("d", 4.0, 100.0)]


def test_the_pareto_figure_is_the_same_built_checked_or_unchecked(
    client, routed, page_figures_checked_and_unchecked
):
    client.force_login(UserFactory(username="finance", roles=["finance"]))
    checked, unchecked = page_figures_checked_and_unchecked(client, "/routing/models/llama-70b/")
    assert checked["pareto"]["data"]
    assert unchecked == checked


def test_the_models_page_reads_a_fixed_number_of_queries_however_many_models(
    client, routed, pull_gateway, assert_page_queries_flat
):
    from tests.factories import ServedModelFactory

    gateway, _ = pull_gateway

    def grow():
        for index in range(4):
            gateway.served_models.add(ServedModelFactory(slug=f"served-{index}", name=f"Served {index}"))
        return [f"Served {index}" for index in range(4)]

    client.force_login(UserFactory(username="viewer", roles=["viewer"]))
    assert_page_queries_flat(client, "/routing/", grow=grow, ceiling=8)


def test_a_models_routing_page_reads_a_fixed_number_of_queries_however_many_deployments_and_changes(
    client, routed, llama, assert_page_queries_flat
):
    def grow():
        for index in range(4):
            deployment = routed_deployment(llama, f"llama-more-{index}", cost_per_1m=f"0.{index + 1}0")
            RouteLatency.objects.create(deployment=deployment, origin="", p95_ms=500 + index)
            services.policies_republish(reason="cost")
        return [f'data-deployment="llama-more-{index}"' for index in range(4)]

    client.force_login(UserFactory(username="viewer", roles=["viewer"]))
    assert_page_queries_flat(client, "/routing/models/llama-70b/", grow=grow, ceiling=20)


def test_the_gateways_page_reads_a_fixed_number_of_queries_however_many_gateways(
    client, routed, llama, assert_page_queries_flat
):
    from routing.models import Gateway

    def grow():
        for index in range(4):
            gateway = Gateway.objects.create(
                name=f"Edge {index}", slug=f"edge-{index}", kind="pull_only", origin_provider="gcp",
                origin_region="us-central1",
            )  # fmt: skip
            gateway.served_models.add(llama)
        services.policies_republish(reason="cost")
        return [f'data-gateway="edge-{index}"' for index in range(4)]

    client.force_login(UserFactory(username="viewer", roles=["viewer"]))
    assert_page_queries_flat(client, "/routing/gateways/", grow=grow, ceiling=10)
