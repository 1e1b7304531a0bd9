"""Budget evaluation: spend = billed + estimated, thresholds fire once per period and re-arm, each
action applied and lifted (new period, raise, threshold removed), the contract routing reads, the
audit trail and the republish request."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import redis
import time_machine
from django.conf import settings

from attribution.models import ExchangeRate, SpendEstimate
from governance import budget_services, selectors
from governance.budget_services import BudgetData, ThresholdData
from governance.choices import LiftReason
from governance.enforcement import REPUBLISH_TASK, budget_evaluate
from governance.models import Alert, AuditEvent, BudgetEnforcement, BudgetEvent, Quota
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
NOV_10 = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def admin():
    return UserFactory(username="boss", roles=["admin"])


@pytest.fixture
def team():
    return TeamFactory(slug="search", name="Search")


@pytest.fixture
def account():
    return CloudAccountFactory(slug="aws-main", provider="aws")


def _bill(*, team, account, day: dt.date, amount: str, currency: str = "USD", model=None):
    return DailyCostFactory(
        team=team, account=account, model=model, day=day, billed_cost=Decimal(amount),
        effective_cost=Decimal(amount), billing_currency=currency,
        service_name=f"svc-{day}-{amount}-{currency}",
    )  # fmt: skip


def _create(actor, team, thresholds, **fields) -> object:
    data = BudgetData(name=fields.pop("name", "Search monthly"), amount=Decimal(fields.pop("amount", "1000")),
                      team_id=team.pk, thresholds=thresholds, **fields)  # fmt: skip
    with time_machine.travel(NOV_10, tick=False):
        return budget_services.budget_create(actor=actor, data=data)


def test_spend_is_billed_plus_estimated_where_the_bill_has_not_landed(admin, team, account):
    _bill(team=team, account=account, day=dt.date(2026, 11, 1), amount="100.25")
    deployment = DeploymentFactory(account=account, provider="aws")
    common = {
        "deployment": deployment,
        "team": team,
        "model": deployment.model,
        "currency": "USD",
        "basis": "unit_cost",
    }
    # Day 1 has a bill for the deployment's account: its estimate no longer counts.
    SpendEstimate.objects.create(day=dt.date(2026, 11, 1), estimated_cost=Decimal("999"), **common)
    SpendEstimate.objects.create(day=dt.date(2026, 11, 9), estimated_cost=Decimal("40.10"), **common)
    SpendEstimate.objects.create(day=dt.date(2026, 11, 10), estimated_cost=Decimal("9.65"), **common)
    # Another team's estimate is not this budget's.
    SpendEstimate.objects.create(
        day=dt.date(2026, 11, 10), estimated_cost=Decimal("500"), **{**common, "team": TeamFactory()}
    )
    budget = _create(admin, team, [])
    status = selectors.budget_status(budget=budget, now=NOV_10)
    assert (status["spend_billed"], status["spend_estimated"], status["spend_total"]) == (
        Decimal("100.25"),
        Decimal("49.75"),
        Decimal("150.00"),
    )


def test_spend_in_another_currency_is_converted_with_the_days_rate(admin, team, account):
    ExchangeRate.objects.create(
        date=dt.date(2026, 11, 2), from_currency="EUR", to_currency="USD", rate=Decimal("1.1")
    )
    _bill(team=team, account=account, day=dt.date(2026, 11, 3), amount="100.00", currency="EUR")
    _bill(team=team, account=account, day=dt.date(2026, 11, 3), amount="5.00")
    budget = _create(admin, team, [])
    assert selectors.budget_status(budget=budget, now=NOV_10)["spend_total"] == Decimal("115.00")


def test_a_threshold_fires_once_per_period_and_rearms_in_the_next(admin, team, account):
    budget = _create(admin, team, [ThresholdData(percent=Decimal("50"), action="notify")])
    _bill(team=team, account=account, day=dt.date(2026, 11, 2), amount="499.99")
    assert budget_evaluate(budget_id=budget.pk, now=NOV_10).applied == []
    _bill(team=team, account=account, day=dt.date(2026, 11, 3), amount="0.01")
    first = budget_evaluate(budget_id=budget.pk, now=NOV_10)
    assert len(first.applied) == 1
    for _ in range(3):
        assert budget_evaluate(budget_id=budget.pk, now=NOV_10 + dt.timedelta(hours=1)).applied == []
    assert BudgetEvent.objects.filter(budget=budget, kind="applied").count() == 1
    alert = Alert.objects.get(budget=budget)
    assert alert.kind == "budget_threshold" and "500.00" in alert.message

    # 1 December: the action lifts with the period; December has no spend yet, so nothing fires.
    december = dt.datetime(2026, 12, 1, 0, 5, tzinfo=dt.UTC)
    result = budget_evaluate(budget_id=budget.pk, now=december)
    assert result.lifted == first.applied and result.applied == []
    assert BudgetEnforcement.objects.get(pk=first.applied[0]).lift_reason == LiftReason.NEW_PERIOD
    _bill(team=team, account=account, day=dt.date(2026, 12, 1), amount="600")
    assert len(budget_evaluate(budget_id=budget.pk, now=december).applied) == 1
    events = list(
        BudgetEvent.objects.filter(budget=budget)
        .order_by("created_at", "id")
        .values_list("kind", "period_start")
    )
    assert events == [
        ("applied", dt.date(2026, 11, 1)),
        ("lifted", dt.date(2026, 11, 1)),
        ("applied", dt.date(2026, 12, 1)),
    ]


def test_each_action_is_applied_and_shows_in_the_contract_routing_reads(admin, team, account):
    model = ServedModelFactory(slug="llama")
    Quota.objects.create(team=team, model=model, metric="tokens", window="minute", limit=100_001)
    other_team_quota = Quota.objects.create(team=TeamFactory(), metric="requests", window="day", limit=50)
    budget = _create(admin, team, [
        ThresholdData(percent=Decimal("50"), action="reroute"),
        ThresholdData(percent=Decimal("80"), action="throttle", throttle_share=Decimal("0.25")),
        ThresholdData(amount=Decimal("1000"), action="block"),
    ])  # fmt: skip
    _bill(team=team, account=account, day=dt.date(2026, 11, 2), amount="850")
    budget_evaluate(budget_id=budget.pk, now=NOV_10)
    states = selectors.enforcement_active()
    assert sorted(state.action for state in states) == ["reroute", "throttle"]
    throttle = next(state for state in states if state.action == "throttle")
    assert (throttle.budget_id, throttle.team_id, throttle.model_id, throttle.throttle_share) == (
        budget.pk, team.pk, None, Decimal("0.2500"),
    )  # fmt: skip
    quota = selectors.quotas_effective(team_id=team.pk)[0]
    assert (quota.limit, quota.configured_limit) == (75_000, 100_001)  # cut by a quarter, rounded down
    assert selectors.quotas_effective(team_id=other_team_quota.team_id)[0].limit == 50

    _bill(team=team, account=account, day=dt.date(2026, 11, 3), amount="150")
    budget_evaluate(budget_id=budget.pk, now=NOV_10)
    assert "block" in {state.action for state in selectors.enforcement_active()}
    assert selectors.quotas_effective(team_id=team.pk, model_id=model.pk)[0].limit == 0
    # The past is answerable too: before the block it was not in force.
    assert "block" not in {
        state.action for state in selectors.enforcement_active(at=NOV_10 - dt.timedelta(days=1))
    }


def test_raising_the_budget_lifts_the_actions_it_no_longer_warrants(admin, team, account):
    thresholds = [ThresholdData(percent=Decimal("100"), action="block")]
    budget = _create(admin, team, thresholds, amount="1000")
    _bill(team=team, account=account, day=dt.date(2026, 11, 2), amount="1200")
    budget_evaluate(budget_id=budget.pk, now=NOV_10)
    assert [state.action for state in selectors.enforcement_active()] == ["block"]
    data = BudgetData(name=budget.name, amount=Decimal("2000"), team_id=team.pk, thresholds=thresholds)
    with time_machine.travel(NOV_10 + dt.timedelta(hours=1), tick=False):
        budget_services.budget_update(actor=admin, budget=budget, data=data)
    assert selectors.enforcement_active() == []
    lifted = BudgetEvent.objects.get(budget=budget, kind="lifted")
    assert (lifted.lift_reason, lifted.spend_total) == (LiftReason.RAISED, Decimal("1200"))
    # Re-armed: spend past the new level fires it again.
    _bill(team=team, account=account, day=dt.date(2026, 11, 3), amount="800")
    assert len(budget_evaluate(budget_id=budget.pk, now=NOV_10 + dt.timedelta(hours=2)).applied) == 1


def test_removing_the_threshold_lifts_its_action(admin, team, account):
    budget = _create(
        admin, team, [ThresholdData(percent=Decimal("10"), action="throttle", throttle_share=Decimal("0.5"))]
    )
    _bill(team=team, account=account, day=dt.date(2026, 11, 2), amount="200")
    budget_evaluate(budget_id=budget.pk, now=NOV_10)
    assert len(selectors.enforcement_active()) == 1
    data = BudgetData(name=budget.name, amount=budget.amount, team_id=team.pk, thresholds=[])
    with time_machine.travel(NOV_10, tick=False):
        budget_services.budget_update(actor=admin, budget=budget, data=data)
    assert selectors.enforcement_active() == []
    assert BudgetEvent.objects.get(budget=budget, kind="lifted").lift_reason == LiftReason.THRESHOLD_REMOVED


def test_a_forecast_threshold_fires_on_the_run_rate_before_actual_spend_gets_there(admin, team, account):
    budget = _create(admin, team, [ThresholdData(percent=Decimal("100"), basis="forecast", action="notify")])
    for day in range(1, 11):  # 10 days at 40/day -> 1200 by the end of a 30-day month
        _bill(team=team, account=account, day=dt.date(2026, 11, day), amount="40")
    result = budget_evaluate(budget_id=budget.pk, now=NOV_10)
    assert len(result.applied) == 1 and result.spend.total == Decimal("400")
    assert result.forecast.point == Decimal("1200.00")


def test_every_action_change_is_audited_in_the_same_transaction_and_republish_is_enqueued(
    admin, team, account, django_capture_on_commit_callbacks
):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("default")
    budget = _create(admin, team, [ThresholdData(percent=Decimal("100"), action="block")])
    _bill(team=team, account=account, day=dt.date(2026, 11, 2), amount="1000")
    with django_capture_on_commit_callbacks(execute=True):
        budget_evaluate(budget_id=budget.pk, now=NOV_10)
    audit = AuditEvent.objects.get(action="budget_action_apply")
    assert (audit.object_id, audit.changes["action"], audit.changes["spend"]) == (
        str(budget.pk),
        "block",
        "1000.00",
    )
    queued = [json.loads(raw) for raw in client.lrange("default", 0, -1)]
    assert [message["headers"]["task"] for message in queued] == [REPUBLISH_TASK]
    # A notify-only change does not wake routing.
    client.delete("default")
    with django_capture_on_commit_callbacks(execute=True):
        notify_budget = _create(
            admin, team, [ThresholdData(percent=Decimal("1"), action="notify")], name="Notify"
        )
    assert BudgetEvent.objects.filter(budget=notify_budget, kind="applied").count() == 1
    assert client.llen("default") == 0


def test_alert_and_audit_text_shows_money_rounded_with_separators_and_code_machine_fields_stay_exact(
    admin, team, account
):
    """Spend and amounts are numeric(24, 10): the text people read ("…, mail, Slack, audit) shows
    63,841.89 USD, not 63841.8900000000 USD; the JSON details keep the exact Decimal strings."""
    from governance import threshold_services

    budget = _create(admin, team, [ThresholdData(amount=Decimal("60000"), action="notify")], amount="70000.5")
    _bill(team=team, account=account, day=dt.date(2026, 11, 2), amount="63841.8912345")
    budget_evaluate(budget_id=budget.pk, now=NOV_10)
    alert = Alert.objects.get(budget=budget)
    assert "0000" not in alert.message, alert.message
    assert "spend 63,841.89 USD reached 60,000.00 USD of actual spend (60,000.00 USD)" in alert.message
    event = BudgetEvent.objects.get(budget=budget, kind="applied")
    assert "63,841.89 USD" in event.threshold_label and "0000" not in event.threshold_label
    # Machine fields: Decimal strings as computed (the spend read sums to the cent), not the text's.
    assert (alert.details["spend"], Decimal(alert.details["limit"])) == ("63841.89", Decimal("60000"))
    # The audit summary of a threshold (its object text) is rounded too.
    with time_machine.travel(NOV_10, tick=False):
        threshold_services.threshold_create(
            actor=admin, budget=budget, data=ThresholdData(amount=Decimal("65000.126"), action="notify")
        )
    created = AuditEvent.objects.filter(action="create", object_type="governance.budgetthreshold").get()
    assert created.object_repr.endswith(": 65,000.13 USD actual"), created.object_repr
