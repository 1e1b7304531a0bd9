"""Writes of the attribution layer. Ingestion: plan runs from files, execute one run, rebuild rollups.

A run is one version of (cloud account, billing period). `ingest_runs_create` reads the files'
billing periods and creates one pending run per period (a dump spanning months becomes several
runs); `ingest_run_execute` loads one run: parse -> COPY to staging -> swap in one transaction.

Same files twice: `ingest_runs_create` returns the current succeeded run instead of creating a
new one when its fingerprint (sha256 over the sorted file checksums) is the same; if two identical
runs were created before either finished, the later one is recorded as `superseded` by the
current run without touching any line item (a no-op), see `_noop_if_identical`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg import OperationalError as PsycopgOperationalError

from attribution.choices import COST_COLUMNS, IngestState, Provider
from attribution.ingest import loader
from attribution.ingest.batch import RowPathNeeded
from attribution.ingest.detect import format_detect, parser_get
from attribution.ingest.errors import IngestError, PeriodBusyError
from attribution.ingest.formats import ANY_PROVIDER
from attribution.ingest.formats.base import ParseContext, Rejected
from attribution.ingest.sources import LocalSource, RemoteOpener, Source, source_from_entry
from attribution.ingest.values import ZERO, next_month_start
from attribution.models import CloudAccount, IngestRun, RejectedRow, TagKey
from attribution.signals import period_ingested

logger = logging.getLogger(__name__)

DATASETS = ("actual", "amortized")
# Advisory lock namespaces. A run's execution lock is held by the session of the process executing
# it for as long as it runs: Postgres releases it when that session ends, so a `running` run whose
# lock anyone can take was left by a process that died (kill -9, OOM, a lost host).
_RUN_LOCK_CLASS = 7_311_001  # "this run is being executed"
# Held shared by every executing run, taken exclusively by the tag set collector (ingest/sweep.py):
# a run names tag sets before the rows that use them are visible in the line items.
TAG_SETS_LOCK = (7_311_002, 0)
# Executions of one run that may start; a file that kills its executor every time (out of memory)
# fails for good instead of being retried forever.
INGEST_MAX_ATTEMPTS = 3
# How long a new execution waits for the run's lock that someone else holds for a moment (the
# sweeper checking the run) before it concludes that another process is executing the run.
_RUN_LOCK_WAIT_SECONDS = 3.0


def _decimal_text(value: Decimal) -> str:
    return str(Decimal(value).quantize(ZERO))


def cloud_account_get_or_create(*, slug: str, provider: str | None = None, name: str = "") -> CloudAccount:
    account = CloudAccount.objects.filter(slug=slug).first()
    if account:
        if provider and account.provider != provider:
            raise IngestError(f"account {slug!r} is a {account.provider} account, not {provider}")
        return account
    if not provider:
        raise IngestError(f"account {slug!r} does not exist; pass --provider to create it")
    if provider not in Provider.values:
        raise IngestError(f"unknown provider {provider!r}; choose one of {', '.join(Provider.values)}")
    return CloudAccount.objects.create(slug=slug, provider=provider, name=name or slug)


def _dataset_of(source: Source, dataset: str) -> str:
    if source.dataset:
        return source.dataset
    if dataset:
        return dataset
    lowered = source.name.lower()
    return "amortized" if "amortized" in lowered else "actual"


@dataclass
class _PlannedFile:
    source: Source
    entry: dict
    periods: Counter = field(default_factory=Counter)


def ingest_runs_create(
    *,
    account: CloudAccount,
    paths: list[str | Path] | None = None,
    sources: list[Source] | None = None,
    source_format: str = "auto",
    dataset: str = "",
    billing_period: dt.date | None = None,
) -> list[IngestRun]:
    """Plan and create the pending runs for these inputs: one per billing period found in them.

    Inputs are local `paths` (the command line) and/or `sources` (sources.py: e.g. a connector's
    remote objects, streamed; nothing is copied to disk). `billing_period` (first day of the month)
    states the period the files must belong to: a row of another period is then an error. Without
    it, periods come from the rows; a file with no rows needs it (there is nothing else to tell the
    period from). With it, a remote source is not scanned for periods (only its head is read, to
    detect the format): the load rejects a row of another period.
    Returns the runs to execute; an unchanged period yields its current run (state succeeded).
    """
    inputs: list[Source] = [LocalSource(p) for p in paths or []] + list(sources or [])
    if not inputs:
        raise IngestError("no files given")
    if dataset and dataset not in DATASETS:
        raise IngestError(f"unknown dataset {dataset!r}; choose actual or amortized")
    for source in inputs:
        if isinstance(source, LocalSource) and not source.path.is_file():
            raise IngestError("no such file", path=source.name)
    if source_format in ("", "auto"):
        parsers = {format_detect(source) for source in inputs}
        if len(parsers) > 1:
            names = ", ".join(sorted(p.name for p in parsers))
            raise IngestError(f"the files are in different formats ({names}); ingest them separately")
        parser_class = parsers.pop()
    else:
        parser_class = parser_get(source_format)
    if parser_class.provider not in (ANY_PROVIDER, account.provider):
        raise IngestError(
            f"{parser_class.label} files belong to a {parser_class.provider} account; "
            f"{account.slug!r} is {account.provider}"
        )

    planned: list[_PlannedFile] = []
    for source in inputs:
        if billing_period is not None and not source.is_local:
            periods: Counter = Counter()  # The stated period; the load checks every row against it.
        else:
            context = ParseContext(path=source.name, source=source, default_currency=account.billing_currency)
            periods = _periods_plan(parser_class, context)
        if billing_period is not None:
            strays = sorted(p for p in periods if p is not None and p != billing_period)
            if strays:
                raise IngestError(
                    f"rows of billing period {strays[0]:%Y-%m} in a delivery for {billing_period:%Y-%m}; "
                    "a run's files must all belong to one period",
                    path=source.name,
                )
        entry = source.entry()
        entry["dataset"] = _dataset_of(source, dataset) if parser_class.provider == Provider.AZURE else ""
        planned.append(_PlannedFile(source=source, entry=entry, periods=periods))

    all_periods = sorted({p for f in planned for p in f.periods if p is not None})
    if billing_period is not None and billing_period not in all_periods:
        all_periods = [billing_period, *all_periods]
    if not all_periods:
        unplaced = sum(f.periods[None] for f in planned)
        if unplaced:
            raise IngestError(
                f"the billing period of none of the {unplaced} rows could be read; "
                "pass the period explicitly (--period YYYY-MM)",
                path=planned[0].entry["path"],
            )
        return []  # No rows and no stated period: nothing to replace.

    runs: list[IngestRun] = []
    for period in all_periods:
        files = []
        for planned_file in planned:
            placed = sorted(p for p in planned_file.periods if p is not None)
            # Rows whose period cannot be read are rejected by the run of the file's first period.
            owner = placed[0] if placed else all_periods[0]
            if period in planned_file.periods or owner == period or not planned_file.periods:
                files.append(
                    {
                        **planned_file.entry,
                        "owns_unplaced_rows": owner == period,
                        "stated_period": billing_period is not None,
                    }
                )
        fingerprint = _run_files_fingerprint(files)
        current = IngestRun.objects.filter(
            account=account, billing_period_start=period, state=IngestState.SUCCEEDED
        ).first()
        if current and current.fingerprint == fingerprint:
            runs.append(current)
            continue
        runs.append(
            IngestRun.objects.create(
                account=account,
                billing_period_start=period,
                billing_period_end=next_month_start(period),
                source_format=parser_class.name,
                source_files=files,
                fingerprint=fingerprint,
                bytes_total=sum(f["bytes"] for f in files),
            )
        )
    return runs


def _periods_plan(parser_class, context: ParseContext) -> Counter:
    """Periods of a file's rows: from its first rows when the parser can (the load then finds any
    other period and plans a follow-up run for it, see `_followups_create`), else a full scan."""
    if parser_class.batch_capable:
        try:
            periods = parser_class().head_periods(context)
        except RowPathNeeded:
            periods = None
        if periods is not None:
            return periods
    return parser_class().scan_periods(context)


def _file_identity(entry: dict) -> str:
    """A local file is its content (the same bytes under another path are the same input); a remote
    object is its uri at a version (a version names content only within one object)."""
    if entry.get("uri"):
        return f"{entry['uri']}\t{entry['checksum']}"
    return entry["sha256"]


def _run_files_fingerprint(files: list[dict]) -> str:
    return hashlib.sha256("\n".join(sorted(_file_identity(f) for f in files)).encode()).hexdigest()


def _followups_create(run: IngestRun, found: dict[dt.date, set[int]]) -> list[int]:
    """Pending runs for periods the load found in files planned from their first rows only, unless
    a run of that period already reads those files. Called inside the swap transaction, so the
    follow-ups exist exactly when this run succeeds."""
    created = []
    for period, file_indexes in sorted(found.items()):
        files = [
            {**run.source_files[i], "owns_unplaced_rows": False, "discovered_by": run.pk}
            for i in sorted(file_indexes)
        ]
        first = files[0]
        same_file = (
            {"uri": first["uri"], "version": first["version"]}
            if first.get("uri")
            else {"sha256": first["sha256"]}
        )
        covered = IngestRun.objects.filter(
            account_id=run.account_id,
            billing_period_start=period,
            source_files__contains=[same_file],
            state__in=(IngestState.PENDING, IngestState.RUNNING, IngestState.SUCCEEDED),
        ).exists()
        if covered:
            continue
        followup = IngestRun.objects.create(
            account_id=run.account_id,
            billing_period_start=period,
            billing_period_end=next_month_start(period),
            source_format=run.source_format,
            source_files=files,
            fingerprint=_run_files_fingerprint(files),
            bytes_total=sum(f["bytes"] for f in files),
        )
        created.append(followup.pk)
    return created


def ingest_run_followups(*, run: IngestRun) -> list[IngestRun]:
    """Pending runs planned by `run`'s load for other periods found in its files; execute them too."""
    return list(
        IngestRun.objects.filter(
            account_id=run.account_id,
            state=IngestState.PENDING,
            source_files__contains=[{"discovered_by": run.pk}],
        ).order_by("billing_period_start")
    )


def _run_lock_try(run_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_RUN_LOCK_CLASS, run_id % 2_147_483_647])
        return bool(cursor.fetchone()[0])


def _run_lock_wait(run_id: int) -> bool:
    """The run's lock, waiting a moment for a holder that only checks the run (the sweeper)."""
    deadline = time.monotonic() + _RUN_LOCK_WAIT_SECONDS
    while not _run_lock_try(run_id):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _session_lock_release(function: str, keys: tuple[int, int]) -> None:
    """Release a session-level advisory lock. If the session is gone (a dropped connection), so is
    the lock; the error that dropped it is the one to report, not this one."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", list(keys))
    except (OperationalError, InterfaceError) as error:
        logger.warning("advisory lock %s went with its session: %s", keys, error)


def _run_lock_release(run_id: int) -> None:
    _session_lock_release("pg_advisory_unlock", (_RUN_LOCK_CLASS, run_id % 2_147_483_647))


@contextmanager
def ingest_run_locked(*, run_id: int) -> Iterator[bool]:
    """Hold the run's execution lock for a look at the run, if no one else holds it: yields
    whether we got it. While held, no execution of the run can start (they wait a moment)."""
    locked = _run_lock_try(run_id)
    try:
        yield locked
    finally:
        if locked:
            _run_lock_release(run_id)


def _run_lock_held(run_id: int) -> bool:
    """Whether this session still holds the run's lock: false once the session was replaced (a
    dropped connection), when another process may already have declared the run dead."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 2)""",
            [_RUN_LOCK_CLASS, run_id % 2_147_483_647],
        )
        return bool(cursor.fetchone()[0])


def executor_describe(kind: str) -> str:
    """`kind` ("worker", "command", "process") and where: the run's `executor`."""
    return f"{kind} {socket.gethostname()} pid {os.getpid()}"[:200]


def ingest_run_reap(*, run_id: int, detected_by: str, retry_worker_runs: bool = False) -> str | None:
    """Declare a dead run dead: a `running` run whose execution lock no live session holds.

    Its partition and staged rows are dropped and the period freed. It becomes `failed` with the
    reason, or `pending` again when `retry_worker_runs` and a worker was executing it (fewer than
    INGEST_MAX_ATTEMPTS attempts, no newer run of the period): the caller enqueues it. Returns the
    new state, None when the run is alive or not running."""
    if not _run_lock_try(run_id):
        return None  # Its executor's session is alive.
    try:
        run = IngestRun.objects.filter(pk=run_id, state=IngestState.RUNNING).first()
        if run is None:
            return None
        newer = (
            IngestRun.objects.filter(
                account_id=run.account_id, billing_period_start=run.billing_period_start, pk__gt=run.pk
            )
            .exclude(state=IngestState.FAILED)
            .exists()
        )
        retry = (
            retry_worker_runs
            and run.executor.startswith("worker")
            and run.attempts < INGEST_MAX_ATTEMPTS
            and not newer
        )
        now = timezone.now()
        error = (
            f"abandoned: attempt {run.attempts} by {run.executor or 'an unknown process'} died "
            f"(its database session ended); detected by {detected_by} at {now:%Y-%m-%d %H:%M:%S} UTC"
        )
        if retry:
            error += f"; retried (attempt {run.attempts + 1} of {INGEST_MAX_ATTEMPTS})"
        state = IngestState.PENDING if retry else IngestState.FAILED
        # The state first: the period is free from here on; what follows only frees space (the
        # sweeper drops a table left by a reaper that dies in between).
        updated = IngestRun.objects.filter(pk=run_id, state=IngestState.RUNNING).update(
            state=state, error=error, finished_at=None if retry else now
        )
        if not updated:
            return None
        logger.warning("ingest run %s %s", run_id, error)
        loader.staging_clear(run_id=run_id)
        loader.partition_drop(run_id=run_id)
        RejectedRow.objects.filter(ingest_run_id=run_id).delete()
        return state
    finally:
        _run_lock_release(run_id)


def _period_dead_runs_reap(run_id: int) -> bool:
    """Reap the other runs of `run_id`'s period that are `running` but dead; True if any was."""
    period = IngestRun.objects.filter(pk=run_id).values("account_id", "billing_period_start").first()
    others = IngestRun.objects.filter(**period, state=IngestState.RUNNING).exclude(pk=run_id)
    reaped = [
        ingest_run_reap(run_id=other, detected_by=f"run {run_id}")
        for other in others.values_list("pk", flat=True)
    ]
    return any(reaped)


def _run_claim(run_id: int, executor: str) -> bool:
    """pending -> running, only if exactly one row changes. A run left `running` by an executor
    that died is claimed again: we hold its execution lock, so nobody else is executing it. A run
    of the same period that is `running` but dead is reaped first (`ingest_run_reap`); a live one
    makes this PeriodBusyError."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                claimed = IngestRun.objects.filter(
                    pk=run_id, state__in=(IngestState.PENDING, IngestState.RUNNING)
                ).update(
                    state=IngestState.RUNNING,
                    started_at=timezone.now(),
                    error="",
                    executor=executor,
                    attempts=F("attempts") + 1,
                )
            return claimed == 1
        except IntegrityError:
            # ingestrun_one_running_per_period: another version of this period is running.
            if attempt == 1 and _period_dead_runs_reap(run_id):
                continue
            period = IngestRun.objects.filter(pk=run_id).values("account_id", "billing_period_start").first()
            live = IngestRun.objects.filter(**period, state=IngestState.RUNNING).first()
            who = f"run {live.pk} ({live.executor or 'unknown executor'})" if live else "another run"
            raise PeriodBusyError(f"{who} is loading this period; run {run_id} stays pending") from None
    return False


def _run_attempts_exhausted(run_id: int) -> bool:
    """A run whose executors died INGEST_MAX_ATTEMPTS times fails instead of starting again."""
    run = IngestRun.objects.filter(pk=run_id).values("state", "attempts", "executor").first()
    if run is None or run["state"] != IngestState.RUNNING or run["attempts"] < INGEST_MAX_ATTEMPTS:
        return False
    IngestRun.objects.filter(pk=run_id, state=IngestState.RUNNING).update(
        state=IngestState.FAILED,
        error=(
            f"abandoned: all {run['attempts']} attempts died before finishing (last by {run['executor']}); "
            "not retried again. Look for what kills the worker (memory, time limit) and rerun."
        ),
        finished_at=timezone.now(),
    )
    loader.staging_clear(run_id=run_id)
    loader.partition_drop(run_id=run_id)
    RejectedRow.objects.filter(ingest_run_id=run_id).delete()
    return True


def ingest_run_cancel(*, run_id: int, reason: str) -> bool:
    """A pending run that will not be executed (its caller gives up) becomes failed with `reason`,
    so no pending run is left behind. False if it is not pending."""
    return bool(
        IngestRun.objects.filter(pk=run_id, state=IngestState.PENDING).update(
            state=IngestState.FAILED, error=reason[:10_000], finished_at=timezone.now()
        )
    )


def _noop_if_identical(run: IngestRun) -> bool:
    current = (
        IngestRun.objects.filter(
            account_id=run.account_id,
            billing_period_start=run.billing_period_start,
            state=IngestState.SUCCEEDED,
        )
        .exclude(pk=run.pk)
        .first()
    )
    if current is None or current.fingerprint != run.fingerprint:
        return False
    IngestRun.objects.filter(pk=run.pk).update(
        state=IngestState.SUPERSEDED,
        superseded_by=current,
        rows_in_source=current.rows_in_source,
        rows_loaded=0,
        rows_rejected=current.rows_rejected,
        source_sums=current.source_sums,
        database_sums={},
        finished_at=timezone.now(),
    )
    return True


ProgressCallback = Callable[[IngestRun], None]


def _remote_opener(account: CloudAccount) -> RemoteOpener:
    """Opens a run's remote sources through the account's billing connector, created on first use
    (a run of local files never loads the connectors)."""
    opener: list[RemoteOpener] = []

    def remote_open(uri: str, version: str, seekable: bool) -> IO[bytes]:
        if not opener:
            from attribution.connectors import remote_opener

            opener.append(remote_opener(account))
        return opener[0](uri, version, seekable)

    return remote_open


def ingest_run_execute(
    *,
    run_id: int,
    progress: ProgressCallback | None = None,
    remote_open: RemoteOpener | None = None,
    executor: str = "",
) -> IngestRun:
    """Load one run. Raises IngestError (bad input) after recording the run as failed; the
    period's previous version stays visible and whole whatever happens. Remote sources are opened
    with `remote_open` (default: the account's billing connector, see attribution.connectors).
    `executor` says who runs it (`executor_describe`); a worker's run is retried if it dies.

    Liveness: the run's execution lock is held by this session from before the claim until the
    run is no longer `running`, so a `running` run without a holder is dead (`ingest_run_reap`)."""
    if not _run_lock_wait(run_id):
        logger.info("ingest run %s is being executed elsewhere", run_id)
        return IngestRun.objects.get(pk=run_id)
    try:
        if _run_attempts_exhausted(run_id):
            return IngestRun.objects.get(pk=run_id)
        if not _run_claim(run_id, executor or executor_describe("process")):
            return IngestRun.objects.get(pk=run_id)  # Already finished: a redelivered task.
        run = IngestRun.objects.select_related("account").get(pk=run_id)
        if _noop_if_identical(run):
            run.refresh_from_db()
            return run
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock_shared(%s, %s)", TAG_SETS_LOCK)
        try:
            _run_load(run, progress, remote_open or _remote_opener(run.account))
        except Exception as error:
            _run_fail(run, error)
            raise
        finally:
            _session_lock_release("pg_advisory_unlock_shared", TAG_SETS_LOCK)
        run.refresh_from_db()
        return run
    finally:
        _run_lock_release(run_id)


def _run_fail(run: IngestRun, error: Exception) -> None:
    # A dropped database connection, or a source that could not be read for now (throttling, 5xx:
    # errors that say `transient`, e.g. a connector's) is retried.
    transient = isinstance(error, OperationalError | PsycopgOperationalError) or bool(
        getattr(error, "transient", False)
    )
    try:
        loader.staging_clear(run_id=run.pk)
        loader.partition_drop(run_id=run.pk)
        if transient:
            RejectedRow.objects.filter(ingest_run_id=run.pk).delete()
        IngestRun.objects.filter(pk=run.pk, state=IngestState.RUNNING).update(
            # A transient database error is retried: the run goes back to pending.
            state=IngestState.PENDING if transient else IngestState.FAILED,
            error=str(error)[:10_000],
            finished_at=None if transient else timezone.now(),
        )
    except Exception:  # The database may be what failed; the retry cleans up.
        logger.exception("could not record the failure of ingest run %s", run.pk)


_DONE = object()


def _in_background(items: Iterator, depth: int = 2) -> Iterator:
    """Produce `items` in a worker thread, `depth` ahead: while Postgres ingests one COPY, the next
    batch is parsed and serialised (pyarrow releases the GIL). The worker never touches the
    database. Its exceptions are raised here."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        handoff.put((item, None), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put((_DONE, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            handoff.put((None, error))

    worker = threading.Thread(target=work, name="ingest-batches", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


class _RunLoader:
    """Streams a run's files into the line items (or staging for paired Azure datasets),
    counting and summing every source row of the run's period on the way."""

    PROGRESS_SECONDS = 1.0  # how often the batch path records progress

    def __init__(
        self,
        run: IngestRun,
        progress: ProgressCallback | None,
        *,
        batches: bool,
        remote_open: RemoteOpener | None = None,
    ) -> None:
        self.run = run
        self.sources = [source_from_entry(entry, remote_open=remote_open) for entry in run.source_files]
        self.account = run.account
        self.progress = progress
        self.parser_class = parser_get(run.source_format)
        datasets = {f.get("dataset", "") for f in run.source_files}
        self.paired = {"actual", "amortized"} <= datasets
        self.batches = batches and self.parser_class.batch_capable and not self.paired
        self.resolver = loader.DimensionResolver(account_id=run.account_id)
        self.tag_sets = loader.TagSets()
        self.chunk_rows: int = settings.INGEST_CHUNK_ROWS
        self.source_sums = {column: ZERO for column in COST_COLUMNS}
        self.rejected_sums = {column: ZERO for column in COST_COLUMNS}
        self.rows_in_source = 0
        self.rows_rejected = 0
        self.bytes_done = 0
        self.tag_keys: dict[str, str] = {}
        self.rejected: list[RejectedRow] = []
        self.exhausted = False
        # Other billing periods met in the files: period -> indexes of the files holding them.
        self.other_periods: dict[dt.date, set[int]] = {}

    def progress_record(self, context: ParseContext) -> None:
        if self.rejected:
            RejectedRow.objects.bulk_create(self.rejected)
            self.rejected = []
        done = self.bytes_done + (context.counter.bytes_read if context.counter else 0)
        IngestRun.objects.filter(pk=self.run.pk).update(
            rows_processed=self.rows_in_source, bytes_processed=done
        )
        if self.progress:
            self.run.rows_processed, self.run.bytes_processed = self.rows_in_source, done
            self.progress(self.run)

    def chunk_rows_take(self, items, entry: dict, file_index: int):
        """Yield up to chunk_rows accepted rows of this run's period straight into COPY (no list is
        built, so memory stays flat); count, sum and keep rejections on the way."""
        run = self.run
        taken = 0
        for item in items:
            if isinstance(item, Rejected):
                belongs = item.billing_period_start == run.billing_period_start or (
                    item.billing_period_start is None and entry.get("owns_unplaced_rows")
                )
                if not belongs:
                    if item.billing_period_start is not None:
                        self.other_periods.setdefault(item.billing_period_start, set()).add(file_index)
                    continue
                self.rows_in_source += 1
                self.rows_rejected += 1
                for column, amount in item.amounts.items():
                    self.source_sums[column] += amount
                    self.rejected_sums[column] += amount
                self.rejected.append(
                    RejectedRow(
                        ingest_run_id=run.pk,
                        file_path=entry["path"],
                        line_number=item.line,
                        raw_text=item.raw_text[:100_000],
                        reason=item.reason,
                    )
                )
                if len(self.rejected) >= self.chunk_rows:
                    return  # Bounded memory when a whole file is rejected, too.
                continue
            if item["billing_period_start"] != run.billing_period_start:
                # Another period's row: that period's run loads it.
                self.other_periods.setdefault(item["billing_period_start"], set()).add(file_index)
                continue
            self.rows_in_source += 1
            for column in COST_COLUMNS:
                value = item.get(column)
                if value is not None:
                    self.source_sums[column] += value
            item["source_file"] = file_index
            yield item
            taken += 1
            if taken >= self.chunk_rows:
                return
        self.exhausted = True

    def rows_load(self, items, entry: dict, file_index: int, context: ParseContext) -> None:
        self.exhausted = False
        while not self.exhausted:
            rows = self.chunk_rows_take(items, entry, file_index)
            copy_rows = loader.staging_copy if self.paired else loader.line_items_copy_rows
            copy_rows(
                run_id=self.run.pk,
                account_id=self.account.pk,
                rows=rows,
                resolver=self.resolver,
                tag_sets=self.tag_sets,
            )
            self.progress_record(context)

    def batches_prepare(
        self, parser, context: ParseContext, file_index: int, reparse: list
    ) -> Iterator[tuple[pa.Buffer | bytes, list]]:
        """Worker thread: the batch path's blocks, filtered to the run's period, counted, summed and
        serialised for COPY, each with the tag sets it names first. Touches no database."""
        period = pa.scalar(self.run.billing_period_start, pa.date32())
        for batch in parser.parse_batches(context):
            reparse.append(batch.reparse_lines)
            table = batch.table
            if table is None:
                continue
            mine = pc.equal(table.column("billing_period_start"), period)
            if not pc.all(mine).as_py():
                for other in pc.unique(
                    table.filter(pc.invert(mine)).column("billing_period_start")
                ).to_pylist():
                    self.other_periods.setdefault(other, set()).add(file_index)
                table = table.filter(mine)
            if not table.num_rows:
                yield b"", []
                continue
            self.rows_in_source += table.num_rows
            for column in COST_COLUMNS:
                total = pc.sum(table.column(column)).as_py()
                if total is not None:
                    self.source_sums[column] += total
            data = loader.batch_copy_data(
                run_id=self.run.pk,
                account_id=self.account.pk,
                table=table,
                resolver=self.resolver,
                tag_sets=self.tag_sets,
            )
            yield data, self.tag_sets.take_pending()

    def batches_copy(self, batches: Iterator[tuple[pa.Buffer | bytes, list]], context: ParseContext) -> None:
        """COPY the prepared batches, several to a statement. A statement ends (so that other
        queries can run) to save tag sets a batch names for the first time, and every
        PROGRESS_SECONDS to record progress."""
        with ExitStack() as open_copy:
            copy = None
            last_progress = time.monotonic()
            for data, tag_sets in batches:
                progress_due = time.monotonic() - last_progress >= self.PROGRESS_SECONDS
                if copy is not None and (tag_sets or progress_due):
                    open_copy.close()
                    copy = None
                loader.tag_sets_save(tag_sets)
                if progress_due:
                    self.progress_record(context)
                    last_progress = time.monotonic()
                if data:
                    if copy is None:
                        copy = open_copy.enter_context(loader.line_items_copy(run_id=self.run.pk))
                    copy.write(data)
        self.progress_record(context)

    def file_load(self, file_index: int, entry: dict) -> None:
        source = self.sources[file_index]
        dataset = entry.get("dataset", "")
        context = ParseContext(
            path=entry["path"],
            source=source,
            dataset=f"{dataset}_paired" if self.paired else dataset,
            default_currency=self.account.billing_currency,
        )
        parser = self.parser_class()
        if self.batches:
            reparse: list = []
            self.batches_copy(
                _in_background(self.batches_prepare(parser, context, file_index, reparse)), context
            )
            lines = set(np.concatenate(reparse).tolist()) if reparse else set()
            if lines:
                # Rows the vectorised code left: the row path loads or rejects them, as always.
                second = ParseContext(
                    path=entry["path"], source=source, default_currency=self.account.billing_currency
                )
                self.rows_load(iter(parser.parse_lines(second, lines)), entry, file_index, second)
                self.tag_keys.update(second.tag_keys)
        else:
            self.rows_load(iter(parser.parse(context)), entry, file_index, context)
        if context.counter is not None:
            self.bytes_done += context.counter.bytes_read
            # A local file is re-hashed; a remote object was read at its planned version.
            if not source.unchanged(context.counter, reread=self.batches):
                raise IngestError(
                    "the file changed after the run was planned; ingest it again", path=entry["path"]
                )
        self.tag_keys.update(context.tag_keys)

    def files_load(self) -> None:
        for file_index, entry in enumerate(self.run.source_files):
            self.file_load(file_index, entry)
        stated = [e for e in self.run.source_files if e.get("stated_period")]
        if stated and self.other_periods:
            other = min(self.other_periods)
            stated_period = self.run.billing_period_start
            raise IngestError(
                f"rows of billing period {other:%Y-%m} in a delivery for {stated_period:%Y-%m}; "
                "a run's files must all belong to one period",
                path=self.run.source_files[min(self.other_periods[other])]["path"],
            )


def _run_load(run: IngestRun, progress: ProgressCallback | None, remote_open: RemoteOpener) -> None:
    account = run.account
    period = run.billing_period_start
    # Rows of this period's non-current runs (this one's earlier attempt, a crashed swap's
    # superseded version) are invisible; drop them before writing more.
    loader.staging_clear(run_id=run.pk)
    loader.line_items_discard(account_id=account.pk, billing_period_start=period)
    RejectedRow.objects.filter(ingest_run_id=run.pk).delete()
    loader.partition_create(run_id=run.pk)
    state = _RunLoader(run, progress, batches=True, remote_open=remote_open)
    try:
        state.files_load()
    except RowPathNeeded as reason:
        # A file the batch path cannot number line by line: redo the whole run row by row.
        logger.info("ingest run %s: row path (%s)", run.pk, reason)
        loader.partition_create(run_id=run.pk)
        RejectedRow.objects.filter(ingest_run_id=run.pk).delete()
        state = _RunLoader(run, progress, batches=False, remote_open=remote_open)
        state.files_load()

    rows_merged, merged_sums = 0, {}
    if state.paired:
        rows_merged, merged_sums = loader.staging_pair_datasets(run_id=run.pk)
        loader.staging_move(run_id=run.pk)
    loaded = loader.line_items_summary(run_id=run.pk)
    loader.partition_attach(run_id=run.pk)

    with transaction.atomic():
        loader.period_lock(account_id=account.pk, billing_period_start=period)
        if IngestRun.objects.filter(pk=run.pk, state=IngestState.RUNNING).count() != 1:
            raise IngestError(f"run {run.pk} is no longer running; it was not swapped in")
        if not _run_lock_held(run.pk):
            # Our session was replaced: another process may have declared this run dead.
            raise OperationalError(f"run {run.pk} lost its execution lock; it was not swapped in")
        # Old version out before the new one is marked current: ingestrun_one_current_per_period.
        # From here on, readers see the new rows and not the old ones (module docstring of loader).
        IngestRun.objects.filter(
            account_id=account.pk, billing_period_start=period, state=IngestState.SUCCEEDED
        ).update(state=IngestState.SUPERSEDED, superseded_by=run.pk)
        sums = {column: _decimal_text(state.source_sums[column]) for column in COST_COLUMNS}
        sums.update(
            {f"rejected_{column}": _decimal_text(state.rejected_sums[column]) for column in COST_COLUMNS}
        )
        if state.paired:
            sums["rows_merged"] = str(rows_merged)
            sums.update({f"merged_{column}": _decimal_text(amount) for column, amount in merged_sums.items()})
        IngestRun.objects.filter(pk=run.pk).update(
            state=IngestState.SUCCEEDED,
            rows_in_source=state.rows_in_source,
            rows_loaded=loaded.rows,
            rows_rejected=state.rows_rejected,
            rows_processed=state.rows_in_source,
            bytes_processed=state.bytes_done,
            source_sums=sums,
            database_sums={column: _decimal_text(loaded.sums[column]) for column in COST_COLUMNS},
            charge_period_first=loaded.charge_period_first,
            charge_period_last=loaded.charge_period_last,
            finished_at=timezone.now(),
        )
        _cells, days = loader.daily_cost_rebuild(
            account_id=account.pk, billing_period_start=period, loaded_run=run.pk
        )
        if state.tag_keys:
            TagKey.objects.bulk_create(
                [
                    TagKey(
                        account=account,
                        key=key[:512],
                        normalized_key=normalized[:512],
                        last_seen_run_id=run.pk,
                    )
                    for key, normalized in state.tag_keys.items()
                ],
                update_conflicts=True,
                unique_fields=["account", "key"],
                update_fields=["normalized_key", "last_seen_run"],
            )
        if state.other_periods:
            _followups_create(run, state.other_periods)
        period_ingested.send(
            sender=IngestRun, account_id=account.pk, billing_period_start=period, run_id=run.pk, days=days
        )
    # The superseded version is invisible now; free its rows (redone by the next run if we die here).
    loader.line_items_discard(account_id=account.pk, billing_period_start=period)


def daily_cost_rebuild(*, account_id: int, billing_period_start: dt.date) -> int:
    """Rebuild DailyCost for one (account, billing period) in one transaction."""
    with transaction.atomic():
        loader.period_lock(account_id=account_id, billing_period_start=billing_period_start)
        cells, _days = loader.daily_cost_rebuild(
            account_id=account_id, billing_period_start=billing_period_start
        )
        return cells
