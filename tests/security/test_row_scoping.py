"""restrict(user): who reads which rows, and the shape that keeps scoped sums exact and cheap.

Every scoped queryset (rollups, teams, budgets, thresholds, alerts) shares ScopedQuerySet.restrict:
a team role reads the rows of the teams they belong to, each row once, and nothing without a team;
admin and finance read everything. The restriction is a condition on the row's own team id, never a
join to the memberships that would need a DISTINCT around every SUM over the rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from attribution.dimensions.selectors import teams_page
from attribution.models import DailyCost, Team
from governance.models import Alert, Budget, BudgetThreshold
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    MembershipFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Lena leads alpha and is a member of beta; Vera shares alpha with her; gamma is nobody's here.
    Each team's rows have their own amounts, so a missing, extra or doubled row shows in a sum."""
    alpha, beta, gamma = (TeamFactory(slug=slug, name=slug.title()) for slug in ("alpha", "beta", "gamma"))
    lena = UserFactory(username="lena", roles=["team_lead"])
    vera = UserFactory(username="vera", roles=["viewer"])
    MembershipFactory(user=lena, team=alpha, role="lead")
    MembershipFactory(user=lena, team=beta, role="member")
    MembershipFactory(user=vera, team=alpha, role="member")
    account = CloudAccountFactory()
    amounts = {alpha: "101.01", beta: "20.20", gamma: "3000.03", None: "400.04"}
    for team, amount in amounts.items():
        for day in (1, 2):
            DailyCostFactory(
                account=account, team=team, day=dt.date(2026, 10, day), billed_cost=Decimal(amount)
            )
    budgets = {team: BudgetFactory(name=f"{team}", team=team) for team in amounts}
    for team, budget in budgets.items():
        BudgetThreshold.objects.create(budget=budget, percent=Decimal("80"), basis="actual")
        Alert.objects.create(kind="anomaly", team=team, message=f"{team}", dedup_key=f"alert-{team}")
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "lena": lena, "vera": vera, "budgets": budgets}


def _billed(user) -> Decimal | None:
    return DailyCost.objects.restrict(user).aggregate(total=Sum("billed_cost"))["total"]


def test_a_member_of_two_teams_reads_each_of_their_rows_once(world):
    assert _billed(world["lena"]) == Decimal("242.42")  # alpha and beta, two days each
    assert _billed(world["vera"]) == Decimal("202.02")  # alpha only, though Lena shares it
    assert set(Team.objects.restrict(world["lena"])) == {world["alpha"], world["beta"]}


def test_it_hides_other_teams_and_cost_without_a_team(world):
    teams = set(DailyCost.objects.restrict(world["lena"]).values_list("team__slug", flat=True))
    assert teams == {"alpha", "beta"}
    budgets = world["budgets"]
    assert set(Budget.objects.restrict(world["lena"])) == {budgets[world["alpha"]], budgets[world["beta"]]}
    assert {t.budget for t in BudgetThreshold.objects.restrict(world["vera"])} == {budgets[world["alpha"]]}
    assert {a.team for a in Alert.objects.restrict(world["vera"])} == {world["alpha"]}


def test_admin_and_finance_read_every_row_teamless_included(world):
    finance = UserFactory(username="fiona", roles=["finance"])
    assert _billed(finance) == Decimal("7042.56")
    assert Budget.objects.restrict(finance).count() == 4
    assert Alert.objects.restrict(finance).count() == 4


def test_it_reads_nothing_for_a_user_without_teams_or_signed_out(world):
    loner = UserFactory(username="otto", roles=["team_lead"])
    assert _billed(loner) is None
    assert not Team.objects.restrict(loner).exists()
    assert not Budget.objects.restrict(AnonymousUser()).exists()
    assert _billed(None) is None


def test_a_new_membership_counts_on_the_next_read(world):
    MembershipFactory(user=world["vera"], team=world["gamma"])
    assert _billed(world["vera"]) == Decimal("6202.08")


def test_a_scoped_sum_is_one_query_without_distinct(world):
    world["lena"].has_perm("attribution.view_all_teams")  # her permissions, read once per user object
    with CaptureQueriesContext(connection) as captured:
        assert _billed(world["lena"]) == Decimal("242.42")
    assert len(captured.captured_queries) == 1
    sql = captured.captured_queries[0]["sql"].upper()
    assert "DISTINCT" not in sql
    assert "= ANY(ARRAY(" in sql  # the member teams are looked up once, then an index condition


def test_a_lead_counts_every_member_of_their_team(world):
    """Counts over a restricted team list cover the whole team, not just the reader's membership."""
    finance = UserFactory(username="fiona", roles=["finance"])
    counts = {
        user: {team.slug: (team.members_count, team.leads_count) for team in teams_page(user=user)}
        for user in (world["lena"], finance)
    }
    assert counts[world["lena"]] == {"alpha": (2, 1), "beta": (1, 0)}
    assert {slug: counts[finance][slug] for slug in ("alpha", "beta")} == counts[world["lena"]]
