"""Celery tasks of attribution.connectors (thin: take ids, call services in sync.py).

Retries: only a ConnectorError marked transient (throttling, 5xx, timeouts), with exponential
backoff and jitter, honouring the provider's retry-after when it gives one; the run waits as
`pending` between attempts. Anything else fails the run with its reason (sync.sync_run_fail).
"""

from __future__ import annotations

import datetime as dt
import logging
import random

from celery import chain, shared_task
from celery.canvas import Signature
from django.db import transaction
from django.utils import timezone

from attribution.connectors import services as sync
from attribution.connectors.base import ConnectorError
from attribution.models import CloudAccount, RunState, SyncErrorKind, SyncKind, SyncRun

logger = logging.getLogger(__name__)

MAX_RETRIES = 6
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 900


def retry_countdown(*, retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter (0.5x to 1.5x), never sooner than the provider asks."""
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**retries) * random.uniform(0.5, 1.5)  # noqa: S311
    return max(backoff, retry_after or 0)


def _accounts_due(now: dt.datetime) -> list[CloudAccount]:
    due = []
    busy = set(
        SyncRun.objects.filter(
            kind=SyncKind.BILLING, state__in=(RunState.PENDING, RunState.RUNNING)
        ).values_list("account_id", flat=True)
    )
    for account in CloudAccount.objects.filter(sync_enabled=True):
        if account.pk in busy:
            continue
        interval = dt.timedelta(minutes=max(1, account.sync_interval_minutes))
        # A failing account is retried on its own cadence too, not on every beat.
        last_attempt = (
            SyncRun.objects.filter(account=account, kind=SyncKind.BILLING)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        latest = max(filter(None, (account.last_synced_at, last_attempt)), default=None)
        if latest is None or latest + interval <= now:
            due.append(account)
    return due


@shared_task(name="attribution.connectors.tasks.sync_due_accounts", ignore_result=True)
def sync_due_accounts() -> list[int]:
    """Beat: enqueue a billing and a usage sync for each account whose cadence is due."""
    enqueued = []
    for account in _accounts_due(timezone.now()):
        with transaction.atomic():
            run = sync.sync_run_request(account_id=account.pk, kind=SyncKind.BILLING, trigger="schedule")
            transaction.on_commit(
                lambda account_id=account.pk, run_id=run.pk: account_sync_task.delay(account_id, run_id)
            )
            transaction.on_commit(lambda account_id=account.pk: account_usage_sync_task.delay(account_id))
        enqueued.append(account.pk)
    return enqueued


def _retry_or_fail(task, *, sync_run_id: int, error: ConnectorError, args: tuple) -> None:
    if task.request.retries >= task.max_retries:
        sync.sync_run_fail(
            sync_run_id=sync_run_id,
            error_kind=SyncErrorKind.TRANSIENT,
            error=f"gave up after {task.request.retries + 1} attempts: {error}",
        )
        return
    countdown = retry_countdown(retries=task.request.retries, retry_after=error.retry_after)
    logger.info("sync run %s: %s; retrying in %.0fs", sync_run_id, error, countdown)
    raise task.retry(args=args, countdown=countdown, exc=error)


def _busy_skip(sync_run_id: int, error: Exception) -> dict:
    SyncRun.objects.filter(pk=sync_run_id, state=RunState.PENDING).update(
        state=RunState.FAILED, error=f"skipped: {error}", finished_at=timezone.now()
    )
    return {"sync_run_id": sync_run_id, "state": "skipped", "reason": str(error)}


@shared_task(
    bind=True,
    name="attribution.connectors.tasks.account_sync_task",
    acks_late=True,
    soft_time_limit=3000,
    time_limit=3300,
    max_retries=MAX_RETRIES,
)
def account_sync_task(
    self, account_id: int, sync_run_id: int | None = None, trigger: str = "schedule"
) -> dict:
    if sync_run_id is None:
        sync_run_id = sync.sync_run_request(account_id=account_id, kind=SyncKind.BILLING, trigger=trigger).pk
    try:
        run = sync.account_sync(account_id=account_id, trigger=trigger, sync_run_id=sync_run_id)
    except sync.SyncBusyError as error:
        return _busy_skip(sync_run_id, error)
    except ConnectorError as error:  # only transient ones reach here
        _retry_or_fail(self, sync_run_id=sync_run_id, error=error, args=(account_id, sync_run_id, trigger))
        return {"sync_run_id": sync_run_id, "state": RunState.FAILED}
    if run is None:
        return {"sync_run_id": sync_run_id, "state": "already claimed"}
    return {"sync_run_id": run.pk, "state": run.state, "ingest_run_ids": run.ingest_run_ids}


@shared_task(
    bind=True,
    name="attribution.connectors.tasks.account_usage_sync_task",
    acks_late=True,
    soft_time_limit=1500,
    time_limit=1800,
    max_retries=MAX_RETRIES,
)
def account_usage_sync_task(self, account_id: int, sync_run_id: int | None = None) -> dict:
    try:
        run = sync.account_usage_sync(account_id=account_id, trigger="schedule", sync_run_id=sync_run_id)
    except sync.SyncBusyError as error:
        return {"account_id": account_id, "state": "skipped", "reason": str(error)}
    except ConnectorError as error:
        pending = (
            SyncRun.objects.filter(account_id=account_id, kind=SyncKind.USAGE, state=RunState.PENDING)
            .order_by("-created_at")
            .values_list("pk", flat=True)
            .first()
        )
        if pending is None:
            raise
        _retry_or_fail(self, sync_run_id=pending, error=error, args=(account_id, pending))
        return {"sync_run_id": pending, "state": RunState.FAILED}
    if run is None:
        return {"account_id": account_id, "state": "no usage connector"}
    return {"sync_run_id": run.pk, "state": run.state, "usage_records": run.usage_records}


@shared_task(name="attribution.connectors.tasks.connection_test_task", soft_time_limit=300, time_limit=330)
def connection_test_task(account_id: int) -> dict:
    try:
        run, report = sync.account_connection_test(account_id=account_id, trigger="task")
    except sync.SyncBusyError as error:
        return {"account_id": account_id, "ok": False, "message": str(error)}
    return {
        "sync_run_id": run.pk,
        "ok": report.ok,
        "error_kind": report.error_kind,
        "message": report.message,
    }


@shared_task(
    name="attribution.connectors.tasks.period_ingest_finished_task",
    acks_late=True,
    # A limit under the broker's visibility timeout, or a hung call would be delivered twice.
    soft_time_limit=300,
    time_limit=330,
)
def period_ingest_finished_task(
    *,
    sync_run_id: int,
    ingest_run_id: int,
    account_id: int,
    billing_period_start: str,
    source_version: str,
    is_final: bool,
) -> str:
    return sync.period_ingest_finished(
        sync_run_id=sync_run_id,
        ingest_run_id=ingest_run_id,
        account_id=account_id,
        billing_period_start=dt.date.fromisoformat(billing_period_start),
        source_version=source_version,
        is_final=is_final,
    )


def period_ingest_signature(*, ingest_run_id: int, **finish) -> Signature:
    """The ingest of one synced period (ingest queue), then its bookkeeping (default queue)."""
    from attribution.ingest.tasks import ingest_run_execute_task

    return chain(
        ingest_run_execute_task.si(ingest_run_id),
        period_ingest_finished_task.si(ingest_run_id=ingest_run_id, **finish),
    )
