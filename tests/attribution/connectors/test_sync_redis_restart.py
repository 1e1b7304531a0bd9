"""Fault test with real processes (issue 15): Redis restarts, without persistence, while a sync's
ingests are in flight: one is executing, the other's message is queued and is lost with Redis. The
executing one finishes; the storage sweeper (what beat runs every minute) enqueues the lost one
again; the next sync records both versions. It ends with the export's sums, no stuck run and no
orphan table."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import socket
import subprocess
import time
from decimal import Decimal

import psycopg
import pytest
import redis
from django.core.management import call_command
from django.db.models import Sum

from attribution.models import BillingPeriodVersion, CloudAccount, CostLineItem, IngestRun, SyncRun
from tests.attribution.connectors.conftest import DEMO_BUCKET, expected_entry, upload_tree
from tests.attribution.crash_fixtures import (
    assert_nothing_left_behind,
    blocked_backends,
    line_item_tables_drop,
)
from tests.celery_worker import celery_worker_process, database_url_for_the_test_database, wait_for

pytestmark = [pytest.mark.celery_worker]

PERIODS = (dt.date(2026, 9, 1), dt.date(2026, 10, 1))


class RedisServer:
    """A redis-server of this test's own (the shared one must not be restarted), no persistence."""

    def __init__(self, directory) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
        ]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)

    def crash(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path, settings, monkeypatch):
    if not shutil.which("redis-server"):
        pytest.fail("this test needs redis-server (Debian package redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    settings.CELERY_BROKER_URL = server.url  # the worker's broker (tests/celery_worker.py)
    # The sweeper re-enqueues a pending run untouched for this long (30 min in production).
    monkeypatch.setenv("INFERENSYS_INGEST_PENDING_STALE_SECONDS", "5")
    yield server
    if server.process and server.process.poll() is None:
        server.crash()


def _send(server: RedisServer, name: str, *args) -> None:
    """Enqueue on this test's Redis, as beat or the web app would."""
    from config.celery_app import app

    with app.connection_for_write(server.url) as connection:
        app.send_task(name, args=list(args), connection=connection)


def test_a_redis_restart_during_a_sync_loses_no_period(
    transactional_db, moto, own_redis, demo_cur2, tmp_path
):
    line_item_tables_drop()
    call_command("demo_seed", stdout=io.StringIO())
    account = CloudAccount.objects.get(slug="aws-prod")
    out, expected = demo_cur2
    upload_tree(out / "aws" / DEMO_BUCKET, bucket=DEMO_BUCKET)

    log = tmp_path / "worker.log"
    with celery_worker_process(log, name="redis-restart") as worker:
        with psycopg.connect(database_url_for_the_test_database()) as blocker:
            # Both periods' swaps wait: one ingest executes (held), the other stays queued in Redis.
            for period in PERIODS:
                blocker.execute("SELECT pg_advisory_xact_lock(%s, %s)", [account.pk, period.toordinal()])
            _send(own_redis, "attribution.connectors.tasks.account_sync_task", account.pk, None, "manual")
            wait_for(
                lambda: blocked_backends() and IngestRun.objects.filter(account=account).count() == 2,
                what="the sync to fan out and one ingest to reach its swap",
                process=worker,
                log_path=log,
            )
            own_redis.crash()
            restarted = time.monotonic()
            own_redis.start()
            blocker.rollback()

        def recovered() -> bool:
            if IngestRun.objects.filter(account=account).exclude(state="succeeded").exists():
                _send(own_redis, "attribution.tasks.storage_sweep_task")  # what beat does every minute
                time.sleep(1)
                return False
            return True

        wait_for(
            recovered, what="both periods to be ingested after the restart", process=worker, log_path=log
        )
        recovery = time.monotonic() - restarted
        # The next sync finds both versions loaded and records them without loading anything again.
        _send(own_redis, "attribution.connectors.tasks.account_sync_task", account.pk, None, "manual")
        wait_for(
            lambda: BillingPeriodVersion.objects.filter(account=account).count() == 2,
            what="the next sync to record both versions",
            process=worker,
            log_path=log,
        )

    assert IngestRun.objects.filter(account=account).count() == 2
    # The queued ingest's message went with Redis: the sweeper enqueued its run again.
    assert IngestRun.objects.filter(account=account, dispatched_at__isnull=False).count() == 1
    for period in PERIODS:
        billed = CostLineItem.objects.filter(account=account, billing_period_start=period).aggregate(
            total=Sum("billed_cost")
        )["total"]
        assert billed == Decimal(expected_entry(expected, period=f"{period:%Y-%m}")["billed_cost"])
    assert not SyncRun.objects.filter(state__in=("pending", "running")).exists()
    assert_nothing_left_behind()
    print(f"Redis restarted during a sync: both periods loaded {recovery:.1f}s after the restart")
