"""The storage sweeper (attribution/ingest/sweep.py): orphan tables, tag sets, lost messages, and
the broker settings that crash recovery relies on."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from attribution.ingest import loader, services, sweep
from attribution.models import IngestRun, TagSet
from tests.attribution.crash_fixtures import cur2_file, end_state, line_item_tables_drop
from tests.attribution.ingest_fixtures import CUR2_COLUMNS, csv_write, cur2_row
from tests.celery_worker import database_url_for_the_test_database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_tables_of_earlier_tests():
    line_item_tables_drop()


def _ingest(path, account: str = "acme") -> IngestRun:
    call_command("ingest_file", str(path), "--account", account, "--provider", "aws", stdout=None)
    return IngestRun.objects.filter(account__slug=account, state="succeeded").get()


def _run(current: IngestRun, **fields) -> IngestRun:
    return IngestRun.objects.create(
        account_id=current.account_id,
        billing_period_start=current.billing_period_start,
        billing_period_end=current.billing_period_end,
        **fields,
    )


def test_it_drops_the_tables_no_live_run_owns_and_keeps_the_others(tmp_path):
    rows, billed = cur2_file(tmp_path / "cur2.csv", 500)
    current = _ingest(tmp_path / "cur2.csv")
    # A failed run whose partition stayed attached, a table whose run is gone, a dead run's
    # table, and a live run (its lock held by another session) that is still loading.
    failed = _run(current, state="failed")
    loader.partition_create(run_id=failed.pk)
    loader.partition_attach(run_id=failed.pk)
    loader.partition_create(run_id=987_654)
    dead = _run(current, state="running", executor="worker w pid 1", attempts=1)
    loader.partition_create(run_id=dead.pk)
    other_period = dict(billing_period_start=dt.date(2024, 10, 1), billing_period_end=dt.date(2024, 11, 1))
    live = IngestRun.objects.create(account_id=current.account_id, state="running", **other_period)
    loader.partition_create(run_id=live.pk)

    with psycopg.connect(database_url_for_the_test_database(), autocommit=True) as executor:
        executor.execute("SELECT pg_advisory_lock(7311001, %s)", [live.pk])
        report = sweep.storage_sweep()
        assert set(sweep.line_item_tables()) == {current.pk, live.pk}

    assert sorted(report.tables_dropped) == sorted(
        loader.partition_name(run_id) for run_id in (failed.pk, 987_654)
    )  # The dead run's table went with its reaping.
    assert report.retried == [dead.pk]
    assert IngestRun.objects.get(pk=live.pk).state == "running"
    assert end_state("acme")["rows"] == rows and end_state("acme")["billed"] == billed


def test_it_collects_tag_sets_no_line_item_references_unless_a_run_is_executing(tmp_path):
    team_rows = [
        cur2_row(identity_line_item_id=f"li-{i}", resource_tags='{"user:team": "ads"}') for i in range(3)
    ]
    _ingest(csv_write(tmp_path / "v1.csv", CUR2_COLUMNS, team_rows))
    first_sets = set(TagSet.objects.values_list("pk", flat=True))
    # The restated period carries other tags: the first version's tag set is no longer used.
    restated = [
        cur2_row(identity_line_item_id=f"li-{i}", resource_tags='{"user:team": "search"}') for i in range(3)
    ]
    _ingest(csv_write(tmp_path / "v2.csv", CUR2_COLUMNS, restated))
    used = set(TagSet.objects.values_list("pk", flat=True)) - first_sets
    assert len(used) == 1 and len(first_sets) == 1

    with psycopg.connect(database_url_for_the_test_database(), autocommit=True) as executing:
        executing.execute("SELECT pg_advisory_lock_shared(%s, %s)", services.TAG_SETS_LOCK)
        assert sweep.storage_sweep(collect_tag_sets=True).tag_sets_deleted is None
    assert set(TagSet.objects.values_list("pk", flat=True)) == first_sets | used

    assert sweep.storage_sweep(collect_tag_sets=True).tag_sets_deleted == 1
    assert set(TagSet.objects.values_list("pk", flat=True)) == used
    with connection.cursor() as cursor:
        cursor.execute("""SELECT DISTINCT "Tags"->>'user:team' FROM focus_line_items""")
        assert cursor.fetchall() == [("search",)]


def test_it_enqueues_again_a_pending_remote_run_whose_message_was_lost(tmp_path):
    cur2_file(tmp_path / "cur2.csv", 10)
    current = _ingest(tmp_path / "cur2.csv")
    remote = [{"path": "s3://bills/cur2.csv.gz", "uri": "s3://bills/cur2.csv.gz", "version": "e1"}]
    lost = _run(current, source_files=remote)
    local = _run(current, source_files=[{"path": "/tmp/cur2.csv", "sha256": "ab"}])
    recent = _run(current, source_files=remote)
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    IngestRun.objects.filter(pk__in=[lost.pk, local.pk]).update(created_at=an_hour_ago)

    assert sweep.storage_sweep().requeued == [lost.pk]
    assert IngestRun.objects.get(pk=lost.pk).dispatched_at is not None
    # Enqueued again only once per INGEST_PENDING_STALE_SECONDS, however often the sweeper passes.
    assert sweep.storage_sweep().requeued == []
    assert IngestRun.objects.get(pk=recent.pk).dispatched_at is None


def test_a_sync_left_running_by_a_dead_worker_no_longer_keeps_its_account_off_the_schedule():
    from attribution.connectors.tasks import _accounts_due
    from attribution.models import CloudAccount, SyncRun

    account = CloudAccount.objects.create(slug="acme", provider="aws", sync_enabled=True)
    killed = SyncRun.objects.create(
        account=account, state="running", started_at=timezone.now() - dt.timedelta(hours=3)
    )
    live = SyncRun.objects.create(
        account=CloudAccount.objects.create(slug="other", provider="aws", sync_enabled=True),
        state="running",
        started_at=timezone.now() - dt.timedelta(minutes=5),
    )
    # Its cadence (6 h) passes, and passes again: a running sync keeps the account off the schedule.
    in_a_day = timezone.now() + dt.timedelta(days=1)
    assert _accounts_due(in_a_day) == []

    assert sweep.storage_sweep().sync_runs_abandoned == [killed.pk]
    killed.refresh_from_db()
    assert killed.state == "failed" and killed.error.startswith("abandoned")
    assert SyncRun.objects.get(pk=live.pk).state == "running"
    assert _accounts_due(in_a_day) == [account]


def test_a_run_of_a_dead_executor_is_claimed_again_by_its_own_redelivery(tmp_path):
    """A redelivered task (a worker's child killed, reject_on_worker_lost) finds its run
    `running` with no lock held: it loads it again, counting the attempt."""
    path = tmp_path / "cur2.csv"
    rows, billed = cur2_file(path, 200)
    account = services.cloud_account_get_or_create(slug="acme", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    IngestRun.objects.filter(pk=run.pk).update(state="running", attempts=1, executor="worker a pid 1")
    loader.partition_create(run_id=run.pk)  # what the dead attempt had loaded
    run = services.ingest_run_execute(run_id=run.pk, executor="worker b pid 2")
    assert (run.state, run.attempts, run.executor) == ("succeeded", 2, "worker b pid 2")
    assert end_state("acme")["rows"] == rows and end_state("acme")["billed"] == billed


def test_the_broker_redelivers_no_task_that_is_still_running():
    """Redis redelivers an unacknowledged message after the visibility timeout even if its task
    still runs: every acks_late task must have a hard time limit below it."""
    from config.celery_app import app

    assert str(settings.CELERY_BROKER_URL).startswith("redis://"), "the tests run with Redis as the broker"
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    app.loader.import_default_modules()
    late = {name: task for name, task in app.tasks.items() if task.acks_late}
    assert "attribution.tasks.ingest_run_execute_task" in late
    too_long = {
        name: task.time_limit
        for name, task in late.items()
        if not task.time_limit or task.time_limit >= visibility
    }
    assert too_long == {}
    assert visibility - late["attribution.tasks.ingest_run_execute_task"].time_limit >= 300


def test_the_sweeper_is_scheduled_with_an_expiry_under_its_interval():
    from config.celery_app import app

    sweeps = [
        entry
        for entry in app.conf.beat_schedule.values()
        if entry["task"] == "attribution.tasks.storage_sweep_task"
    ]
    assert {entry.get("kwargs", {}).get("collect_tag_sets", False) for entry in sweeps} == {False, True}
    for entry in sweeps:
        assert 0 < entry["options"]["expires"] < entry["schedule"]
    assert min(entry["schedule"] for entry in sweeps) <= 60
