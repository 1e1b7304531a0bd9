"""The sync service: provider-agnostic, drives a connector and hands changed periods to ingestion.

One billing sync of an account (`account_sync`):

1. claim the SyncRun: pending -> running with a conditional UPDATE; the partial unique index
   `syncrun_one_running_per_kind` makes a second concurrent sync of the same account fail to claim
   (SyncBusyError), so two syncs never overlap;
2. discover the periods at the source (connector.discover) and compare each with what we last
   ingested (BillingPeriodVersion.source_version): unchanged periods are skipped; a changed period
   whose version was final raises `period_restated_after_close`; the current and previous months
   are never final until the provider issues the invoice, so they are refreshed on every sync;
3. for each changed period: plan the ingest run from its remote files (ingest_runs_create with
   the period stated and streamed sources: nothing is copied to disk, only each file's head is read
   here) and, after commit, enqueue the ingest on the ingest queue chained with
   `period_ingest_finished_task`, which records the version as ingested and sends `sync_failed` if
   the ingest failed. The ingest re-opens the files at their planned versions in the worker.

BillingPeriodVersion records the version *ingested*, not the version seen: a period whose ingest
failed is retried by the next sync instead of being skipped forever.

Errors: a ConnectorError marked transient puts the run back to pending and is re-raised for the
task to retry with backoff; any other error fails the run with its kind and reason and sends
`sync_failed` (governance turns it into an alert). Per-period planning errors (a bad file) fail
the run too, after the other periods were handled.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from attribution import signals
from attribution.audit import audited_change_send, model_snapshot, snapshot_changes
from attribution.choices import IngestState
from attribution.connectors import billing_connector_for, usage_connector_for
from attribution.connectors.base import ConnectionReport, ConnectorError, PeriodDelivery
from attribution.ingest.errors import IngestError
from attribution.models import (
    BillingPeriodVersion,
    CloudAccount,
    IngestRun,
    RunState,
    SyncErrorKind,
    SyncKind,
    SyncRun,
)

logger = logging.getLogger(__name__)

# Longer than account_sync_task's hard time limit: a run still "running" after this was abandoned
# by a worker that died, and must not block the account forever.
STALE_RUNNING_AFTER = dt.timedelta(hours=2)
# A pending ingest older than this lost its task; the period may be planned again.
STALE_INGEST_AFTER = dt.timedelta(hours=6)
USAGE_DELAY = dt.timedelta(minutes=10)  # CloudWatch / Monitor metrics settle within minutes
USAGE_FIRST_WINDOW = dt.timedelta(hours=24)
USAGE_MAX_WINDOW = dt.timedelta(days=7)


class SyncBusyError(Exception):
    """Another sync of the same kind is running for this account."""


@dataclass
class PeriodPlan:
    billing_period_start: dt.date
    source_version: str
    is_final: bool
    run_ids: list[int]


# --- accounts (governed: every change audited) ----------------------------------------------------


def cloud_account_save(
    *, account: CloudAccount, actor: Any = None, remote_addr: str | None = None
) -> CloudAccount:
    """Create or update an account, validated (no secret in source_settings, only references),
    audited with its settings before and after (never the encrypted credential)."""
    account.full_clean()
    with transaction.atomic():
        saved = (
            CloudAccount.objects.select_for_update().filter(pk=account.pk).first()
            if account.pk is not None
            else None
        )
        before = model_snapshot(saved) if saved is not None else None
        account.save()
        audited_change_send(
            actor=actor,
            action="create" if before is None else "update",
            obj=account,
            changes=snapshot_changes(before, model_snapshot(account)),
            remote_addr=remote_addr,
        )
    return account


def cloud_account_delete(*, account: CloudAccount, actor: Any = None, remote_addr: str | None = None) -> None:
    with transaction.atomic():
        audited_change_send(
            actor=actor,
            action="delete",
            obj=account,
            changes=snapshot_changes(model_snapshot(account), None),
            remote_addr=remote_addr,
        )
        account.delete()


# --- run bookkeeping ---------------------------------------------------------------------------


def sync_run_request(*, account_id: int, kind: str = SyncKind.BILLING, trigger: str = "manual") -> SyncRun:
    """A pending run, visible at once in the UI and API; a task claims and executes it."""
    return SyncRun.objects.create(account_id=account_id, kind=kind, trigger=trigger[:16])


def account_sync_queue(*, account_id: int, trigger: str) -> tuple[SyncRun, bool]:
    """Queue a billing sync of the account unless one is already queued or running.

    Returns (run, queued): the new pending run, or the active one with queued=False. The account
    row is locked so that two clicks (or a click and an API call) do not queue two syncs. The task
    is enqueued by connectors/receivers.py once this transaction commits.
    """
    with transaction.atomic():
        CloudAccount.objects.select_for_update().get(pk=account_id)
        active = (
            SyncRun.objects.filter(
                account_id=account_id,
                kind=SyncKind.BILLING,
                state__in=(RunState.PENDING, RunState.RUNNING),
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if active is not None:
            return active, False
        run = sync_run_request(account_id=account_id, kind=SyncKind.BILLING, trigger=trigger)
        signals.account_sync_requested.send(
            sender=SyncRun, account_id=account_id, sync_run_id=run.pk, trigger=trigger
        )
    return run, True


def _stale_runs_abandon(*, account_id: int, kind: str) -> None:
    SyncRun.objects.filter(
        account_id=account_id,
        kind=kind,
        state=RunState.RUNNING,
        started_at__lt=timezone.now() - STALE_RUNNING_AFTER,
    ).update(
        state=RunState.FAILED,
        error_kind=SyncErrorKind.TRANSIENT,
        error="abandoned: the worker running this sync stopped before finishing",
        finished_at=timezone.now(),
    )


def sync_runs_abandon_stale() -> list[int]:
    """Sync runs of any account still `running` past STALE_RUNNING_AFTER (their worker died), failed
    as abandoned; returns their ids. Called by the storage sweeper (attribution/ingest/sweep.py):
    the schedule skips an account whose sync is running (`_accounts_due` in tasks.py), so without
    it such an account would not be synced again until someone asked by hand."""
    stale = list(
        SyncRun.objects.filter(
            state=RunState.RUNNING, started_at__lt=timezone.now() - STALE_RUNNING_AFTER
        ).values_list("pk", flat=True)
    )
    for run in SyncRun.objects.filter(pk__in=stale).values("account_id", "kind").distinct():
        _stale_runs_abandon(account_id=run["account_id"], kind=run["kind"])
    return stale


def _sync_run_claim(run: SyncRun) -> bool:
    """pending -> running, only if exactly one row changes; SyncBusyError if another is running."""
    _stale_runs_abandon(account_id=run.account_id, kind=run.kind)
    try:
        with transaction.atomic():
            claimed = SyncRun.objects.filter(pk=run.pk, state=RunState.PENDING).update(
                state=RunState.RUNNING, started_at=timezone.now(), progress_message="started"
            )
    except IntegrityError:
        raise SyncBusyError(f"another {run.kind} sync of account {run.account_id} is running") from None
    return claimed == 1


def _progress(run: SyncRun, message: str, **fields: Any) -> None:
    fields["progress_message"] = message[:300]
    SyncRun.objects.filter(pk=run.pk).update(**fields)
    for name, value in fields.items():
        setattr(run, name, value)


def sync_run_fail(*, sync_run_id: int, error_kind: str, error: str) -> SyncRun:
    """Permanent failure: recorded with its reason and announced (governance raises an alert)."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=sync_run_id)
        run.state = RunState.FAILED
        run.error_kind = error_kind
        run.error = error[:10_000]
        run.finished_at = timezone.now()
        run.progress_message = "failed"
        run.save(update_fields=["state", "error_kind", "error", "finished_at", "progress_message"])
        signals.sync_failed.send(
            sender=SyncRun, account_id=run.account_id, kind=run.kind, error_kind=error_kind, error=run.error
        )
    return run


def sync_run_requeue(*, sync_run_id: int, error: str) -> None:
    """A transient failure: back to pending (the task retries it), the reason kept for the UI."""
    SyncRun.objects.filter(pk=sync_run_id, state=RunState.RUNNING).update(
        state=RunState.PENDING,
        error_kind=SyncErrorKind.TRANSIENT,
        error=error[:10_000],
        progress_message="waiting to retry",
    )


def _sync_run_succeed(run: SyncRun, **fields: Any) -> SyncRun:
    now = timezone.now()
    fields.update(state=RunState.SUCCEEDED, finished_at=now, error_kind="", error="")
    _progress(run, "done", **fields)
    if run.kind == SyncKind.BILLING:
        CloudAccount.objects.filter(pk=run.account_id).update(last_synced_at=now)
    return run


def _run_start(*, account_id: int, kind: str, trigger: str, sync_run_id: int | None) -> SyncRun | None:
    """The claimed run, or None when it is not pending any more (a redelivered task)."""
    run = (
        SyncRun.objects.get(pk=sync_run_id)
        if sync_run_id is not None
        else sync_run_request(account_id=account_id, kind=kind, trigger=trigger)
    )
    if run.account_id != account_id or run.kind != kind:
        raise ValueError(f"sync run {run.pk} is not a {kind} sync of account {account_id}")
    if not _sync_run_claim(run):
        return None
    run.refresh_from_db()
    return run


def _connector_failure(run: SyncRun, error: ConnectorError) -> SyncRun:
    if error.transient:
        sync_run_requeue(sync_run_id=run.pk, error=str(error))
        raise error
    return sync_run_fail(sync_run_id=run.pk, error_kind=error.error_kind, error=str(error))


# --- billing -----------------------------------------------------------------------------------


def _ingest_in_flight(account: CloudAccount, period: dt.date) -> bool:
    return IngestRun.objects.filter(
        account=account,
        billing_period_start=period,
        state__in=(IngestState.PENDING, IngestState.RUNNING),
        created_at__gte=timezone.now() - STALE_INGEST_AFTER,
    ).exists()


def period_version_record(
    *, account_id: int, billing_period_start: dt.date, source_version: str, is_final: bool
) -> BillingPeriodVersion:
    """Remember the version of a period that is now loaded (after its ingest succeeded)."""
    now = timezone.now()
    version, created = BillingPeriodVersion.objects.get_or_create(
        account_id=account_id, billing_period_start=billing_period_start
    )
    changed = created or version.source_version != source_version
    version.source_version = source_version[:300]
    version.last_checked_at = now
    if changed:
        version.last_changed_at = now
    if is_final and not version.is_final:
        version.finalized_at = now
    version.is_final = is_final
    version.save()
    return version


def _restatement_check(account: CloudAccount, known: BillingPeriodVersion, delivery: PeriodDelivery) -> bool:
    if not known.is_final:
        return False
    BillingPeriodVersion.objects.filter(pk=known.pk).update(restated_after_close=True)
    signals.period_restated_after_close.send(
        sender=BillingPeriodVersion,
        account_id=account.pk,
        billing_period_start=delivery.billing_period_start,
        old_version=known.source_version,
        new_version=delivery.source_version,
    )
    logger.warning(
        "account %s: billing period %s changed after it was final (%s -> %s)",
        account.slug,
        f"{delivery.billing_period_start:%Y-%m}",
        known.source_version,
        delivery.source_version,
    )
    return True


def _period_plan(run: SyncRun, account: CloudAccount, delivery: PeriodDelivery) -> PeriodPlan:
    """Create the period's ingest run(s) from its remote files, streamed: planning reads only the
    head of each file (format detection; the period is stated), the run stores each file's uri and
    version, and the ingest re-opens them at that version (attribution.connectors.remote_opener)."""
    # Imported here: attribution.services imports the whole ingest pipeline, which a web request
    # listing sync runs does not need.
    from attribution.ingest.services import ingest_runs_create
    from attribution.ingest.sources import RemoteSource

    period = delivery.billing_period_start
    if not delivery.files:
        raise ConnectorError(
            f"billing period {period:%Y-%m} has a manifest but no data files", error_kind=SyncErrorKind.EMPTY
        )
    runs = ingest_runs_create(
        account=account,
        sources=[RemoteSource.from_remote_file(remote) for remote in delivery.files],
        source_format=delivery.source_format,
        billing_period=period,
    )
    to_load = [ingest_run.pk for ingest_run in runs if ingest_run.state != IngestState.SUCCEEDED]
    if not to_load:
        # The same objects at the same versions are already loaded (e.g. a manifest rewritten).
        period_version_record(
            account_id=account.pk,
            billing_period_start=period,
            source_version=delivery.source_version,
            is_final=delivery.is_final,
        )
    return PeriodPlan(period, delivery.source_version, delivery.is_final, to_load)


def _ingest_dispatch(run: SyncRun, account: CloudAccount, plan: PeriodPlan, *, inline: bool) -> None:
    finish = {
        "sync_run_id": run.pk,
        "account_id": account.pk,
        "billing_period_start": plan.billing_period_start.isoformat(),
        "source_version": plan.source_version,
        "is_final": plan.is_final,
    }
    for ingest_run_id in plan.run_ids:
        if inline:
            _ingest_inline(ingest_run_id=ingest_run_id, **finish)
        else:
            signals.period_ingest_requested.send(sender=SyncRun, ingest_run_id=ingest_run_id, **finish)


def _ingest_inline(*, ingest_run_id: int, billing_period_start: str, **finish: Any) -> None:
    from attribution.ingest.services import ingest_run_execute, ingest_run_followups

    try:
        pending = [ingest_run_id]
        while pending:
            ingest_run = ingest_run_execute(run_id=pending.pop(0))
            # Runs the load planned for other periods found in the files (as the ingest task does).
            pending.extend(followup.pk for followup in ingest_run_followups(run=ingest_run))
    except IngestError as error:  # recorded on the run; announced by period_ingest_finished
        logger.warning("ingest run %s failed: %s", ingest_run_id, error)
    finally:
        period_ingest_finished(
            ingest_run_id=ingest_run_id,
            billing_period_start=dt.date.fromisoformat(billing_period_start),
            **finish,
        )


def account_sync(
    *,
    account_id: int,
    trigger: str = "schedule",
    sync_run_id: int | None = None,
    inline_ingest: bool = False,
) -> SyncRun | None:
    """Run one billing sync (see the module docstring). Returns the run, or None when the given run
    was already claimed (a redelivered task). `inline_ingest` loads the periods in this process
    instead of enqueueing them (manage.py sync_account --wait)."""
    run = _run_start(account_id=account_id, kind=SyncKind.BILLING, trigger=trigger, sync_run_id=sync_run_id)
    if run is None:
        return None
    try:
        return _billing_sync(run, inline_ingest=inline_ingest)
    except ConnectorError:
        raise  # transient: the run is pending again and the task retries it
    except Exception as error:
        # A bug or a time limit must not leave the run "running" until it is declared abandoned.
        sync_run_fail(
            sync_run_id=run.pk, error_kind=SyncErrorKind.INVALID, error=f"{type(error).__name__}: {error}"
        )
        raise


def _billing_sync(run: SyncRun, *, inline_ingest: bool) -> SyncRun:
    account = CloudAccount.objects.get(pk=run.account_id)
    try:
        connector = billing_connector_for(account)
        _progress(run, "discovering billing periods")
        deliveries = connector.discover()
    except ConnectorError as error:
        return _connector_failure(run, error)

    known = {v.billing_period_start: v for v in BillingPeriodVersion.objects.filter(account=account)}
    periods: list[dict[str, Any]] = []
    ingest_run_ids: list[int] = list(run.ingest_run_ids or [])
    changed = skipped = 0
    failures: list[tuple[str, str]] = []
    _progress(run, f"{len(deliveries)} billing period(s) found", periods_found=len(deliveries))

    for delivery in sorted(deliveries, key=lambda d: d.billing_period_start):
        period = delivery.billing_period_start
        entry: dict[str, Any] = {
            "period": f"{period:%Y-%m}",
            "source_version": delivery.source_version,
            "is_final": delivery.is_final,
            "files": len(delivery.files),
        }
        periods.append(entry)
        previous = known.get(period)
        if previous is not None and previous.source_version == delivery.source_version:
            BillingPeriodVersion.objects.filter(pk=previous.pk).update(last_checked_at=timezone.now())
            if delivery.is_final and not previous.is_final:
                period_version_record(
                    account_id=account.pk,
                    billing_period_start=period,
                    source_version=delivery.source_version,
                    is_final=True,
                )
            entry["action"] = "unchanged"
            skipped += 1
            continue
        if _ingest_in_flight(account, period):
            entry["action"] = "ingest in progress"
            skipped += 1
            continue
        if previous is not None:
            entry["restated_after_close"] = _restatement_check(account, previous, delivery)
        _progress(run, f"loading {period:%Y-%m} ({len(delivery.files)} file(s))")
        try:
            plan = _period_plan(run, account, delivery)
        except ConnectorError as error:
            if error.transient:
                _progress(run, "interrupted", details={"periods": periods}, ingest_run_ids=ingest_run_ids)
                return _connector_failure(run, error)
            entry["action"], entry["error"] = "failed", str(error)
            failures.append((error.error_kind, f"{period:%Y-%m}: {error}"))
            continue
        except IngestError as error:
            entry["action"], entry["error"] = "failed", str(error)
            failures.append((SyncErrorKind.INVALID, f"{period:%Y-%m}: {error}"))
            continue
        entry["action"] = "ingest" if plan.run_ids else "already loaded"
        entry["ingest_run_ids"] = plan.run_ids
        ingest_run_ids.extend(plan.run_ids)
        changed += 1
        _progress(run, f"planned {period:%Y-%m}", ingest_run_ids=ingest_run_ids, periods_changed=changed)
        _ingest_dispatch(run, account, plan, inline=inline_ingest)

    fields = {
        "periods_changed": changed,
        "periods_skipped": skipped,
        "ingest_run_ids": ingest_run_ids,
        "details": {"periods": periods},
    }
    if failures:
        _progress(run, "failed", **fields)
        kind = failures[0][0] or SyncErrorKind.INVALID
        return sync_run_fail(
            sync_run_id=run.pk, error_kind=kind, error="; ".join(text for _, text in failures)
        )
    return _sync_run_succeed(run, **fields)


def period_ingest_finished(
    *,
    sync_run_id: int,
    ingest_run_id: int,
    account_id: int,
    billing_period_start: dt.date,
    source_version: str,
    is_final: bool,
) -> str:
    """After the ingest of a synced period: record the version when it loaded, announce the failure
    when it did not. Returns the ingest run's state."""
    ingest_run = IngestRun.objects.get(pk=ingest_run_id)
    if ingest_run.state in (IngestState.SUCCEEDED, IngestState.SUPERSEDED):
        # SUPERSEDED right after its own execution means "identical to the current version".
        period_version_record(
            account_id=account_id,
            billing_period_start=billing_period_start,
            source_version=source_version,
            is_final=is_final,
        )
    elif ingest_run.state == IngestState.FAILED:
        message = f"ingest run {ingest_run_id} of {billing_period_start:%Y-%m} failed: {ingest_run.error}"
        signals.sync_failed.send(
            sender=IngestRun,
            account_id=account_id,
            kind="ingest",
            error_kind=SyncErrorKind.INVALID,
            error=message[:2000],
        )
    return ingest_run.state


# --- connection test ---------------------------------------------------------------------------


def account_connection_test(*, account_id: int, trigger: str = "manual") -> tuple[SyncRun, ConnectionReport]:
    """Run the connector's checks and record them as a connection_test run (visible like a sync).
    Never raises for a failing check: the report says what failed."""
    run = sync_run_request(account_id=account_id, kind=SyncKind.CONNECTION_TEST, trigger=trigger)
    try:
        claimed = _sync_run_claim(run)
    except SyncBusyError:
        claimed = False
    if not claimed:
        SyncRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED, error="another connection test is running", finished_at=timezone.now()
        )
        raise SyncBusyError(f"a connection test of account {account_id} is already running")
    account = CloudAccount.objects.get(pk=account_id)
    try:
        report = billing_connector_for(account).test_connection()
    except ConnectorError as error:
        from attribution.connectors.base import ConnectionCheck

        report = ConnectionReport(
            checks=[ConnectionCheck(name="connector", ok=False, detail=str(error))],
            error_kind=error.error_kind,
        )
    details = {"checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks]}
    SyncRun.objects.filter(pk=run.pk).update(
        state=RunState.SUCCEEDED if report.ok else RunState.FAILED,
        error_kind="" if report.ok else (report.error_kind or SyncErrorKind.INVALID),
        error="" if report.ok else report.message[:10_000],
        progress_message=report.message[:300],
        details=details,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run, report


# --- usage -------------------------------------------------------------------------------------


def _usage_window(account: CloudAccount, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """From where the last usage sync stopped to a little before now: windows never overlap, so
    metrics are counted exactly once (the writer adds, it does not replace)."""
    end = now - USAGE_DELAY
    last = (
        SyncRun.objects.filter(account=account, kind=SyncKind.USAGE, state=RunState.SUCCEEDED)
        .exclude(details__window_end=None)
        .order_by("-finished_at")
        .values_list("details__window_end", flat=True)
        .first()
    )
    start = dt.datetime.fromisoformat(last) if last else end - USAGE_FIRST_WINDOW
    return max(start, end - USAGE_MAX_WINDOW), end


def account_usage_sync(
    *,
    account_id: int,
    trigger: str = "schedule",
    sync_run_id: int | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> SyncRun | None:
    """Fetch usage metrics from the provider into UsageRecord. Returns None when the provider has no
    usage connector or the run was already claimed."""
    from attribution.usage.services import UsageValidationError, usage_records_upsert

    account = CloudAccount.objects.get(pk=account_id)
    try:
        connector = usage_connector_for(account)
    except ConnectorError as error:
        logger.warning("account %s: %s", account.slug, error)
        connector = None
    if connector is None:
        return None
    run = _run_start(account_id=account_id, kind=SyncKind.USAGE, trigger=trigger, sync_run_id=sync_run_id)
    if run is None:
        return None
    if start is None or end is None:
        start, end = _usage_window(account, timezone.now())
    bucket_seconds = int(connector.settings.get("usage_bucket_seconds", 3600))
    # Only whole buckets: the window ends on a bucket boundary, and the next window starts there.
    epoch = int(end.timestamp())
    end = dt.datetime.fromtimestamp(epoch - epoch % bucket_seconds, tz=dt.UTC)
    epoch = int(start.timestamp())
    start = dt.datetime.fromtimestamp(epoch - epoch % bucket_seconds, tz=dt.UTC)
    _progress(run, f"fetching usage {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    try:
        records = list(connector.fetch_usage(start=start, end=end)) if end > start else []
    except ConnectorError as error:
        return _connector_failure(run, error)
    reporter = f"{account.provider}-metrics:{account.slug}"[:100]
    try:
        # The records and the window watermark commit together: a retry never adds twice.
        with transaction.atomic():
            written = usage_records_upsert(reporter=reporter, records=records)
            _sync_run_succeed(
                run,
                usage_records=written,
                details={
                    "window_start": start.isoformat(),
                    "window_end": end.isoformat(),
                    "reporter": reporter,
                },
            )
    except UsageValidationError as error:
        return sync_run_fail(sync_run_id=run.pk, error_kind=SyncErrorKind.INVALID, error=str(error))
    return run
