"""The governance demo on a small company: budgets per team with the promised states."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from attribution.models import DailyCost
from governance.models import Alert, Budget, BudgetEvent, BudgetForecast
from governance.selectors import enforcement_active, quotas_effective
from tests.factories import CloudAccountFactory, DailyCostFactory, TeamFactory, UserFactory


@pytest.mark.django_db
def test_the_demo_leaves_budgets_near_limit_over_on_forecast_blocked_and_an_acknowledged_alert():
    UserFactory(username="admin", roles=["admin"])
    account = CloudAccountFactory()
    teams = [TeamFactory(slug=f"t{index}", name=f"Team {index}") for index in range(4)]
    today = dt.date.today()
    rows = []
    for offset in range(60):
        day = today - dt.timedelta(days=offset + 1)
        for index, team in enumerate(teams):
            rows.append(DailyCostFactory.build(
                team=team, account=account, day=day, billed_cost=Decimal(100 + 10 * index + offset % 7),
                effective_cost=Decimal(100 + 10 * index + offset % 7),
            ))  # fmt: skip
    DailyCost.objects.bulk_create(rows)
    out = io.StringIO()
    call_command("governance_demo", stdout=out)
    assert Budget.objects.filter(name__endswith="(demo)").count() == 4
    actions = {(state.team_id, state.action) for state in enforcement_active()}
    if today.day > 1:  # on the 1st nothing is spent this month yet
        assert (teams[1].pk, "throttle") in actions
        assert (teams[2].pk, "block") in actions
        assert [quota.limit for quota in quotas_effective(team_id=teams[2].pk)] == [0]
        assert Alert.objects.filter(kind="budget_threshold", acknowledged_at__isnull=False).count() == 1
        assert Alert.objects.filter(kind="budget_threshold", acknowledged_at__isnull=True).exists()
        assert BudgetEvent.objects.filter(kind="applied").count() >= 3
    assert "Budgets for 4 teams" in out.getvalue()
    # Near its limit on any day of the month: the forecast between the notify level and the budget
    # (sized on what was spent so far, on the 3rd it was a budget of two days' spend).
    near = Budget.objects.get(team=teams[0], name__endswith="(demo)")
    point = BudgetForecast.objects.get(budget=near).point
    assert near.amount * Decimal("0.8") <= point <= near.amount
    assert Alert.objects.filter(kind="budget_threshold", budget=near, acknowledged_at__isnull=False).exists()
    # Over and blocked on the forecast's basis, on any day of the month: sized on the month's
    # expected spend (at 90 % of what was spent so far, on the 3rd it was two days' spend).
    blocked = Budget.objects.get(team=teams[2], name__endswith="(demo)")
    forecast = BudgetForecast.objects.get(budget=blocked).point
    month = sum(Decimal(120 + offset % 7) for offset in range(30))  # about its usual 30 days
    assert month * Decimal("0.7") < blocked.amount < forecast
    assert (teams[2].pk, "block") in actions
    assert [quota.limit for quota in quotas_effective(team_id=teams[2].pk)] == [0]
