"""The overview page: who sees what, totals to the cent, figures present, bounded queries."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.cache import cache
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
    return build_world()


def build_world():
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
    assert team_names[-1] == "Unallocated — not allocated yet"


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


def test_it_leaves_out_cost_without_an_exchange_rate_and_says_so(client, world):
    # No EUR rate at all: the EUR cost is in no figure, and the page says how much and when.
    client.force_login(world["people"]["admin"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    assert overview.billed_cost == Decimal("480.66")  # USD only, never EUR counted as USD
    [note] = overview.currency_notes
    assert (note.currency, note.missing, len(note.missing_days)) == ("EUR", Decimal("15.00"), 3)
    html = response.content.decode()
    assert "15.00 EUR" in html and "no EUR→USD exchange rate" in html


def test_it_converts_every_total_to_the_reporting_currency_at_each_charge_days_rate(client, world):
    # Defect 4 of issue 10: accounts billing in USD and EUR; EUR converts at its own day's rate.
    from attribution.models import ExchangeRate

    ExchangeRate.objects.create(date=LATEST, from_currency="EUR", to_currency="USD", rate=Decimal("1.10"))
    ExchangeRate.objects.create(
        date=LATEST - dt.timedelta(days=1), from_currency="EUR", to_currency="USD", rate=Decimal("1.20")
    )
    client.force_login(world["people"]["admin"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    # USD 160.22 a day for three days, plus EUR 5.00 at 1.20 and at 1.10; the oldest day has no rate.
    assert overview.billed_cost == Decimal("480.66") + Decimal("6.00") + Decimal("5.50") == Decimal("492.16")
    assert overview.effective_cost == Decimal("448.20") + Decimal("5.40") + Decimal("4.95")
    assert overview.month_to_date_billed == Decimal("492.16")
    [note] = overview.currency_notes
    assert (note.currency, note.converted_from, note.converted_to) == (
        "EUR",
        Decimal("10.00"),
        Decimal("11.50"),
    )
    assert note.rate_dates == {LATEST, LATEST - dt.timedelta(days=1)}
    assert (note.missing, note.missing_days) == (Decimal("5.00"), {LATEST - dt.timedelta(days=2)})
    # The charts and tables add up to the same converted figures.
    figures = _figures(response)
    assert _trace_sum(figures["by_provider"]) == Decimal("492.16")
    alpha = [trace for trace in figures["by_team"]["data"] if trace["name"] == "Alpha"]
    assert _trace_sum({"data": alpha}) == Decimal("300.30") + Decimal("11.50")
    top = {row["deployment__slug"]: row["billed"] for row in overview.top_deployments}
    assert top["mistral-gcp-euw4"] == Decimal("120.03") + Decimal("11.50")
    html = response.content.decode()
    assert "converted to USD at the rate of each charge day" in html
    assert "10.00 EUR" in html and "11.50 USD" in html
    assert "5.00 EUR" in html and "no EUR→USD exchange rate" in html


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
    """Queries of the page computed (not served from the cache: tests/…/test_overview_cache.py)."""
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


# Computed (a cache miss): one of them reads the exchange rates (once, for every currency and day
# in the range), one the data version; a lead's teams (the cache key's scope) are one more.
COLD_QUERIES = {"admin": 21, "lead": 22}


@pytest.mark.parametrize("persona", ["admin", "lead"])
def test_it_runs_a_bounded_number_of_queries_as_rows_grow_tenfold(
    client, world, persona, django_assert_num_queries
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

    with django_assert_num_queries(COLD_QUERIES[persona]):
        response = client.get(OVERVIEW)
    assert response.status_code == 200
    after = _query_count(client, OVERVIEW)
    print(f"overview queries for {persona}: {before} before, {after} after growing rows tenfold")
    assert after == before


# --- Billed vs estimated, allocation and unallocated by reason ----------------------------------------


@pytest.fixture
def allocated_world(world):
    return add_allocation(world)


def add_allocation(world):
    """The latest day of aws-prod allocated: the 12.34 of team-less cost is a shared pool split
    5.00 to alpha and 4.00 to beta, 3.34 idle. The next day is not billed yet: estimates only."""
    from attribution.models import AllocatedCost, SpendEstimate, UnitCost

    aws = world["accounts"][0]
    alpha, beta, gamma = world["teams"]
    llama = world["models"][0]
    llama_aws = world["deployments"][0]
    llama_aws.account = aws
    llama_aws.save()
    for team, amount, method, reason in (
        (alpha, "100.10", "direct", ""),
        (gamma, "7.77", "direct", ""),
        (alpha, "5.00", "tokens", ""),
        (beta, "4.00", "tokens", ""),
        (None, "3.34", "unallocated", "idle"),
    ):
        AllocatedCost.objects.create(
            day=LATEST,
            account=aws,
            billing_period_start=LATEST.replace(day=1),
            provider="aws",
            team=team,
            model=llama,
            deployment=llama_aws,
            charge_category="Usage",
            billing_currency="USD",
            billed_cost=Decimal(amount),
            effective_cost=Decimal(amount),
            allocated_method_id=method,
            unallocated_reason=reason,
        )
    tomorrow = LATEST + dt.timedelta(days=1)
    for team, amount in ((alpha, "80.25"), (gamma, "6.50")):
        SpendEstimate.objects.create(
            day=tomorrow,
            deployment=llama_aws,
            team=team,
            model=llama,
            currency="USD",
            estimated_cost=Decimal(amount),
            basis="unit_cost",
        )
    # A reconciled estimate of the latest day: it is billed now and only counts for accuracy.
    SpendEstimate.objects.create(
        day=LATEST,
        deployment=llama_aws,
        team=alpha,
        model=llama,
        currency="USD",
        estimated_cost=Decimal("110.11"),
        basis="unit_cost",
        billed_cost=Decimal("105.10"),
        error=Decimal("5.01"),
        reconciled_at=dt.datetime(2026, 10, 21, tzinfo=dt.UTC),
    )
    UnitCost.objects.create(
        day=LATEST,
        model=llama,
        deployment=llama_aws,
        provider="aws",
        currency="USD",
        effective_cost=Decimal("120.21"),
        requests=40_000,
        input_tokens=30_000_000,
        output_tokens=5_000_000,
        cost_per_1m_input_tokens=Decimal("3.4346"),
        cost_per_1m_output_tokens=Decimal("3.4346"),
        cost_per_1k_requests=Decimal("3.0053"),
    )
    return world


def test_it_splits_every_headline_into_billed_and_estimated(client, allocated_world):
    client.force_login(allocated_world["people"]["finance"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    # The range now ends at the last estimated day.
    assert overview.end == LATEST + dt.timedelta(days=1)
    assert overview.estimated_through == LATEST + dt.timedelta(days=1)
    assert overview.billed_cost == Decimal("480.66")
    assert overview.estimated_cost == Decimal("86.75")
    assert overview.total_cost == Decimal("567.41")
    assert overview.month_to_date_estimated == Decimal("86.75")
    html = response.content.decode()
    assert "567.41" in html
    assert "of which estimated 86.75" in html
    figures = _figures(response)
    names = [trace["name"] for trace in figures["by_provider"]["data"]]
    assert names == ["AWS", "Google Cloud", "AWS (estimated)"]
    estimated_bars = figures["by_provider"]["data"][-1]
    assert estimated_bars["marker"]["pattern"]["shape"] == "/"
    assert estimated_bars["x"] == ["2026-10-21"]
    assert _trace_sum(figures["by_provider"]) == Decimal("567.41")
    assert _trace_sum(figures["by_team"]) == Decimal("567.41")
    assert _trace_sum(figures["by_model"], axis="x") == Decimal("567.41")
    team_names = [trace["name"] for trace in figures["by_team"]["data"]]
    assert "Alpha (estimated)" in team_names and "Gamma (estimated)" in team_names
    assert "fillpattern" in figures["by_team"]["data"][-1]


def test_it_shows_teams_with_their_share_of_shared_pools_and_unallocated_by_reason(client, allocated_world):
    client.force_login(allocated_world["people"]["admin"])
    response = client.get(OVERVIEW, {"start": "2026-10-18", "end": "2026-10-20"})
    overview = response.context["overview"]
    figures = _figures(response)
    team_totals = {
        trace["name"]: sum((Decimal(str(v)).quantize(Decimal("0.01")) for v in trace["y"]), Decimal(0))
        for trace in figures["by_team"]["data"]
    }
    # Alpha: 3 x 100.10 direct + 5.00 pool share; Beta 3 x 40.01 + 4.00.
    assert team_totals["Alpha"] == Decimal("305.30")
    assert team_totals["Beta"] == Decimal("124.03")
    assert team_totals["Unallocated — idle capacity"] == Decimal("3.34")
    assert team_totals["Unallocated — not allocated yet"] == Decimal("24.68")
    assert [(row.reason, row.billed_cost) for row in overview.unallocated_by_reason] == [
        ("not_allocated", Decimal("24.68")),
        ("idle", Decimal("3.34")),
    ]
    assert overview.unallocated_cost == Decimal("28.02")
    html = response.content.decode()
    assert 'id="unallocated-by-reason"' in html
    assert "Unallocated — idle capacity" in html


def test_it_shows_estimate_accuracy_and_unit_costs(client, allocated_world):
    client.force_login(allocated_world["people"]["finance"])
    response = client.get(OVERVIEW)
    [accuracy] = response.context["overview"].estimate_accuracy
    assert (accuracy.deployment_slug, accuracy.estimated, accuracy.billed) == (
        "llama-aws-use1",
        Decimal("110.11"),
        Decimal("105.10"),
    )
    assert accuracy.mape_percent.quantize(Decimal("0.01")) == Decimal("4.77")
    [unit] = response.context["overview"].unit_costs
    assert unit["cost_per_1k_requests"] == Decimal("3.0053")
    html = response.content.decode()
    assert 'id="estimate-accuracy"' in html and "+4.8 %" in html
    # No calibration factor learned in this world: the factor cell says so.
    assert accuracy.calibration_factors == []
    assert '<td class="num calibration">—</td>' in html
    assert 'id="unit-costs"' in html and "3.4346" in html


def test_a_team_lead_sees_only_their_teams_estimates_and_pool_shares(client, allocated_world):
    client.force_login(allocated_world["people"]["lead"])
    response = client.get(OVERVIEW)
    overview = response.context["overview"]
    # alpha + beta billed (420.33) plus their pool shares (9.00); alpha's estimate only, not gamma's.
    assert overview.billed_cost == Decimal("429.33")
    assert overview.estimated_cost == Decimal("80.25")
    assert overview.unallocated_by_reason == []
    figures = _figures(response)
    names = {trace["name"] for trace in figures["by_team"]["data"]}
    assert names == {"Alpha", "Beta", "Alpha (estimated)"}
    assert _trace_sum(figures["by_team"]) == Decimal("509.58")
    html = response.content.decode()
    assert "Gamma" not in html
    assert 'id="unallocated-by-reason"' not in html


def test_its_figures_are_the_same_built_checked_or_unchecked(
    client, allocated_world, page_figures_checked_and_unchecked
):
    client.force_login(allocated_world["people"]["finance"])
    checked, unchecked = page_figures_checked_and_unchecked(client, OVERVIEW)
    assert all(figure["data"] for figure in checked.values())
    assert unchecked == checked
