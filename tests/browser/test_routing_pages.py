"""The routing pages in a real browser, as finance and as a team lead: Routing index, a model's page
(current weights, the Pareto chart, the what-if form), Gateways and Deployments. Each renders with
no console error and no serious or critical axe-core violation; the Pareto chart is drawn with its
points; the what-if form, submitted, shows the replay that routing.whatif computes for the same
proposal, to the cent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import UsageRecord
from routing import services
from routing.models import Gateway, RouteLatency, RoutingPolicy
from routing.whatif import Proposal, whatif_replay
from tests.factories import MembershipFactory, ServedModelFactory, TeamFactory, UserFactory
from tests.routing.conftest import routed_deployment

PAGES = {
    "Routing": "/routing/",
    "Model": "/routing/models/llama-70b/",
    "Gateways": "/routing/gateways/",
    "Deployments": "/routing/deployments/",
}


@pytest.fixture
def routed_world(db):
    model = ServedModelFactory(slug="llama-70b", name="llama-70b")
    RoutingPolicy.objects.create(
        model=model, objective="cheapest_within_slo", latency_slo_ms=500, max_step=1, hysteresis=0
    )
    aws = routed_deployment(model, "llama-aws", cost_per_1m="1.00", capacity_tps=Decimal("100"))
    gcp = routed_deployment(model, "llama-gcp", cost_per_1m="3.00", provider="gcp")
    azure = routed_deployment(model, "llama-azure", cost_per_1m="2.00", provider="azure")
    RouteLatency.objects.create(deployment=aws, origin="", p95_ms=900)
    RouteLatency.objects.create(deployment=gcp, origin="", p95_ms=300)
    RouteLatency.objects.create(deployment=azure, origin="", p95_ms=450)
    gateway = Gateway.objects.create(
        name="Edge US", slug="edge-us", kind="pull_only", origin_provider="aws", origin_region="us-east-1"
    )
    gateway.served_models.add(model)
    services.policies_republish(reason="cost")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for hours_ago, tokens in ((3, 720_000), (2, 180_000), (1, 360_000)):
        UsageRecord.objects.create(
            bucket_start=hour - dt.timedelta(hours=hours_ago),
            bucket_seconds=3600,
            reporter="edge-us",
            deployment=gcp,
            model=model,
            requests=tokens // 1000,
            input_tokens=tokens // 2,
            output_tokens=tokens // 2,
        )
    search = TeamFactory(slug="search")
    lead = UserFactory(username="lead1", roles=["team_lead"])
    MembershipFactory(user=lead, team=search, role="lead")
    finance = UserFactory(username="finance1", roles=["finance"])
    return {"model": model, "users": {"finance": finance, "team_lead": lead}}


def _check_pages(tab) -> list[str]:
    failures = []
    for label, path in PAGES.items():
        status = tab.visit(path)
        if status != 200:
            failures.append(f"{label}: HTTP {status}")
            continue
        failures += [f"{label}: {problem}" for problem in tab.problems]
        failures += [f"{label}: axe {violation}" for violation in tab.axe_violations()]
        if label == "Model":
            page = tab.page
            if page.locator("[data-figure=pareto] .main-svg").count() == 0:
                failures.append("Model: the Pareto chart is not drawn")
            # A marker per deployment (all three have a cost and a latency), the frontier, the mix.
            chart = page.locator("[data-figure=pareto]")
            labels = chart.locator(".scatterlayer .textpoint").all_text_contents()
            if sorted(labels) != ["llama-aws", "llama-azure", "llama-gcp"]:
                failures.append(f"Model: the Pareto chart labels {labels}")
            legend = chart.locator(".legendtext").all_text_contents()
            if legend != ["Deployments", "Pareto frontier", "Current policy"]:
                failures.append(f"Model: the Pareto chart's legend is {legend}")
            weights = page.locator("#routes .weight").all_text_contents()
            if not any(text.startswith("llama-") for text in weights):
                failures.append(f"Model: no current weights shown ({weights})")
        if label == "Gateways" and tab.page.locator("[data-gateway=edge-us]").count() != 1:
            failures.append("Gateways: edge-us is not listed")
        if label == "Deployments":
            rows = tab.page.locator("text=llama-azure").count()
            if rows == 0:
                failures.append("Deployments: llama-azure is not listed")
    return failures


@pytest.mark.parametrize("role", ["finance", "team_lead"])
def test_routing_pages_render_cleanly_and_the_whatif_form_replays(routed_world, browser_tab, role):
    tab = browser_tab
    tab.login(routed_world["users"][role].username)
    failures = _check_pages(tab)
    assert not failures, "\n".join(failures)

    # The what-if form: drop the SLO's fast deployment, replay the last day.
    tab.visit(PAGES["Model"])
    page = tab.page
    page.fill("#whatif input[name=days]", "1")
    page.select_option("#whatif select[name=removed_deployment]", "llama-gcp")
    page.click("#whatif button[type=submit]")
    page.wait_for_selector("#replay")
    assert "removed_deployment=llama-gcp" in page.url
    assert tab.problems == []
    assert tab.axe_violations() == []
    cells = {
        row.locator("td").first.inner_text(): [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator("#replay tbody tr").all()
    }
    expected = whatif_replay(
        model=routed_world["model"],
        proposal=Proposal(removed_deployment="llama-gcp"),
        days=1,
        now=timezone.now(),
    )
    assert cells["What happened"][1] == str(expected.actual.cost), cells
    assert cells["Proposed"][1] == str(expected.proposed.cost), cells
    assert expected.proposed.cost != expected.actual.cost  # the proposal changes something
