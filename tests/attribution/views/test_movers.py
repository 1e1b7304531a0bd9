"""Top movers on the overview: week over week per team, model and service, to the cent, scoped, each
linked to the explorer view that explains it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from html import unescape

import pytest
from django.test import Client

from tests.factories import CloudAccountFactory, DailyCostFactory, MembershipFactory, TeamFactory, UserFactory

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
        "/explorer/?start=2026-10-01&end=2026-10-14&granularity=week&currency=USD&group_by=service&f_team=search"
        in rows[0]
    )
    assert "SageMaker" in html[html.index('id="movers-service"') :]


def test_a_lead_sees_only_their_teams_movers(people):
    html = _movers_html(people["lead"])
    assert "search" not in html and "SageMaker" not in html
    assert "ads" in html
