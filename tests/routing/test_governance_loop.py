"""End to end with governance: budget actions in force (governance.selectors.enforcement_active and
quotas_effective) reach the published document through the task governance enqueues by name."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from config.celery_app import app
from governance.models import Budget, BudgetEnforcement, Quota
from routing.models import PolicyDocument
from tests.factories import TeamFactory
from tests.routing.conftest import routed_deployment

pytestmark = pytest.mark.django_db


def enforce(budget: Budget, action: str, share: str | None = None) -> BudgetEnforcement:
    today = timezone.now().date()
    return BudgetEnforcement.objects.create(
        budget=budget,
        action=action,
        throttle_share=Decimal(share) if share else None,
        basis="actual",
        period_start=today.replace(day=1),
        period_end=today.replace(day=1) + dt.timedelta(days=32),
        limit_amount=budget.amount,
        reason=f"{budget.name} at 100% of actual spend",
        applied_at=timezone.now() - dt.timedelta(minutes=1),
    )


def test_budget_actions_in_force_are_published_and_lifted(llama, pull_gateway):
    gateway, _ = pull_gateway
    routed_deployment(llama, "llama-aws", cost_per_1m="1.00")
    routed_deployment(llama, "llama-gcp", cost_per_1m="2.00", provider="gcp")
    search, research = TeamFactory(slug="search"), TeamFactory(slug="research")
    import routing.tasks  # noqa: F401  (the worker imports it; here it registers the task)

    republish = app.tasks["routing.policies_republish"]
    republish.apply(kwargs={"reason": "budget_actions_changed", "budget_ids": []})

    reroute = Budget.objects.create(
        name="Search on AWS",
        team=search,
        model=llama,
        provider="aws",
        amount=Decimal("100"),
        action="reroute",
    )
    throttle = Budget.objects.create(name="Research", team=research, amount=Decimal("50"), action="throttle")
    quota = Quota.objects.create(team=research, model=llama, metric="tokens", window="minute", limit=10_000)
    enforce(reroute, "reroute")
    lifted_later = enforce(throttle, "throttle", "0.75")
    # What governance does after commit when an action is applied: the task, by name, with its kwargs.
    republish.apply(kwargs={"reason": "budget_actions_changed", "budget_ids": [reroute.pk, throttle.pk]})

    document = PolicyDocument.objects.filter(gateway=gateway).latest("version")
    assert document.reason == "budget_action"
    assert "budget actions changed" in document.reason_detail
    routes = {
        (r["class"], r["team"]): r["weights"] for r in document.content["models"]["llama-70b"]["routes"]
    }
    assert routes[("realtime", None)] == {"llama-aws": 100, "llama-gcp": 0}
    # Search's budget is on AWS: its own route avoids AWS.
    assert routes[("realtime", "search")] == {"llama-aws": 0, "llama-gcp": 100}
    assert document.content["quotas"] == [
        {
            "id": quota.pk,
            "team": "research",
            "model": "llama-70b",
            "metric": "tokens",
            "window": "minute",
            "limit": 2_500,
            "configured_limit": 10_000,
            "reason": "Research at 100% of actual spend",
        }
    ]

    BudgetEnforcement.objects.filter(pk=lifted_later.pk).update(lifted_at=timezone.now())
    BudgetEnforcement.objects.filter(budget=reroute).update(lifted_at=timezone.now())
    republish.apply(kwargs={"reason": "budget_actions_changed", "budget_ids": [throttle.pk]})
    lifted = PolicyDocument.objects.filter(gateway=gateway).latest("version")
    assert lifted.version == document.version + 1
    assert [r["team"] for r in lifted.content["models"]["llama-70b"]["routes"]] == [None, None]
    assert lifted.content["quotas"][0]["limit"] == 10_000
