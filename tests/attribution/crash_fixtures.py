"""Helpers of the crash recovery tests: a CUR 2.0 file with known totals, processes to kill, a
second connection that holds a run at a chosen point, and the end state a clean run leaves."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum

from attribution.ingest import loader, sweep
from attribution.models import DailyCost, IngestRun
from tests.attribution.ingest_fixtures import CUR2_COLUMNS, csv_write, cur2_row, view_totals
from tests.celery_worker import ROOT, database_url_for_the_test_database

PERIOD_ORDINAL = dt.date(2024, 9, 1).toordinal()  # the billing period of cur2_row()
TEAMS = ("search", "ads", "platform", "")
WAIT_SECONDS = 60


def cur2_file(path: Path, rows: int) -> tuple[int, Decimal]:
    """`rows` usage lines of September 2024 over 28 days and four tag sets; returns (rows, sum of
    the unblended cost) computed here, not by the parser under test."""
    total = Decimal(0)

    def generated():
        nonlocal total
        for index in range(rows):
            day = index % 28 + 1
            cost = Decimal(index * 7919 % 1_000_000 + 1).scaleb(-6)
            total += cost
            team = TEAMS[index % len(TEAMS)]
            yield cur2_row(
                identity_line_item_id=f"li-{index}",
                line_item_usage_start_date=f"2024-09-{day:02d}T10:00:00.000Z",
                line_item_usage_end_date=f"2024-09-{day:02d}T11:00:00.000Z",
                line_item_unblended_cost=str(cost),
                pricing_public_on_demand_cost=str(cost),
                line_item_resource_id=f"i-{index % 97}",
                resource_tags=f'{{"user:team": "{team}"}}' if team else "{}",
            )

    csv_write(path, CUR2_COLUMNS, generated())
    return rows, total


def manage_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_the_test_database(),
    }


def ingest_file_process(path: Path, account: str) -> subprocess.Popen:
    command = [str(ROOT / ".venv/bin/python"), "manage.py", "ingest_file", str(path), "--account", account]
    return subprocess.Popen(
        command, cwd=ROOT, env=manage_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_until(condition, *, what: str, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def blocked_backends() -> int:
    """Sessions of this test database waiting for a lock (the run we hold back)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM pg_locks WHERE NOT granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""
        )
        return cursor.fetchone()[0]


@contextmanager
def held_back(where: str, *, account_id: int) -> Iterator[psycopg.Connection]:
    """Hold a run at a chosen point from a second session, like a slow disk would:
    "load": its first tag set insert, after its table was created (rows are being loaded);
    "swap": the period lock of the swap, after its partition was attached."""
    with psycopg.connect(database_url_for_the_test_database()) as blocker:
        if where == "load":
            blocker.execute("LOCK TABLE attribution_tagset IN EXCLUSIVE MODE")
        else:
            blocker.execute("SELECT pg_advisory_xact_lock(%s, %s)", [account_id, PERIOD_ORDINAL])
        yield blocker
        blocker.rollback()


def run_lock_free(run_id: int) -> bool:
    """True once no session holds the run's execution lock (its executor's session ended)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT NOT EXISTS (
                 SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 7311001 AND objid = %s
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))""",
            [run_id],
        )
        return cursor.fetchone()[0]


def line_item_tables_drop() -> None:
    """Tables an earlier test left: the test database's flush empties them but does not drop them."""
    for run_id in sweep.line_item_tables():
        loader.partition_drop(run_id=run_id)


def end_state(account: str) -> dict:
    """What a user relies on after an ingest: rows and sums of the view and of the rollup."""
    rows, billed, effective = view_totals(account)
    daily = DailyCost.objects.filter(account__slug=account).aggregate(
        billed=Sum("billed_cost"), effective=Sum("effective_cost"), line_items=Sum("line_items")
    )
    return {"rows": rows, "billed": billed, "effective": effective, **daily}


def assert_nothing_left_behind() -> None:
    """No stuck run, and no line item table that is not a current version's."""
    stuck = list(IngestRun.objects.filter(state__in=("pending", "running")).values_list("pk", "state"))
    assert stuck == []
    current = set(IngestRun.objects.filter(state="succeeded").values_list("pk", flat=True))
    left = {
        run: IngestRun.objects.filter(pk=run).values_list("state", "error").first()
        for run in sweep.line_item_tables()
    }
    assert set(left) == current, left
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM attribution_costlineitem_staging")
        assert cursor.fetchone()[0] == 0
