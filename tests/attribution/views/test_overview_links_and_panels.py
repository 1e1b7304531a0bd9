"""The Overview explains itself: every figure opens the explorer view behind it (the month-to-date
total equals the explorer's total for the month, a provider's bars open that provider), and the
panels that other layers register: open anomalies and alerts (role-scoped) and this month's
savings from routing (routed vs round robin, to the cent)."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import json
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attribution.models import SpendEstimate, UnitCost, UsageDaily
from governance.models import Alert
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
END = dt.date(2026, 11, 10)


@pytest.fixture
def world():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    gcp = CloudAccountFactory(slug="gcp-prod", provider="gcp")
    search, ads = TeamFactory(slug="search", name="Search"), TeamFactory(slug="ads", name="Ads")
    llama = ServedModelFactory(slug="llama", name="Llama 3 70B")
    cheap = DeploymentFactory(slug="llama-aws", model=llama, provider="aws", account=aws)
    pricey = DeploymentFactory(
        slug="llama-gcp", model=llama, provider="gcp", region="us-central1", account=gcp
    )
    day = dt.date(2026, 10, 25)
    while day <= END:
        DailyCostFactory(
            day=day,
            account=aws,
            team=search,
            model=llama,
            deployment=cheap,
            billed_cost=Decimal("100.10"),
            effective_cost=Decimal("90.00"),
        )
        DailyCostFactory(day=day, account=gcp, team=ads, billed_cost=Decimal("40.01"),
                         effective_cost=Decimal("40.01"), service_name="Vertex AI")  # fmt: skip
        day += dt.timedelta(days=1)
    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=search, role="lead")
    other = UserFactory(username="other", roles=["team_lead"])
    MembershipFactory(user=other, team=ads, role="lead")
    return {
        "finance": UserFactory(username="cfo", roles=["finance"]),
        "lead": lead,
        "other": other,
        "teams": (search, ads),
        "model": llama,
        "deployments": (cheap, pricey),
    }


def _get(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def _href(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}" href="([^"]+)"|href="([^"]+)"[^>]*id="{element_id}"', page)
    assert match, element_id
    return html_lib.unescape(match.group(1) or match.group(2))


def _explorer_total(page: str) -> Decimal:
    """The explorer table's grand total: the last cell of its totals row."""
    start = page.index('id="explorer-table"')
    table = page[start : page.index("</table>", start)]
    totals_row = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[-1]
    last_cell = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", totals_row, flags=re.S)[-1]
    return Decimal(re.sub(r"<[^>]+>|[$,\s]", "", last_cell))


def test_the_month_to_date_figure_opens_the_explorer_for_the_month_with_the_same_total(world):
    page = _get(world["finance"], "/")
    link = _href(page, "mtd-link")
    query = parse_qs(urlsplit(link).query)
    assert urlsplit(link).path == "/explorer/"
    assert query["start"] == ["2026-11-01"] and query["end"] == ["2026-11-10"]
    assert query["group_by"] == ["provider"] and query["granularity"] == ["month"]
    card = re.search(r'id="mtd-link"[^>]*>([\d,.]+)</a>', page).group(1)
    month_to_date = (Decimal("100.10") + Decimal("40.01")) * 10
    assert Decimal(card.replace(",", "")) == month_to_date
    assert _explorer_total(_get(world["finance"], link)) == month_to_date


def _estimate(day: dt.date, deployment, team, amount: str, **extra) -> None:
    SpendEstimate.objects.create(
        day=day, deployment=deployment, team=team, model=deployment.model, currency="USD",
        estimated_cost=Decimal(amount), basis="unit_cost", **extra,
    )  # fmt: skip


def _note(page: str) -> tuple[Decimal, list[str], str]:
    """The explorer's estimates note: its total, its per-provider parts and its text."""
    note = page[page.index('id="estimates-note"') : page.index("</div>", page.index('id="estimates-note"'))]
    total = re.search(r'id="estimates-note-total">([^<]+)<', note).group(1)
    parts = re.findall(r'class="estimates-note__provider">([^<]+)<', note)
    return Decimal(re.sub(r"[$,]", "", total)), parts, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", note))


@pytest.mark.parametrize("role", ["finance", "lead"])
def test_the_month_to_date_figure_with_estimates_is_the_explorers_total_plus_its_note(world, role):
    """The card adds spend estimated for days not billed yet; the explorer it opens shows bills only
    and says how much is estimated, per provider and for which days: card = table + note, to the cent.
    Estimates whose bill has landed, or that were reconciled, are in neither."""
    cheap, pricey = world["deployments"]
    search, ads = world["teams"]
    first, second = END + dt.timedelta(days=1), END + dt.timedelta(days=2)
    _estimate(first, cheap, search, "55.55")
    _estimate(first, pricey, ads, "12.34")
    _estimate(first, pricey, None, "1.01")  # a shared pool: finance sees it, a lead does not
    _estimate(second, cheap, search, "44.44")
    _estimate(END, cheap, search, "999.99")  # AWS billed END: the bill replaced it
    _estimate(END - dt.timedelta(days=3), pricey, ads, "777.77", reconciled_at=timezone.now())
    page = _get(world[role], "/")
    card = Decimal(re.search(r'id="mtd-link"[^>]*>([\d,.]+)</a>', page).group(1).replace(",", ""))
    link = _href(page, "mtd-link")
    assert parse_qs(urlsplit(link).query)["note"] == ["month_to_date"]
    explained = _get(world[role], link)
    total, parts, text = _note(explained)
    assert card == _explorer_total(explained) + total
    if role == "finance":
        assert (total, parts) == (Decimal("113.34"), ["AWS $99.99", "Google Cloud $13.35"])
        assert card == (Decimal("100.10") + Decimal("40.01")) * 10 + Decimal("113.34")
    else:  # their team's bills and estimates only
        assert (total, parts) == (Decimal("99.99"), ["AWS $99.99"])
        assert card == Decimal("100.10") * 10 + Decimal("99.99")
    assert "Month to date on the Overview also includes $" in text
    assert "(Nov 11, 2026 – Nov 12, 2026, 2 days)" in text
    # The Spend card adds estimates too, and says so the same way.
    assert _note(_get(world[role], _href(page, "spend-link")))[0] == total


def test_the_estimates_note_costs_one_query_whatever_the_estimates(world, django_assert_num_queries):
    cheap, pricey = world["deployments"]
    search, ads = world["teams"]
    client = Client()
    client.force_login(world["finance"])
    url = "/explorer/?start=2026-11-01&end=2026-11-20&group_by=provider&granularity=month"
    client.get(url)
    with CaptureQueriesContext(connection) as plain:
        client.get(url)
    _estimate(END + dt.timedelta(days=1), cheap, search, "1.00")
    with CaptureQueriesContext(connection) as noted:
        client.get(url + "&note=month_to_date")
    for offset in range(2, 9):
        for deployment, team in ((cheap, search), (pricey, ads), (pricey, None)):
            _estimate(END + dt.timedelta(days=offset), deployment, team, "2.00")
    with django_assert_num_queries(len(noted)):
        response = client.get(url + "&note=month_to_date")
    assert len(noted) == len(plain) + 1
    assert _note(response.content.decode())[0] == Decimal("1.00") + 7 * 3 * Decimal("2.00")


def test_the_estimates_note_says_when_a_filter_cannot_apply_to_estimates(world):
    cheap, _pricey = world["deployments"]
    _estimate(END + dt.timedelta(days=1), cheap, world["teams"][0], "5.00")
    page = _get(world["finance"], "/explorer/?start=2026-11-01&end=2026-11-12&f_service=Vertex+AI&note=spend")
    note = page[page.index('id="estimates-note"') :]
    assert "Estimates have no service, so how much of it falls in this view is not known." in note
    assert 'id="estimates-note-total"' not in page


def test_a_providers_bars_and_a_deployment_row_open_what_explains_them(world):
    page = _get(world["finance"], "/")
    figures = json.loads(
        re.search(r'<script id="figures" type="application/json">(.*?)</script>', page, re.S).group(1)
    )
    (aws_trace,) = [trace for trace in figures["by_provider"]["data"] if trace["name"] == "AWS"]
    url = aws_trace["meta"]["explorer_url"]
    assert "customdata" not in aws_trace  # one URL per series, not a copy per day
    assert parse_qs(urlsplit(url).query)["f_provider"] == ["aws"]
    explained = _get(world["finance"], url)
    assert "Vertex AI" not in explained.split('id="explorer-table"')[1]
    assert _explorer_total(explained) == Decimal("100.10") * 17  # 25 Oct - 10 Nov
    (team_trace,) = [trace for trace in figures["by_team"]["data"] if trace["name"] == "Search"]
    assert parse_qs(urlsplit(team_trace["meta"]["explorer_url"]).query)["f_team"] == ["search"]
    deployment = _href(page, "deployment-llama-aws")
    assert parse_qs(urlsplit(deployment).query)["f_deployment"] == ["llama-aws"]


def test_the_overviews_filters_go_along_into_the_explorer(world):
    search, _ads = world["teams"]
    page = _get(world["finance"], f"/?team={search.pk}&provider=aws")
    for element_id in ("mtd-link", "explore-by_provider", "explore-by_team"):
        query = parse_qs(urlsplit(_href(page, element_id)).query)
        assert query["f_team"] == ["search"] and query["f_provider"] == ["aws"], element_id


def test_open_alerts_are_counted_listed_and_scoped_per_role(world):
    search, ads = world["teams"]
    Alert.objects.create(kind="anomaly", team=search, message="Team search spent 900.00 USD", dedup_key="a1")
    Alert.objects.create(
        kind="budget_threshold", team=ads, message="Ads over budget ADS-ONLY", dedup_key="a2"
    )
    Alert.objects.create(kind="ingest_failed", team=None, message="Ingest of aws-prod failed", dedup_key="a3")
    Alert.objects.create(
        kind="anomaly",
        team=search,
        message="Acknowledged ACKED",
        dedup_key="a4",
        acknowledged_at=timezone.now(),
    )
    page = _get(world["finance"], "/")
    assert re.search(r'id="open-alerts-count"><strong>3</strong>', page)
    assert re.search(r'id="open-anomalies-count"><strong>1</strong>', page)
    assert "ADS-ONLY" in page and "Ingest of aws-prod failed" in page and "ACKED" not in page
    anomalies = _href(page, "open-anomalies-count")
    assert parse_qs(urlsplit(anomalies).query) == {"state": ["open"], "kind": ["anomaly"]}
    lead_page = _get(world["lead"], "/")
    assert re.search(r'id="open-alerts-count"><strong>1</strong>', lead_page)
    assert "ADS-ONLY" not in lead_page and "Ingest of aws-prod failed" not in lead_page
    assert "Team search spent 900.00 USD" in _get(world["lead"], anomalies)


def test_routing_savings_are_routed_cost_against_round_robin_to_the_cent(world):
    search, _ads = world["teams"]
    llama = world["model"]
    cheap, pricey = world["deployments"]
    for deployment, cost in ((cheap, "1.00"), (pricey, "3.00")):  # per 1M tokens over the week
        UnitCost.objects.create(day=dt.date(2026, 11, 9), model=llama, deployment=deployment,
                                provider=deployment.provider, currency="USD", effective_cost=Decimal(cost),
                                input_tokens=600_000, output_tokens=400_000)  # fmt: skip
    for deployment, tokens in ((cheap, 3_000_000), (pricey, 1_000_000)):
        UsageDaily.objects.create(
            day=dt.date(2026, 11, 5), deployment=deployment, team=search, model=llama,
            requests=1000, input_tokens=tokens // 2, output_tokens=tokens // 2,
        )  # fmt: skip
    # Last month's usage is not this month's saving.
    UsageDaily.objects.create(day=dt.date(2026, 10, 30), deployment=cheap, team=search, model=llama,
                              requests=1, input_tokens=9_000_000, output_tokens=0)  # fmt: skip
    page = _get(world["finance"], "/")
    # Routed: 3M x 1.00 + 1M x 3.00 = 6.00; round robin: 4M x (1.00 + 3.00) / 2 = 8.00.
    assert re.search(r'id="routing-saving">\$2\.00<', page)
    row = page[page.index('id="overview-savings"') :]
    assert "$6.00" in row and "$8.00" in row and "4,000,000" in row
    assert _get(world["lead"], "/").count('id="routing-saving">$2.00<') == 1
    assert "No routed usage" in _get(world["other"], "/")  # ads sent no tokens


def test_the_panels_queries_do_not_grow_with_alerts_and_usage(world, django_assert_num_queries):
    search, ads = world["teams"]

    def grow(index: int) -> None:
        Alert.objects.create(
            kind="anomaly",
            team=search if index % 2 else ads,
            message=f"spike {index}",
            dedup_key=f"grow-{index}",
        )
        model = ServedModelFactory(slug=f"model-{index}", name=f"Model {index}")
        for deployment, cost in (
            (DeploymentFactory(slug=f"m{index}-a", model=model), "1.00"),
            (DeploymentFactory(slug=f"m{index}-b", model=model, provider="gcp"), "2.00"),
        ):
            UnitCost.objects.create(
                day=dt.date(2026, 11, 9), model=model, deployment=deployment, provider=deployment.provider,
                currency="USD", effective_cost=Decimal(cost), input_tokens=1_000_000, output_tokens=0,
            )  # fmt: skip
            UsageDaily.objects.create(
                day=dt.date(2026, 11, 5), deployment=deployment, team=search, model=model,
                requests=1, input_tokens=1_000_000, output_tokens=0,
            )  # fmt: skip

    client = Client()
    client.force_login(world["finance"])
    grow(0)
    with CaptureQueriesContext(connection) as before:
        assert client.get("/").status_code == 200
    for index in range(1, 8):
        grow(index)
    with django_assert_num_queries(len(before.captured_queries)):
        page = client.get("/").content.decode()
    assert re.search(r'id="open-alerts-count"><strong>8</strong>', page)
    assert page.count("/explorer/?start=2026-11-01&amp;end=2026-11-10&amp;group_by=deployment") == 8


def test_a_range_longer_than_the_explorers_days_opens_it_by_week_with_the_same_total(world):
    """The Overview reads up to three years, the explorer at most 400 days by day: a longer range's
    links open weeks, which the explorer shows in full, never a refusal."""
    start = END - dt.timedelta(days=499)
    page = _get(world["finance"], f"/?start={start}&end={END}")
    link = _href(page, "spend-link")
    query = parse_qs(urlsplit(link).query)
    assert query["start"] == [start.isoformat()] and query["granularity"] == ["week"]
    explorer = _get(world["finance"], link)
    assert "Choose a range" not in explorer
    assert _explorer_total(explorer) == (Decimal("100.10") + Decimal("40.01")) * 17
    by_day = _get(world["finance"], link.replace("granularity=week", "granularity=day"))
    assert "Choose a range of at most 400 days by day; choose weeks or months for longer." in by_day
