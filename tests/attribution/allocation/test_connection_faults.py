"""Fault test with real processes (issue 15): the worker's Postgres connection is dropped
(`pg_terminate_backend`) in the middle of an allocation. The transaction rolls back, the task is
retried on a new connection, and the day ends allocated exactly as a clean run allocates it."""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum

from attribution.allocation.services import _LOCK_NAMESPACE
from attribution.ingest import services
from attribution.models import AllocatedCost, AllocationRule, DailyCost
from tests.attribution.allocation.conftest import DAY, PERIOD
from tests.celery_worker import celery_worker_process, database_url_for_the_test_database, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _allocated() -> list[tuple]:
    return sorted(
        AllocatedCost.objects.values_list("day", "team__slug", "unallocated_reason").annotate(
            billed=Sum("billed_cost"), effective=Sum("effective_cost")
        ),
        key=str,
    )


def _allocation_backend() -> int | None:
    """The session waiting for the account's allocation lock: the worker, inside its transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = %s
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
            [_LOCK_NAMESPACE],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def test_allocation_retried_after_its_connection_was_dropped_matches_a_clean_run(world, tmp_path):
    from attribution.allocation.tasks import allocation_run_task

    AllocationRule.objects.create(name="pool", match_deployment=world.pool, method="tokens")
    world.line_item("100.00", "90.00", deployment=world.pool)
    world.line_item("3.00", team="search")
    world.line_item("1.01")  # untagged, no rule: stays unallocated
    world.usage("search", input_tokens=30)
    world.usage("ads", input_tokens=70, hour=1)
    services.daily_cost_rebuild(account_id=world.account.pk, billing_period_start=PERIOD)
    world.allocate()
    clean = _allocated()
    assert sum(row[3] for row in clean) == Decimal("104.01")
    AllocatedCost.objects.all().delete()

    log = tmp_path / "worker.log"
    with celery_worker_process(log) as worker:
        with psycopg.connect(database_url_for_the_test_database()) as blocker:
            blocker.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, world.account.pk])
            allocation_run_task.delay(world.account.pk, [DAY.isoformat()])
            pid = wait_for(_allocation_backend, what="the allocation to start", process=worker, log_path=log)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            blocker.rollback()
        dropped = time.monotonic()
        wait_for(lambda: _allocated() == clean, what="the retried allocation", process=worker, log_path=log)
        recovery = time.monotonic() - dropped
    assert "terminating connection due to administrator command" in log.read_text()
    billed = DailyCost.objects.filter(account=world.account, day=DAY).aggregate(total=Sum("billed_cost"))[
        "total"
    ]
    assert sum(row[3] for row in _allocated()) == billed == Decimal("104.01")
    print(f"allocation connection dropped: allocated again {recovery:.1f}s later")
