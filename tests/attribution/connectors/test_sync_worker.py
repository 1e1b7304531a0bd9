"""The scheduled path end to end: a real Celery worker on Redis runs the account sync against the
moto server, fans out one ingest per period on the ingest queue (the worker streams the objects
from S3 by uri and ETag) and records the versions."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Sum

from attribution.connectors.tasks import account_sync_task, sync_due_accounts
from attribution.models import BillingPeriodVersion, CloudAccount, CostLineItem, IngestRun, RunState, SyncRun
from tests.attribution.connectors.conftest import DEMO_BUCKET, expected_entry, upload_tree
from tests.celery_worker import celery_worker_process, wait_for

pytestmark = [pytest.mark.celery_worker]


@pytest.fixture
def sync_worker(transactional_db, moto, tmp_path):
    """A real worker; it inherits AWS_ENDPOINT_URL and the test keys the moto fixture set."""
    log_path = tmp_path / "worker.log"
    with celery_worker_process(log_path, name="sync") as process:
        yield process, log_path


def test_a_scheduled_sync_fans_out_ingests_through_a_real_worker(sync_worker, demo_cur2):
    process, log_path = sync_worker
    call_command("demo_seed", stdout=io.StringIO())
    account = CloudAccount.objects.get(slug="aws-prod")
    CloudAccount.objects.filter(pk=account.pk).update(sync_enabled=True, sync_interval_minutes=60)
    out, expected = demo_cur2
    upload_tree(out / "aws" / DEMO_BUCKET, bucket=DEMO_BUCKET)

    # Beat's task: the account is due (never synced), so a billing sync is enqueued for it.
    assert sync_due_accounts() == [account.pk]
    assert sync_due_accounts() == []  # queued already: not twice

    versions = wait_for(
        lambda: BillingPeriodVersion.objects.filter(account=account).count() == 2,
        what="both billing periods to be ingested and recorded",
        process=process,
        log_path=log_path,
    )
    assert versions
    run = SyncRun.objects.get(account=account, kind="billing")
    assert run.state == RunState.SUCCEEDED and run.trigger == "schedule"
    assert IngestRun.objects.filter(pk__in=run.ingest_run_ids, state="succeeded").count() == 2
    for period in ("2026-09", "2026-10"):
        entry = expected_entry(expected, period=period)
        billed = CostLineItem.objects.filter(account=account, billing_period_start=f"{period}-01").aggregate(
            total=Sum("billed_cost")
        )["total"]
        assert billed == Decimal(entry["billed_cost"])
    log = log_path.read_text(errors="replace")
    assert "attribution.tasks.ingest_run_execute_task" in log
    assert "attribution.connectors.tasks.period_ingest_finished_task" in log
    assert not (settings.DATA_DIR / "spool").exists()

    # Synced a moment ago: not due again until its interval has passed.
    assert sync_due_accounts() == []
    # A manual sync of the unchanged export through the worker changes nothing.
    result = account_sync_task.delay(account.pk, None, "manual")
    outcome = result.get(timeout=60)
    assert outcome["state"] == RunState.SUCCEEDED and outcome["ingest_run_ids"] == []
    assert IngestRun.objects.count() == 2
