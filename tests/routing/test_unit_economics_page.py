"""The Unit economics page: unit costs per model × deployment to the cent from the UnitCost rollup,
the basis shown, accelerator and pricing mode, each model's Pareto frontier, scoping per role, one
currency at a time, and a number of queries that does not grow with the rows."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.test import Client

from attribution.models import UnitCost
from routing.models import RouteLatency
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
RANGE = "start=2026-10-01&end=2026-10-14"


def _unit_cost(
    deployment, day: dt.date, *, cost: str, tokens_in: int, tokens_out: int, currency="USD", **prices
):
    return UnitCost.objects.create(
        day=day,
        model=deployment.model,
        deployment=deployment,
        provider=deployment.provider,
        currency=currency,
        effective_cost=Decimal(cost),
        requests=1000,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        output_input_ratio=Decimal("1"),
        ratio_source=prices.pop("ratio_source", "setting"),
        **{name: Decimal(value) for name, value in prices.items()},
    )


@pytest.fixture
def world():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    search, ads = TeamFactory(slug="search"), TeamFactory(slug="ads")
    llama = ServedModelFactory(slug="llama", name="llama")
    spot = DeploymentFactory(
        slug="llama-h100-spot",
        model=llama,
        provider="aws",
        pricing_mode="spot",
        accelerator="nvidia-h100-80gb",
    )
    fast = DeploymentFactory(
        slug="llama-gcp-fast", model=llama, provider="gcp", pricing_mode="on_demand", accelerator="tpu-v5e"
    )
    slow = DeploymentFactory(
        slug="llama-azure-slow",
        model=llama,
        provider="azure",
        pricing_mode="on_demand",
        accelerator="nvidia-a100",
    )
    # search spent on the spot deployment only; ads on the other two.
    DailyCostFactory(day=dt.date(2026, 10, 1), account=aws, team=search, model=llama, deployment=spot)
    DailyCostFactory(day=dt.date(2026, 10, 1), account=aws, team=ads, model=llama, deployment=fast)
    DailyCostFactory(day=dt.date(2026, 10, 1), account=aws, team=ads, model=llama, deployment=slow)
    # spot: 10.01 + 5.02 over 3M tokens = 5.01 per 1M; the latest day's figures are shown.
    _unit_cost(
        spot,
        dt.date(2026, 10, 1),
        cost="10.01",
        tokens_in=1_000_000,
        tokens_out=500_000,
        cost_per_1m_input_tokens="6.67",
        cost_per_1m_output_tokens="6.68",
        cost_per_1k_requests="10.01",
        ratio_source="price_card",
    )
    _unit_cost(
        spot,
        dt.date(2026, 10, 2),
        cost="5.02",
        tokens_in=1_000_000,
        tokens_out=500_000,
        cost_per_1m_input_tokens="3.35",
        cost_per_1m_output_tokens="3.36",
        cost_per_1k_requests="5.02",
        ratio_source="price_card",
    )
    # fast: 24.00 over 2M tokens = 12.00 per 1M; slow: 30.00 over 2M = 15.00 (dominated by fast).
    _unit_cost(
        fast,
        dt.date(2026, 10, 2),
        cost="24.00",
        tokens_in=1_000_000,
        tokens_out=1_000_000,
        cost_per_1m_input_tokens="12.00",
        cost_per_1m_output_tokens="12.00",
        cost_per_1k_requests="24.00",
    )
    _unit_cost(
        slow,
        dt.date(2026, 10, 2),
        cost="30.00",
        tokens_in=1_000_000,
        tokens_out=1_000_000,
        cost_per_1m_input_tokens="15.00",
        cost_per_1m_output_tokens="15.00",
        cost_per_1k_requests="30.00",
    )
    # Outside the range, and in another currency: never in the USD figures.
    _unit_cost(
        spot,
        dt.date(2026, 9, 30),
        cost="999.99",
        tokens_in=1,
        tokens_out=1,
        cost_per_1m_input_tokens="999.99",
    )
    _unit_cost(
        fast,
        dt.date(2026, 10, 3),
        cost="7.00",
        tokens_in=1_000_000,
        tokens_out=0,
        currency="EUR",
        cost_per_1m_input_tokens="7.00",
    )
    RouteLatency.objects.create(deployment=spot, origin="", p95_ms=900)
    RouteLatency.objects.create(deployment=fast, origin="", p95_ms=200)
    RouteLatency.objects.create(deployment=slow, origin="", p95_ms=400)
    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=search, role="lead")
    return {"finance": UserFactory(username="finance", roles=["finance"]), "lead": lead}


def _get(user, query: str):
    client = Client()
    client.force_login(user)
    return client.get(f"/routing/unit-economics/?{query}")


def _table(html: str) -> list[list[str]]:
    table = html[html.index('<table class="data-table" id="unit-table"') : html.index("</table>")]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)
        rows.append([re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells])
    return rows


def _deployment(row: list[str]) -> str:
    return row[1].split()[0]


def _figures(html: str) -> dict:
    match = re.search(r'<script id="figures" type="application/json">(.*?)</script>', html, flags=re.S)
    return json.loads(match.group(1))


def test_it_shows_unit_costs_to_the_cent_with_basis_accelerator_and_pricing_mode(world):
    response = _get(world["finance"], RANGE)
    assert response.status_code == 200
    table = _table(response.content.decode())
    assert [table[1][0], _deployment(table[1])] == ["llama", "llama-azure-slow"]
    by_deployment = {_deployment(row): row for row in table[1:]}
    spot = by_deployment["llama-h100-spot"]
    # Under the deployment: provider, accelerator, pricing mode, the split and the latest day.
    assert spot[1].startswith("llama-h100-spot AWS nvidia-h100-80gb · Spot · split by price cards, ")
    assert "output:input 1.00 · Oct" in spot[1]
    assert spot[2:7] == ["$3.35", "$3.36", "$5.02", "$5.01", "900"]
    gcp_fast = by_deployment["llama-gcp-fast"]
    assert "split by default ratio (no price cards), output:input 1.00" in gcp_fast[1]
    assert gcp_fast[2:7] == ["$12.00", "$12.00", "$24.00", "$12.00", "200"]
    assert by_deployment["llama-azure-slow"][5] == "$15.00"
    assert "999.99" not in response.content.decode()
    # EUR is never put on the USD axis: it is named, and shown when chosen.
    assert "billed in EUR" in response.content.decode()
    eur = _table(_get(world["finance"], f"{RANGE}&currency=EUR").content.decode())
    assert [_deployment(row) for row in eur[1:]] == ["llama-gcp-fast"]
    assert eur[1][2] == "€7.00"


def test_it_draws_each_models_pareto_frontier(world):
    figures = _figures(_get(world["finance"], RANGE).content.decode())
    traces = {trace["name"]: trace for trace in figures["pareto"]["data"]}
    assert sorted(traces["llama"]["x"]) == [5.01, 12.0, 15.0]
    # spot is cheapest, fast is faster; slow is beaten by fast on both and is off the frontier.
    frontier = traces["llama: Pareto frontier"]
    assert list(zip(frontier["x"], frontier["y"], strict=True)) == [(5.01, 900.0), (12.0, 200.0)]
    # One legend entry per model: its frontier is in its legend group and colour, not listed itself.
    pareto = figures["pareto"]["data"]
    models = [trace["name"] for trace in pareto if trace.get("showlegend", True)]
    assert models == [trace["name"] for trace in pareto if trace["mode"] == "markers+text"]
    assert models == ["llama"]
    for model in models:
        points, line = traces[model], traces[f"{model}: Pareto frontier"]
        assert line["showlegend"] is False and line["legendgroup"] == points["legendgroup"] == model
        assert line["line"]["color"] == points["marker"]["color"]
    trend = {trace["name"]: trace for trace in figures["trend"]["data"]}
    assert trend["llama-h100-spot"]["y"] == [6.67, 3.35]
    # The time axis is the selected range by day (a one-day series is not scaled to milliseconds).
    xaxis = figures["trend"]["layout"]["xaxis"]
    assert xaxis["type"] == "date" and xaxis["tickformat"] == "%b %-d"
    assert xaxis["range"] == ["2026-09-30T12:00:00", "2026-10-14T12:00:00"]


def test_a_team_lead_sees_only_the_deployments_their_teams_spent_on(world):
    table = _table(_get(world["lead"], RANGE).content.decode())
    assert [_deployment(row) for row in table[1:]] == ["llama-h100-spot"]
    figures = _figures(_get(world["lead"], RANGE).content.decode())
    assert [t["name"] for t in figures["trend"]["data"]] == ["llama-h100-spot"]


def test_its_trend_draws_one_model_at_a_time_while_the_table_lists_every_deployment(world):
    """Twelve models of three deployments each: one chart of them all had a 36-entry legend. The
    chart draws the costliest model's deployments (or the chosen model's); the table has all 39."""
    for index in range(12):
        model = ServedModelFactory(slug=f"model-{index:02}", name=f"Model {index:02}")
        for provider in ("aws", "gcp", "azure"):
            _unit_cost(
                DeploymentFactory(slug=f"m{index:02}-{provider}", model=model, provider=provider),
                dt.date(2026, 10, 3),
                cost=f"{index + 1}.00",
                tokens_in=1_000_000,
                tokens_out=0,
                cost_per_1m_input_tokens=f"{index + 1}.00",
            )
    html = _get(world["finance"], RANGE).content.decode()
    assert len(_table(html)) == 1 + 39
    # llama cost 69.03 over the range, more than any of the others (at most 3 x 12.00).
    trend = _figures(html)["trend"]["data"]
    names = sorted(trace["name"] for trace in trend)
    assert names == ["llama-azure-slow", "llama-gcp-fast", "llama-h100-spot"]
    assert "over time: llama</h2>" in html

    html = _get(world["finance"], f"{RANGE}&model=model-07").content.decode()
    trend = _figures(html)["trend"]["data"]
    assert {trace["name"]: trace["y"] for trace in trend} == {
        "m07-aws": [8.0],
        "m07-gcp": [8.0],
        "m07-azure": [8.0],
    }
    assert len(_table(html)) == 1 + 39
    assert '<option value="model-07" selected>Model 07</option>' in html


def test_it_is_linked_in_the_navigation_and_needs_a_login(world):
    assert 'href="/routing/unit-economics/"' in _get(world["lead"], "").content.decode()
    assert Client().get("/routing/unit-economics/").status_code == 302


def test_it_says_what_was_wrong_with_bad_dates(world):
    response = _get(world["finance"], "start=2026-10-14&end=2026-10-01")
    assert response.status_code == 200
    assert "The start date must be on or before the end date." in response.content.decode()


def test_its_queries_do_not_grow_with_rows(world, django_assert_max_num_queries):
    model = ServedModelFactory(slug="mistral", name="mistral")
    for index in range(30):
        deployment = DeploymentFactory(slug=f"mistral-{index}", model=model, provider="aws")
        _unit_cost(
            deployment,
            dt.date(2026, 10, 5),
            cost="1.00",
            tokens_in=1000,
            tokens_out=1000,
            cost_per_1m_input_tokens="500.00",
        )
        RouteLatency.objects.create(deployment=deployment, origin="", p95_ms=100 + index)
    client = Client()
    client.force_login(world["lead"])
    # session, user, the role's permissions (scope), the currencies, models and latest day (one
    # read), the rows, the latencies, and the navigation's checks: bounded whatever the number of
    # deployments.
    with django_assert_max_num_queries(8):
        response = client.get(f"/routing/unit-economics/?{RANGE}")
    assert response.status_code == 200


def test_its_figures_are_the_same_built_checked_or_unchecked(world, page_figures_checked_and_unchecked):
    client = Client()
    client.force_login(world["finance"])
    checked, unchecked = page_figures_checked_and_unchecked(client, f"/routing/unit-economics/?{RANGE}")
    assert all(figure["data"] for figure in checked.values())
    assert unchecked == checked
