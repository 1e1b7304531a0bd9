"""The Alerts page says why: each anomaly's stored contributors and each budget alert's spend split
by what its scope leaves open, each linking to a page that shows it; a lead sees only their own
teams' contributors; the number of queries does not grow with the alerts."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.test import Client

from attribution.models import ServedModel
from governance.models import Alert
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
OCTOBER = {"period_start": "2026-10-01", "period_end": "2026-11-01", "currency": "USD"}


@pytest.fixture
def world():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    search, ads = TeamFactory(slug="search", name="Search"), TeamFactory(slug="ads", name="Ads")
    llama, mistral = ServedModelFactory(slug="llama"), ServedModelFactory(slug="mistral")
    search_h100 = DeploymentFactory(slug="search-h100", model=llama, provider="aws")
    mistral_a100 = DeploymentFactory(slug="mistral-a100", model=mistral, provider="aws")
    ads_secret = DeploymentFactory(slug="ads-secret-deployment", model=llama, provider="aws")
    for day, llama_cost in ((dt.date(2026, 10, 6), "100.10"), (dt.date(2026, 10, 7), "200.15")):
        DailyCostFactory(
            day=day, account=aws, team=search, model=llama, deployment=search_h100,
            service_name="SageMaker", billed_cost=Decimal(llama_cost), effective_cost=Decimal(llama_cost),
        )  # fmt: skip
        DailyCostFactory(
            day=day, account=aws, team=search, model=mistral, deployment=mistral_a100,
            service_name="Vertex AI", billed_cost=Decimal("50.00"), effective_cost=Decimal("50.00"),
        )  # fmt: skip
        DailyCostFactory(
            day=day, account=aws, team=ads, model=llama, deployment=ads_secret,
            service_name="Ads only service", billed_cost=Decimal("999.00"), effective_cost=Decimal("999.00"),
        )  # fmt: skip
    # September: outside the budget's period, never counted in it.
    DailyCostFactory(
        day=dt.date(2026, 9, 30), account=aws, team=search, model=mistral, deployment=mistral_a100,
        service_name="Vertex AI", billed_cost=Decimal("5000.00"), effective_cost=Decimal("5000.00"),
    )  # fmt: skip
    Alert.objects.create(
        kind="anomaly", team=search, message="Team search spent more", dedup_key="anomaly:search",
        details={
            "dimension": "team", "value": "search", "day": "2026-10-07", "currency": "USD",
            "contributors": [
                {"dimension": "deployment", "value": "search-h100", "actual": "200.15", "expected": "100.10",
                 "delta": "100.05", "basis": "billed"},
                # Never stored for a team's anomaly (its rows are that team's), and never shown if it were.
                {"dimension": "team", "value": "ads", "actual": "9", "expected": "1", "delta": "8",
                 "basis": "billed"},
            ],
        },
    )  # fmt: skip
    Alert.objects.create(
        kind="anomaly", team=ads, message="Team ads spent more", dedup_key="anomaly:ads",
        details={
            "dimension": "team", "value": "ads", "day": "2026-10-07", "currency": "USD",
            "contributors": [{"dimension": "deployment", "value": "ads-secret-deployment", "actual": "999",
                              "expected": "1", "delta": "998.00", "basis": "billed"}],
        },
    )  # fmt: skip
    budget = BudgetFactory(team=search, name="Search monthly", amount=Decimal("300"))
    Alert.objects.create(
        kind="budget_threshold", team=search, budget=budget, message="Search monthly reached 100 %",
        dedup_key="budget:search", details={**OCTOBER, "budget": budget.pk},
    )  # fmt: skip
    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=search, role="lead")
    return {"lead": lead, "finance": UserFactory(username="finance", roles=["finance"]), "search": search}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _contributors(page: str) -> dict[str, tuple[str, str]]:
    """Contributor link text -> (its explorer address, the amount beside it)."""
    found = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>\s*<span class="muted">([^<]+)</span>', page)
    return {text.strip(): (html.unescape(href), amount.strip()) for href, text, amount in found}


def _explorer_total(client, url: str) -> str:
    """The explorer table's grand total (the last cell of its totals row)."""
    page = client.get(url).content.decode()
    assert "Select a valid choice" not in page, url
    totals = page[page.rindex("<tr", 0, page.rindex("</tfoot>")) :]
    return re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", totals, re.S)[-1].strip()


def test_an_anomaly_names_what_rose_with_a_link_to_the_explorer_filtered_to_it(world):
    client = _client(world["lead"])
    contributors = _contributors(client.get("/governance/alerts/").content.decode())
    url, amount = contributors["Deployment search-h100"]
    assert amount == "+$100.05 over usual"
    assert url == (
        "/explorer/?start=2026-09-24&end=2026-10-07&granularity=day&cost=amortized&currency=USD"
        "&group_by=service&f_team=search&f_deployment=search-h100"
    )
    # The link opens the explorer on exactly that spend: the two days on search-h100.
    assert _explorer_total(client, url) == "$300.25"


def test_a_budget_alert_splits_its_period_spend_by_what_its_scope_leaves_open(world):
    client = _client(world["lead"])
    contributors = _contributors(client.get("/governance/alerts/").content.decode())
    # Search's October by model (the team is the budget's scope): llama 100.10 + 200.15, mistral
    # 2 x 50.00; September's 5000.00 is not in the period.
    assert contributors["Model llama"][1] == "$300.25 in the period"
    assert contributors["Model mistral"][1] == "$100.00 in the period"
    assert not any(text.startswith("Team ") for text in contributors)
    # The Overview shows a team's model on the budget's basis (allocated, with estimates).
    url = contributors["Model llama"][0]
    llama = ServedModel.objects.get(slug="llama")
    assert url == f"/?start=2026-10-01&end=2026-10-31&team={world['search'].pk}&model={llama.pk}"
    assert client.get(url).status_code == 200


def test_a_lead_never_sees_another_teams_contributor(world):
    page = _client(world["lead"]).get("/governance/alerts/").content.decode()
    assert "ads-secret-deployment" not in page
    assert "Ads only service" not in page
    assert "Team ads" not in page
    # Finance sees every team's alerts and their contributors (but a team's anomaly names no other team).
    page = _client(world["finance"]).get("/governance/alerts/").content.decode()
    assert "Deployment ads-secret-deployment" in _contributors(page)


def test_the_page_reads_a_fixed_number_of_queries_however_many_alerts_and_rows(
    world, assert_page_queries_flat
):
    search = world["search"]
    account = CloudAccountFactory(slug="aws-more", provider="aws")

    def grow():
        expected = []
        for index in range(4):
            model = ServedModelFactory(slug=f"grown-model-{index}")
            month = dt.date(2026, 2 + index, 1)
            for day in (month, month + dt.timedelta(days=3)):
                DailyCostFactory(
                    day=day, account=account, team=search, model=model, service_name=f"grown-service-{index}",
                    billed_cost=Decimal("10.00"), effective_cost=Decimal("10.00"),
                )  # fmt: skip
            budget = BudgetFactory(team=search, name=f"Grown {index}")
            end = dt.date(2026, 3 + index, 1)
            Alert.objects.create(
                kind="budget_threshold", team=search, budget=budget, message=f"grown budget {index}",
                dedup_key=f"grown-budget-{index}",
                details={"period_start": month.isoformat(), "period_end": end.isoformat(), "currency": "USD"},
            )  # fmt: skip
            Alert.objects.create(
                kind="anomaly", team=search, message=f"grown anomaly {index}",
                dedup_key=f"grown-anomaly-{index}",
                details={"dimension": "team", "value": "search", "day": "2026-10-07", "currency": "USD",
                         "contributors": [{"dimension": "service", "value": f"anomalous-{index}",
                                           "delta": "1.00"}]},
            )  # fmt: skip
            expected += [f"Model grown-model-{index}", f"anomalous-{index}"]
        return expected

    # Budget reasons on the budget's basis read allocated, not-yet-allocated billed and estimated rows
    # (3); the links read the explorer's choices (2) and the models' ids (1).
    assert_page_queries_flat(_client(world["lead"]), "/governance/alerts/", grow=grow, ceiling=15)
