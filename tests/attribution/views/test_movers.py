"""Top movers on the overview: week over week per team, model and service, to the cent, scoped, each
linked to the explorer view that explains it."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest
from django.test import Client

from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
LATEST = dt.date(2026, 10, 14)


@pytest.fixture
def people():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    search, ads = TeamFactory(slug="search"), TeamFactory(slug="ads")
    for offset in range(14):
        day = LATEST - dt.timedelta(days=offset)
        this_week = offset < 7
        DailyCostFactory(
            day=day,
            account=aws,
            team=search,
            service_name="SageMaker",
            billed_cost=Decimal("30.01") if this_week else Decimal("10.00"),
        )
        DailyCostFactory(
            day=day,
            account=aws,
            team=ads,
            service_name="Bedrock",
            billed_cost=Decimal("5.00") if this_week else Decimal("6.00"),
        )
        # Another currency never joins the figures.
        DailyCostFactory(day=day, account=aws, team=ads, billing_currency="EUR", billed_cost=Decimal("999"))
    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=ads, role="lead")
    return {"finance": UserFactory(username="finance", roles=["finance"]), "lead": lead}


def _movers_html(user) -> str:
    client = Client()
    client.force_login(user)
    html = client.get("/").content.decode()
    return unescape(html[html.index('id="movers-title"') : html.index('<section class="charts"')])


def test_it_ranks_teams_by_weekly_change_and_links_the_explorer(people):
    html = _movers_html(people["finance"])
    team_table = html[html.index('id="movers-team"') : html.index('id="movers-model"')]
    rows = team_table.split("<tr>")[2:]
    assert "search" in rows[0] and "$70.00" in rows[0] and "$210.07" in rows[0] and "+$140.07" in rows[0]
    assert "ads" in rows[1] and "$42.00" in rows[1] and "$35.00" in rows[1] and "-$7.00" in rows[1]
    assert (
        "/explorer/?start=2026-10-01&end=2026-10-14&granularity=week_to_end&currency=USD&group_by=service"
        "&f_team=search" in rows[0]
    )
    assert "SageMaker" in html[html.index('id="movers-service"') :]


@pytest.mark.parametrize("dimension", ["team", "service"])
def test_a_movers_link_opens_the_two_weeks_it_compares_as_two_columns(people, dimension):
    """The 14 days end on a Wednesday: Monday-based weeks would split them 2 + 7 + 5; the explorer the
    mover opens has one column for the 7 days before and one for the last 7, each equal to the mover's."""
    client = Client()
    client.force_login(people["finance"])
    movers = client.get("/").context["movers"].by_dimension[dimension]
    assert movers
    for mover in movers:
        html = client.get(mover.explorer_url).content.decode()
        table = html[html.index('id="explorer-table"') : html.index("</table>")]
        header = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', table)
        assert header[1:] == ["2026-10-01 – 2026-10-07", "2026-10-08 – 2026-10-14", "Total"]
        footer = table[table.index("<tfoot>") :]
        totals = [Decimal(value) for value in re.findall(r'data-value="([^"]+)"', footer)]
        assert totals == [mover.previous, mover.current, mover.previous + mover.current], mover.key


def test_a_lead_sees_only_their_teams_movers(people):
    html = _movers_html(people["lead"])
    assert "search" not in html and "SageMaker" not in html
    assert "ads" in html


def test_it_names_what_moved_a_team_most(people):
    """Which team grew most, and on what: under the team, the model and service whose spend grew most."""
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    search = TeamFactory(slug="search")
    llama, qwen = ServedModelFactory(slug="llama-70b"), ServedModelFactory(slug="qwen-7b")
    for offset in range(14):
        this_week = offset < 7
        day = LATEST - dt.timedelta(days=offset)
        # qwen grows by 7 x 4.00 = 28.00, llama by 7 x 1.50 = 10.50; the SageMaker rows without a
        # model (the fixture's) grow by 7 x 20.01 = 140.07 and stay the largest part.
        DailyCostFactory(
            day=day, account=aws, team=search, model=qwen, service_name="Bedrock",
            billed_cost=Decimal("5.00") if this_week else Decimal("1.00"),
        )  # fmt: skip
        DailyCostFactory(
            day=day, account=aws, team=search, model=llama, service_name="Bedrock",
            billed_cost=Decimal("2.50") if this_week else Decimal("1.00"),
        )  # fmt: skip
    html = _movers_html(people["finance"])
    team_rows = html[html.index('id="movers-team"') : html.index('id="movers-model"')].split("<tr>")[2:]
    assert "mostly (none) · SageMaker (+$140.07)" in team_rows[0]
    # A fall is explained by what fell most: ads lost 7 x 1.00 on Bedrock.
    assert "mostly (none) · Bedrock (-$7.00)" in team_rows[1]
    model_rows = html[html.index('id="movers-model"') : html.index('id="movers-service"')].split("<tr>")[2:]
    assert "qwen-7b" in model_rows[0] and "mostly search · Bedrock (+$28.00)" in model_rows[0]
    assert "llama-70b" in model_rows[1] and "mostly search · Bedrock (+$10.50)" in model_rows[1]
