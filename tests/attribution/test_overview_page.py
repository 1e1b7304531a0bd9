"""The overview page: who sees what, totals to the cent, figures present, bounded queries."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

LATEST = dt.date(2026, 10, 20)
OVERVIEW = reverse("attribution:overview")


@pytest.fixture
def world():
    """Three teams, two clouds, two models; some unallocated cost and some cost billed in EUR."""
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    gcp = CloudAccountFactory(slug="gcp-prod", provider="gcp")
    alpha, beta, gamma = (TeamFactory(slug=slug, name=slug.title()) for slug in ("alpha", "beta", "gamma"))
    llama = ServedModelFactory(slug="llama", name="llama-3.1-70b")
    mistral = ServedModelFactory(slug="mistral", name="mistral-large")
    llama_aws = DeploymentFactory(slug="llama-aws-use1", model=llama, provider="aws")
    mistral_gcp = DeploymentFactory(
        slug="mistral-gcp-euw4", model=mistral, provider="gcp", region="europe-west4"
    )

    def cost(day, account, team, model, deployment, billed, effective=None, currency="USD", items=3):
        return DailyCostFactory(
            day=day,
            account=account,
            team=team,
            model=model,
            deployment=deployment,
            billed_cost=Decimal(billed),
            effective_cost=Decimal(effective if effective is not None else billed),
            billing_currency=currency,
            line_items=items,
            service_name=f"svc-{currency}",
        )

    for offset in range(3):
        day = LATEST - dt.timedelta(days=offset)
        cost(day, aws, alpha, llama, llama_aws, "100.10", "90.05")
        cost(day, gcp, beta, mistral, mistral_gcp, "40.01", "40.01")
        cost(day, aws, gamma, llama, llama_aws, "7.77", "7.00")
        cost(day, aws, None, None, None, "12.34", "12.34")
        cost(day, gcp, alpha, mistral, mistral_gcp, "5.00", "4.50", currency="EUR")
    # Outside the default 90-day range: must not count.
    cost(LATEST - dt.timedelta(days=120), aws, alpha, llama, llama_aws, "999.99")

    people = {
        "admin": UserFactory(username="admin", is_staff=True, roles=["admin"]),
        "finance": UserFactory(username="finance", roles=["finance"]),
        "lead": UserFactory(username="lead", roles=["team_lead"]),
        "viewer": UserFactory(username="viewer", roles=["viewer"]),
        "outsider": UserFactory(username="outsider", roles=["viewer"]),
    }
    MembershipFactory(user=people["lead"], team=alpha, role="lead")
    MembershipFactory(user=people["lead"], team=beta, role="lead")
    MembershipFactory(user=people["viewer"], team=beta, role="member")
    return {
        "people": people,
        "teams": (alpha, beta, gamma),
        "models": (llama, mistral),
        "cost": cost,
        "accounts": (aws, gcp),
        "deployments": (llama_aws, mistral_gcp),
    }


def _figures(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="figures" type="application/json">') + len(
        '<script id="figures" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def _trace_sum(figure: dict, axis: str = "y") -> Decimal:
    # Round per point: the chart carries floats, the assertion stays in cents.
    return sum(
        (Decimal(str(value)).quantize(Decimal("0.01")) for trace in figure["data"] for value in trace[axis]),
        Decimal(0),
    )


def test_it_redirects_anonymous_users_to_login(client):
    response = client.get(OVERVIEW)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("persona", ["admin", "finance", "lead", "viewer"])
def test_it_renders_for_every_role_with_figures(client, world, persona):
    client.force_login(world["people"][persona])
    response = client.get(OVERVIEW)
    assert response.status_code == 200
    figures = _figures(response)
    assert set(figures) == {"by_provider", "by_team", "by_model"}
    for figure in figures.values():
        assert figure["data"], "every chart has at least one trace for these personas"
    html = response.content.decode()
    assert "vendor/plotly/plotly.min.js" in html
    assert "js/overview.js" in html
    assert html.count('data-figure="') == 3
    assert "Billed cost" in html  # every chart names its basis
    # Logout is a POST form with a CSRF token (Django 5 refuses GET logout).
    assert f'<form method="post" action="{reverse("logout")}"' in html
    assert "csrfmiddlewaretoken" in html


def test_it_shows_everything_to_finance_to_the_cent(client, world):
    client.force_login(world["people"]["finance"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    assert overview.start == LATEST - dt.timedelta(days=89)
    assert overview.end == LATEST
    # 3 days x (100.10 + 40.01 + 7.77 + 12.34) USD
    assert overview.billed_cost == Decimal("480.66")
    assert overview.effective_cost == Decimal("448.20")
    assert overview.unallocated_cost == Decimal("37.02")
    assert overview.unallocated_share.quantize(Decimal("0.01")) == Decimal("7.70")
    assert overview.line_items == 15 * 3
    assert "480.66" in response.content.decode()
    figures = _figures(response)
    assert _trace_sum(figures["by_provider"]) == Decimal("480.66")
    assert _trace_sum(figures["by_team"]) == Decimal("480.66")
    assert _trace_sum(figures["by_model"], axis="x") == Decimal("480.66")
    team_names = [trace["name"] for trace in figures["by_team"]["data"]]
    assert team_names[-1] == "Unallocated"


def test_it_limits_a_team_lead_to_their_teams_to_the_cent(client, world):
    client.force_login(world["people"]["lead"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    # alpha (100.10) + beta (40.01) for 3 days; gamma and unallocated are not theirs.
    assert overview.billed_cost == Decimal("420.33")
    assert overview.effective_cost == Decimal("390.18")
    assert overview.month_to_date_billed == Decimal("420.33")
    figures = _figures(response)
    assert _trace_sum(figures["by_team"]) == Decimal("420.33")
    assert {trace["name"] for trace in figures["by_team"]["data"]} == {"Alpha", "Beta"}
    assert _trace_sum(figures["by_provider"]) == Decimal("420.33")
    slugs = [row["deployment__slug"] for row in overview.top_deployments]
    assert slugs == ["llama-aws-use1", "mistral-gcp-euw4"]
    assert overview.top_deployments[0]["billed"] == Decimal("300.30")  # gamma's 7.77s are excluded
    html = response.content.decode()
    assert "Gamma" not in html
    assert "420.33" in html


def test_it_hides_unallocated_cost_from_a_viewer(client, world):
    client.force_login(world["people"]["viewer"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    assert overview.billed_cost == Decimal("120.03")
    assert overview.unallocated_visible is False
    assert overview.unallocated_cost == Decimal("0")
    figures = _figures(response)
    assert [trace["name"] for trace in figures["by_team"]["data"]] == ["Beta"]
    html = response.content.decode()
    assert "Unallocated" in html  # the card title only
    assert '<option value="unallocated"' not in html
    assert "Your role sees your teams" in html


def test_it_shows_nothing_to_a_user_without_memberships(client, world):
    client.force_login(world["people"]["outsider"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    assert overview.billed_cost == Decimal("0")
    assert overview.top_deployments == []
    assert all(not figure["data"] for figure in _figures(response).values())
    assert "No cost data in this range" in response.content.decode()


def test_it_names_other_currencies_instead_of_adding_them(client, world):
    client.force_login(world["people"]["admin"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    assert [(other.currency, other.billed_cost) for other in overview.other_currencies] == [
        ("EUR", Decimal("15.00"))
    ]
    html = response.content.decode()
    assert "15.00 EUR" in html
    assert "not converted or added in" in html


def test_it_applies_the_filters(client, world):
    alpha = world["teams"][0]
    llama = world["models"][0]
    client.force_login(world["people"]["admin"])
    response = client.get(
        OVERVIEW,
        {
            "start": LATEST.isoformat(),
            "end": LATEST.isoformat(),
            "provider": "aws",
            "team": alpha.pk,
            "model": llama.pk,
        },
    )
    overview = response.context["overview"]
    assert not response.context["form"].errors
    assert overview.billed_cost == Decimal("100.10")
    assert overview.line_items == 3


def test_it_filters_to_unallocated_cost_for_admin(client, world):
    client.force_login(world["people"]["admin"])
    response = client.get(OVERVIEW, {"team": "unallocated"})
    overview = response.context["overview"]
    assert overview.billed_cost == Decimal("37.02")
    assert overview.unallocated_share == Decimal("100")


def test_it_rejects_a_team_outside_the_users_scope(client, world):
    gamma = world["teams"][2]
    client.force_login(world["people"]["lead"])
    response = client.get(OVERVIEW, {"team": gamma.pk})
    assert "team" in response.context["form"].errors
    # The bad filter is dropped, never widened: the lead still sees only their teams.
    assert response.context["overview"].billed_cost == Decimal("420.33")


def test_it_rejects_a_reversed_range_with_a_message(client, world):
    client.force_login(world["people"]["admin"])
    response = client.get(OVERVIEW, {"start": "2026-10-10", "end": "2026-10-01"})
    assert response.status_code == 200
    assert "The start date must be on or before the end date." in response.content.decode()
    assert response.context["overview"].end == LATEST


def _query_count(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("persona", ["admin", "lead"])
def test_it_runs_a_bounded_number_of_queries_as_rows_grow_tenfold(
    client, world, persona, django_assert_max_num_queries
):
    client.force_login(world["people"][persona])
    before = _query_count(client, OVERVIEW)

    aws, gcp = world["accounts"]
    teams, models, deployments = world["teams"], world["models"], world["deployments"]
    # Ten times the rows, with new teams and deployments among them (the kind of growth that
    # turns a careless page into N+1 queries).
    for index in range(150):
        team = TeamFactory(slug=f"extra-{index}") if index % 10 == 0 else teams[index % 3]
        deployment = (
            DeploymentFactory(slug=f"extra-dep-{index}", model=models[index % 2])
            if index % 3
            else deployments[index % 2]
        )
        DailyCostFactory(
            day=LATEST - dt.timedelta(days=index % 60),
            account=(aws, gcp)[index % 2],
            region_id=f"region-{index}",
            team=team,
            model=models[index % 2],
            deployment=deployment,
            billed_cost=Decimal("1.23"),
            effective_cost=Decimal("1.20"),
            line_items=2,
        )

    with django_assert_max_num_queries(14):
        response = client.get(OVERVIEW)
    assert response.status_code == 200
    after = _query_count(client, OVERVIEW)
    print(f"overview queries for {persona}: {before} before, {after} after growing rows tenfold")
    assert after == before
