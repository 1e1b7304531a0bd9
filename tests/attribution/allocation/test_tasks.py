from __future__ import annotations

from decimal import Decimal

from attribution import signals
from attribution.allocation import receivers as allocation_receivers  # noqa: F401  (connects the receiver, as apps.ready does)
from attribution.allocation.tasks import allocation_days_task, allocation_run_task
from attribution.models import AllocatedCost, AllocationRule, AllocationShare, IngestRun, UnitCost
from tests.attribution.allocation.conftest import DAY, PERIOD


def test_an_ingested_period_enqueues_allocation_only_after_commit(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signals.period_ingested.send(
            sender=IngestRun,
            account_id=world.account.pk,
            billing_period_start=PERIOD,
            run_id=1,
            days=[DAY, DAY],
        )
    # One callback per attribution receiver that follows an ingest: allocation, and estimate
    # reconciliation (governance enqueues its own budget re-evaluation on the same signal).
    enqueued = {f"{c.__module__}.{c.__qualname__.split('.')[0]}" for c in callbacks}
    assert {
        "attribution.allocation.receivers.on_period_ingested",
        "attribution.estimates.receivers.estimates_reconcile_on_ingest",
    } <= enqueued
    assert not {name for name in enqueued if name.startswith("attribution.")} - {
        "attribution.allocation.receivers.on_period_ingested",
        "attribution.estimates.receivers.estimates_reconcile_on_ingest",
    }
    assert not AllocatedCost.objects.exists()  # the receivers did no work inline


def test_the_task_allocates_and_rebuilds_unit_costs(world):
    from attribution.ingest import services

    world.line_item("3.00", team="search", deployment=world.pool)
    world.usage("search", requests=3000)
    services.daily_cost_rebuild(account_id=world.account.pk, billing_period_start=PERIOD)
    outcome = allocation_run_task(world.account.pk, [DAY.isoformat()])
    assert outcome["rows_written"] == 1 and outcome["violations"] == 0
    assert UnitCost.objects.get(deployment=world.pool).cost_per_1k_requests == Decimal("1")


def test_late_usage_reallocates_the_day_for_every_account_with_cost(world):
    from attribution.ingest import services

    AllocationRule.objects.create(name="pool", match_deployment=world.pool, method="tokens")
    world.line_item("8.00", deployment=world.pool)
    services.daily_cost_rebuild(account_id=world.account.pk, billing_period_start=PERIOD)
    allocation_run_task(world.account.pk, [DAY.isoformat()])
    assert AllocatedCost.objects.get().unallocated_reason == "idle"
    world.usage("ads", input_tokens=10)  # usage for the day arrives after the bill
    outcome = allocation_days_task(None, [DAY.isoformat()])
    assert [entry["account_id"] for entry in outcome["accounts"]] == [world.account.pk]
    assert AllocatedCost.objects.get().team == world.teams["ads"]


def test_a_broken_rule_is_reported_not_retried(world):
    rule = AllocationRule.objects.create(name="fixed", match_deployment=world.pool, method="fixed")
    AllocationShare.objects.create(rule=rule, team=world.teams["ads"], percent=Decimal("99"))
    outcome = allocation_run_task(world.account.pk, [DAY.isoformat()])
    assert "must total exactly 100%" in outcome["error"]


def _reltuples(table: str) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def _analyze_empty_tables() -> None:
    """Planner statistics of empty tables (reltuples 0), as `make demo` leaves them before any
    allocation: without a fresh ANALYZE after the task they would still say 0 rows."""
    from django.db import connection

    from attribution.allocation.services import ALLOCATION_TABLES

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(ALLOCATION_TABLES)}")
    assert _reltuples("attribution_allocatedcost") == 0


def test_the_task_leaves_planner_statistics_current(world):
    from attribution.ingest import services

    _analyze_empty_tables()
    for team in ("search", "ads"):
        world.line_item("3.00", team=team, deployment=world.pool)
        world.usage(team, requests=3000)
    services.daily_cost_rebuild(account_id=world.account.pk, billing_period_start=PERIOD)
    allocation_run_task(world.account.pk, [DAY.isoformat()])
    assert _reltuples("attribution_allocatedcost") == AllocatedCost.objects.count() == 2
    assert _reltuples("attribution_unitcost") == UnitCost.objects.count() > 0


def test_reallocating_days_leaves_planner_statistics_current(world):
    from attribution.ingest import services

    world.line_item("8.00", team="search", deployment=world.pool)
    world.usage("search", requests=10)
    services.daily_cost_rebuild(account_id=world.account.pk, billing_period_start=PERIOD)
    _analyze_empty_tables()
    allocation_days_task(None, [DAY.isoformat()])
    assert _reltuples("attribution_allocatedcost") == AllocatedCost.objects.count() == 1
    assert _reltuples("attribution_unitcost") == UnitCost.objects.count() > 0
