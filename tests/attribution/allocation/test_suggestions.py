"""Suggested allocation changes (attribution/allocation/suggestions.py): idle GPU capacity that a
pool rule shows as its own line, spread over the pool's users. The dollars moved are measured by a
rolled-back allocation run; nothing changes until a person accepts; accept saves the rule through
the audited service and re-allocates; allocated + unallocated still equals billed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from attribution.allocation.services import allocation_conservation_check
from attribution.allocation.suggestions import (
    allocation_suggestion_accept,
    allocation_suggestion_dismiss,
    allocation_suggestions_refresh,
    suggestions_ranked,
)
from attribution.allocation.tasks import allocation_run_task
from attribution.models import AllocatedCost, AllocationRule, AllocationSuggestion
from governance.models import AuditEvent
from tests.attribution.allocation.conftest import DAY
from tests.factories import UserFactory

D = Decimal
QUIET_DAY = DAY + dt.timedelta(days=1)


def _by_owner(world) -> dict:
    rows = {}
    for row in AllocatedCost.objects.filter(account=world.account).select_related("team"):
        key = row.team.slug if row.team else row.unallocated_reason
        rows[key] = rows.get(key, D(0)) + row.effective_cost
    return rows


@pytest.fixture
def pool(world):
    """A 2-GPU pool, own_line idle: 100.00 on a day half used (50.00 idle), 40.00 on a day nobody used."""
    rule = AllocationRule.objects.create(
        name="gpu-a", match_deployment=world.pool, method="gpu_seconds", idle_policy="own_line"
    )
    world.line_item("100.00", deployment=world.pool)
    world.line_item("40.00", deployment=world.pool, day=QUIET_DAY)
    world.usage("search", gpu_seconds="64800.000", requests=5)
    world.usage("ads", gpu_seconds="21600.000", requests=5)
    world.allocate(days=[DAY, QUIET_DAY])
    assert _by_owner(world) == {"search": D("37.5"), "ads": D("12.5"), "idle": D("90")}
    return rule


def test_it_suggests_spreading_idle_with_the_dollars_a_real_run_moves(world, pool):
    allocation_suggestions_refresh()
    suggestion = AllocationSuggestion.objects.get()
    # Only the used day's idle moves (50.00); the quiet day has nobody to carry its 40.00.
    assert suggestion.moved_effective_cost == D("50")
    assert suggestion.moved_billed_cost == D("50")
    assert suggestion.confidence == D("0.5556")  # 50 / 90
    assert suggestion.rule_ids == [pool.pk]
    assert suggestion.account_ids == [world.account.pk]
    assert suggestion.evidence["rules"][0]["idle_effective_cost"] == "90.0000000000"
    assert [user["team"] for user in suggestion.evidence["rules"][0]["users"]] == ["search", "ads"]
    # The preview ran allocation and rolled it back: nothing applied without an accept.
    pool.refresh_from_db()
    assert pool.idle_policy == "own_line"
    assert _by_owner(world) == {"search": D("37.5"), "ads": D("12.5"), "idle": D("90")}
    assert not AuditEvent.objects.filter(object_type="attribution.allocationrule").exists()
    assert [(item.kind, item.id, item.dollars) for item in suggestions_ranked()] == [
        ("allocation", suggestion.pk, D("50"))
    ]


def test_accept_saves_the_rule_audited_and_reallocation_conserves(
    world, pool, django_capture_on_commit_callbacks
):
    allocation_suggestions_refresh()
    suggestion = AllocationSuggestion.objects.get()
    user = UserFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        allocation_suggestion_accept(suggestion_id=suggestion.pk, actor_id=user.pk, actor=user)
    assert len(callbacks) == 1  # one re-allocation per affected account, after commit
    pool.refresh_from_db()
    assert pool.idle_policy == "spread"
    rule_audit = AuditEvent.objects.get(object_type="attribution.allocationrule")
    assert rule_audit.changes == {"before": {"idle_policy": "own_line"}, "after": {"idle_policy": "spread"}}
    assert rule_audit.actor == user
    assert (
        AuditEvent.objects.filter(object_type="attribution.allocationsuggestion", action="update").count()
        == 1
    )
    allocation_run_task.apply(args=[world.account.pk])
    # 100.00 split 3:1 by GPU-seconds; the quiet day's 40.00 stays visible (no_usage).
    assert _by_owner(world) == {"search": D("75"), "ads": D("25"), "no_usage": D("40")}
    assert allocation_conservation_check(account_id=world.account.pk, days=[DAY, QUIET_DAY]) == []
    total = AllocatedCost.objects.filter(account=world.account).aggregate(total=Sum("billed_cost"))["total"]
    assert total == D("140.00")
    # Decided: a refresh neither revives nor duplicates it, and it is no longer ranked.
    allocation_suggestions_refresh()
    assert AllocationSuggestion.objects.get().state == "accepted"
    assert suggestions_ranked() == []


def test_dismissed_stays_dismissed_and_a_second_decision_is_refused(world, pool):
    allocation_suggestions_refresh()
    suggestion = AllocationSuggestion.objects.get()
    allocation_suggestion_dismiss(suggestion_id=suggestion.pk, actor_id=None)
    with pytest.raises(Exception, match="already dismissed"):
        allocation_suggestion_accept(suggestion_id=suggestion.pk, actor_id=None)
    allocation_suggestions_refresh()
    assert AllocationSuggestion.objects.get().state == "dismissed"
    pool.refresh_from_db()
    assert pool.idle_policy == "own_line"


def test_a_pool_that_reports_tokens_but_no_gpu_seconds_is_suggested_a_split_by_tokens(world):
    """A gateway that meters tokens but not GPUs: gpu_seconds finds nobody, the whole pool is idle."""
    rule = AllocationRule.objects.create(
        name="gpu-b", match_deployment=world.pool, method="gpu_seconds", idle_policy="own_line"
    )
    world.line_item("90.00", deployment=world.pool)
    world.usage("search", input_tokens=2000, output_tokens=1000, requests=3)
    world.usage("ads", input_tokens=1000, output_tokens=2000, requests=3, hour=1)
    world.usage("bots", input_tokens=3000, output_tokens=0, requests=3, hour=2)
    world.allocate()
    assert _by_owner(world) == {"idle": D("90")}
    allocation_suggestions_refresh()
    suggestion = AllocationSuggestion.objects.get()
    assert suggestion.kind == "pool_tokens"
    assert suggestion.rule_changes == {str(rule.pk): {"method": "tokens"}}
    assert suggestion.moved_effective_cost == D("90")
    assert suggestion.confidence == D("1")
    rule.refresh_from_db()
    assert rule.method == "gpu_seconds"  # previewed, rolled back
    allocation_suggestion_accept(suggestion_id=suggestion.pk, actor_id=None)
    rule.refresh_from_db()
    assert rule.method == "tokens"
    assert AuditEvent.objects.get(object_type="attribution.allocationrule").changes["after"] == {
        "method": "tokens"
    }
    allocation_run_task.apply(args=[world.account.pk])
    assert _by_owner(world) == {"search": D("30"), "ads": D("30"), "bots": D("30")}
    assert allocation_conservation_check(account_id=world.account.pk, days=[DAY]) == []
