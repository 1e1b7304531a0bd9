"""Fault tests with real processes (issue 15, defects 2, 3 and 9): `kill -9` of `ingest_file` and of
the worker mid-ingest, then recovery; each ends with the rows and sums of a clean run, no stuck run
and no orphan table. The run is held at a chosen point from a second session (see `held_back`) so
the kill lands mid-run every time, not by luck of timing."""

from __future__ import annotations

import signal
import time

import pytest
from django.core.management import call_command

from attribution.ingest import services, sweep
from attribution.models import CloudAccount, IngestRun
from tests.attribution.crash_fixtures import (
    assert_nothing_left_behind,
    blocked_backends,
    cur2_file,
    end_state,
    held_back,
    ingest_file_process,
    line_item_tables_drop,
    run_lock_free,
    wait_until,
)
from tests.celery_worker import celery_worker_process, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 20_000


@pytest.fixture
def export(tmp_path):
    line_item_tables_drop()
    path = tmp_path / "cur2.csv"
    rows, billed = cur2_file(path, ROWS)
    call_command("ingest_file", str(path), "--account", "clean", "--provider", "aws", stdout=None)
    clean = end_state("clean")
    assert (clean["rows"], clean["billed"], clean["line_items"]) == (rows, billed, rows)
    return path, clean


def _killed_mid_run(path, where: str) -> IngestRun:
    """`ingest_file` killed with SIGKILL while its run is held at `where`."""
    account = services.cloud_account_get_or_create(slug="crashy", provider="aws")
    with held_back(where, account_id=account.pk):
        process = ingest_file_process(path, "crashy")
        wait_until(
            lambda: blocked_backends() and IngestRun.objects.filter(account=account).exists(), what="the run"
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    run = IngestRun.objects.get(account=account)
    wait_until(lambda: run_lock_free(run.pk), what="Postgres to end the killed session")
    run.refresh_from_db()
    assert run.state == "running"  # What the process left: the stuck run.
    return run


@pytest.mark.parametrize("where", ["load", "swap"])
def test_a_rerun_after_ingest_file_was_killed_recovers_the_period(export, where):
    path, clean = export
    killed = _killed_mid_run(path, where)
    assert sweep.line_item_tables().get(killed.pk)  # Its table: loading, or attached before the swap.

    started = time.monotonic()
    rerun = ingest_file_process(path, "crashy")
    output, _ = rerun.communicate(timeout=120)
    recovery = time.monotonic() - started
    assert rerun.returncode == 0, output
    assert "succeeded" in output

    killed.refresh_from_db()
    assert killed.state == "failed"
    assert killed.error.startswith("abandoned: attempt 1 by command ")
    assert "detected by run " in killed.error
    assert end_state("crashy") == clean
    assert_nothing_left_behind()
    print(f"ingest_file killed at {where}: rerun finished in {recovery:.1f}s")


def test_a_killed_process_waiting_for_a_lock_does_not_keep_its_run_alive(export):
    """Postgres notices a dead client only when it next talks to it; a session waiting for a lock
    would keep the run's lock (and the run would look alive) until then, without the client check
    (INFERENSYS_DATABASE_CLIENT_CHECK_SECONDS, 10 s)."""
    path, _clean = export
    account = services.cloud_account_get_or_create(slug="crashy", provider="aws")
    with held_back("swap", account_id=account.pk):
        process = ingest_file_process(path, "crashy")
        wait_until(lambda: blocked_backends(), what="the run to wait at its swap")
        run = IngestRun.objects.get(account=account)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        killed = time.monotonic()
        wait_until(lambda: run_lock_free(run.pk), what="the killed session to end", timeout=30)
        released = time.monotonic() - killed
        assert sweep.storage_sweep().reaped == [run.pk]  # while the lock it waited for is still held
    assert released < 20
    print(f"a killed process waiting for a lock released its run in {released:.1f}s")


def test_the_sweeper_fails_a_killed_command_run_and_frees_its_period(export):
    path, clean = export
    killed = _killed_mid_run(path, "load")

    started = time.monotonic()
    report = sweep.storage_sweep()
    detection = time.monotonic() - started

    assert report.reaped == [killed.pk] and report.retried == []  # A command's run is not retried.
    killed.refresh_from_db()
    assert killed.state == "failed" and "detected by the sweeper" in killed.error
    assert killed.pk not in sweep.line_item_tables()
    assert end_state("crashy")["rows"] == 0  # Nothing of the killed run is visible.
    call_command("ingest_file", str(path), "--account", "crashy", stdout=None)
    assert end_state("crashy") == clean
    assert_nothing_left_behind()
    print(f"sweeper reaped the killed run in {detection:.2f}s")


def test_a_live_run_is_neither_reaped_nor_joined_by_a_second_run(export):
    """Never two live runs on one period: a rerun while the first is alive fails clearly and leaves
    no pending run; the sweeper leaves the live run and its table alone."""
    path, clean = export
    account = services.cloud_account_get_or_create(slug="crashy", provider="aws")
    with held_back("swap", account_id=account.pk):
        first = ingest_file_process(path, "crashy")
        wait_until(lambda: blocked_backends(), what="the first run")
        live = IngestRun.objects.get(account=account)
        (path.parent / "restated.csv").write_bytes(path.read_bytes().replace(b"li-1,", b"li-1b,"))
        second = ingest_file_process(path.parent / "restated.csv", "crashy")
        output, _ = second.communicate(timeout=60)
        assert second.returncode != 0
        assert f"run {live.pk} (command " in output and "is loading this period" in output
        report = sweep.storage_sweep()
        assert report.reaped == report.retried == [] and report.tables_dropped == []
        assert live.pk in sweep.line_item_tables()
    first.communicate(timeout=120)
    assert first.returncode == 0
    cancelled = IngestRun.objects.exclude(pk=live.pk).get(account=account)
    assert cancelled.state == "failed" and cancelled.error.startswith("not started: run ")
    assert end_state("crashy") == clean
    assert_nothing_left_behind()


def test_a_worker_killed_mid_ingest_is_retried_when_a_worker_starts(export, tmp_path):
    from attribution.ingest.tasks import ingest_run_execute_task

    path, clean = export
    account = services.cloud_account_get_or_create(slug="crashy", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    log = tmp_path / "worker.log"
    with held_back("swap", account_id=account.pk):
        with celery_worker_process(log) as worker:
            ingest_run_execute_task.delay(run.pk)
            wait_for(
                lambda: blocked_backends(), what="the ingest to reach its swap", process=worker, log_path=log
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
    wait_until(lambda: run_lock_free(run.pk), what="Postgres to end the killed worker's session")
    run.refresh_from_db()
    assert run.state == "running" and run.executor.startswith("worker ")

    started = time.monotonic()
    log = tmp_path / "worker-restarted.log"
    with celery_worker_process(log, name="restarted") as worker:
        wait_for(
            lambda: IngestRun.objects.filter(pk=run.pk, state="succeeded").exists(),
            what="the killed run to be retried",
            process=worker,
            log_path=log,
        )
        recovery = time.monotonic() - started
    run.refresh_from_db()
    assert run.attempts == 2
    assert end_state("crashy") == clean
    assert_nothing_left_behind()
    assert "storage_sweep_task" in log.read_text()
    print(f"worker killed mid-ingest: run succeeded {recovery:.1f}s after a worker started")


def test_a_run_whose_worker_dies_every_time_fails_after_its_attempts(export):
    path, _clean = export
    account = services.cloud_account_get_or_create(slug="crashy", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    IngestRun.objects.filter(pk=run.pk).update(
        state="running", executor="worker w1 pid 1", attempts=services.INGEST_MAX_ATTEMPTS
    )
    report = sweep.storage_sweep()
    assert report.reaped == [run.pk] and report.retried == []
    run.refresh_from_db()
    assert run.state == "failed" and f"attempt {services.INGEST_MAX_ATTEMPTS} by worker w1" in run.error
    assert CloudAccount.objects.get(slug="crashy").ingest_runs.filter(state="pending").count() == 0
