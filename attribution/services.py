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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from psycopg import OperationalError as PsycopgOperationalError

from attribution.choices import COST_COLUMNS, IngestState, Provider
from attribution.ingest import loader
from attribution.ingest.detect import format_detect, parser_get
from attribution.ingest.errors import IngestError, PeriodBusyError
from attribution.ingest.formats.base import ParseContext, Rejected
from attribution.ingest.sources import file_sha256
from attribution.ingest.values import ZERO, next_month_start
from attribution.models import CloudAccount, IngestRun, RejectedRow, TagKey

logger = logging.getLogger(__name__)

DATASETS = ("actual", "amortized")
_RUN_LOCK_CLASS = 7_311_001  # advisory lock namespace: "this run is being executed"


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


def _dataset_of(path: Path, dataset: str) -> str:
    if dataset:
        return dataset
    lowered = str(path).lower()
    return "amortized" if "amortized" in lowered else "actual"


@dataclass
class _PlannedFile:
    path: str
    sha256: str
    bytes: int
    dataset: str
    periods: Counter = field(default_factory=Counter)


def ingest_runs_create(
    *,
    account: CloudAccount,
    paths: list[str | Path],
    source_format: str = "auto",
    dataset: str = "",
    billing_period: dt.date | None = None,
) -> list[IngestRun]:
    """Plan and create the pending runs for these files: one per billing period found in them.

    `billing_period` (first day of the month) states the period the files must belong to: a row of
    another period is then an error. Without it, periods come from the rows; a file with no rows
    needs it (there is nothing else to tell the period from).
    Returns the runs to execute; an unchanged period yields its current run (state succeeded).
    """
    if not paths:
        raise IngestError("no files given")
    if dataset and dataset not in DATASETS:
        raise IngestError(f"unknown dataset {dataset!r}; choose actual or amortized")
    resolved = [Path(p) for p in paths]
    for path in resolved:
        if not path.is_file():
            raise IngestError("no such file", path=str(path))
    if source_format in ("", "auto"):
        parsers = {format_detect(path) for path in resolved}
        if len(parsers) > 1:
            names = ", ".join(sorted(p.name for p in parsers))
            raise IngestError(f"the files are in different formats ({names}); ingest them separately")
        parser_class = parsers.pop()
    else:
        parser_class = parser_get(source_format)
    if parser_class.provider != account.provider:
        raise IngestError(
            f"{parser_class.label} files belong to a {parser_class.provider} account; "
            f"{account.slug!r} is {account.provider}"
        )

    planned: list[_PlannedFile] = []
    for path in resolved:
        context = ParseContext(path=str(path), default_currency=account.billing_currency)
        periods = parser_class().scan_periods(context)
        if billing_period is not None:
            strays = sorted(p for p in periods if p is not None and p != billing_period)
            if strays:
                raise IngestError(
                    f"rows of billing period {strays[0]:%Y-%m} in a delivery for {billing_period:%Y-%m}; "
                    "a run's files must all belong to one period",
                    path=str(path),
                )
        planned.append(
            _PlannedFile(
                path=str(path.resolve()),
                sha256=file_sha256(path),
                bytes=path.stat().st_size,
                dataset=_dataset_of(path, dataset) if parser_class.provider == Provider.AZURE else "",
                periods=periods,
            )
        )

    all_periods = sorted({p for f in planned for p in f.periods if p is not None})
    if billing_period is not None and billing_period not in all_periods:
        all_periods = [billing_period, *all_periods]
    if not all_periods:
        unplaced = sum(f.periods[None] for f in planned)
        if unplaced:
            raise IngestError(
                f"the billing period of none of the {unplaced} rows could be read; "
                "pass the period explicitly (--period YYYY-MM)",
                path=planned[0].path,
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
                        "path": planned_file.path,
                        "sha256": planned_file.sha256,
                        "bytes": planned_file.bytes,
                        "dataset": planned_file.dataset,
                        "owns_unplaced_rows": owner == period,
                    }
                )
        fingerprint = hashlib.sha256("\n".join(sorted(f["sha256"] for f in files)).encode()).hexdigest()
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


def _run_lock_try(run_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_RUN_LOCK_CLASS, run_id % 2_147_483_647])
        return bool(cursor.fetchone()[0])


def _run_lock_release(run_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_RUN_LOCK_CLASS, run_id % 2_147_483_647])


def _run_claim(run_id: int) -> bool:
    """pending -> running, only if exactly one row changes. A run left `running` by a worker that
    died is claimed again: we hold its execution lock, so nobody else is executing it."""
    try:
        with transaction.atomic():
            claimed = IngestRun.objects.filter(
                pk=run_id, state__in=(IngestState.PENDING, IngestState.RUNNING)
            ).update(state=IngestState.RUNNING, started_at=timezone.now(), error="")
    except IntegrityError:
        # ingestrun_one_running_per_period: another version of this period is loading.
        raise PeriodBusyError(f"another run of the same period is running; run {run_id} stays pending")
    return claimed == 1


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


def ingest_run_execute(*, run_id: int, progress: ProgressCallback | None = None) -> IngestRun:
    """Load one run. Raises IngestError (bad input) after recording the run as failed; the
    period's previous version stays visible and whole whatever happens."""
    if not _run_lock_try(run_id):
        logger.info("ingest run %s is being executed elsewhere", run_id)
        return IngestRun.objects.get(pk=run_id)
    try:
        if not _run_claim(run_id):
            return IngestRun.objects.get(pk=run_id)  # Already finished: a redelivered task.
        run = IngestRun.objects.select_related("account").get(pk=run_id)
        if _noop_if_identical(run):
            run.refresh_from_db()
            return run
        try:
            _run_load(run, progress)
        except Exception as error:
            _run_fail(run, error)
            raise
        run.refresh_from_db()
        return run
    finally:
        _run_lock_release(run_id)


def _run_fail(run: IngestRun, error: Exception) -> None:
    transient = isinstance(error, OperationalError | PsycopgOperationalError)
    try:
        loader.staging_clear(run_id=run.pk)
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


class _RunLoader:
    """Streams a run's files into staging, counting and summing every source row on the way."""

    def __init__(self, run: IngestRun, progress: ProgressCallback | None) -> None:
        self.run = run
        self.account = run.account
        self.progress = progress
        self.parser_class = parser_get(run.source_format)
        datasets = {f.get("dataset", "") for f in run.source_files}
        self.paired = {"actual", "amortized"} <= datasets
        self.chunk_rows: int = settings.INGEST_CHUNK_ROWS
        self.source_sums = {column: ZERO for column in COST_COLUMNS}
        self.rejected_sums = {column: ZERO for column in COST_COLUMNS}
        self.rows_in_source = 0
        self.rows_rejected = 0
        self.bytes_done = 0
        self.tag_keys: dict[str, str] = {}
        self.rejected: list[RejectedRow] = []
        self.exhausted = False

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
                continue  # Another period's row: that period's run loads it.
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

    def file_load(self, file_index: int, entry: dict) -> None:
        dataset = entry.get("dataset", "")
        context = ParseContext(
            path=entry["path"],
            dataset=f"{dataset}_paired" if self.paired else dataset,
            default_currency=self.account.billing_currency,
        )
        items = iter(self.parser_class().parse(context))
        self.exhausted = False
        while not self.exhausted:
            loader.staging_copy(
                run_id=self.run.pk,
                account_id=self.account.pk,
                rows=self.chunk_rows_take(items, entry, file_index),
            )
            self.progress_record(context)
        if context.counter is not None:
            self.bytes_done += context.counter.bytes_read
            if context.counter.sha256.hexdigest() != entry["sha256"]:
                raise IngestError(
                    "the file changed after the run was planned; ingest it again", path=entry["path"]
                )
        self.tag_keys.update(context.tag_keys)


def _run_load(run: IngestRun, progress: ProgressCallback | None) -> None:
    account = run.account
    loader.staging_clear(run_id=run.pk)
    RejectedRow.objects.filter(ingest_run_id=run.pk).delete()
    state = _RunLoader(run, progress)
    for file_index, entry in enumerate(run.source_files):
        state.file_load(file_index, entry)

    loader.staging_resolve_dimensions(run_id=run.pk)
    rows_merged = loader.staging_pair_datasets(run_id=run.pk) if state.paired else 0

    with transaction.atomic():
        loader.period_lock(account_id=account.pk, billing_period_start=run.billing_period_start)
        if IngestRun.objects.filter(pk=run.pk, state=IngestState.RUNNING).count() != 1:
            raise IngestError(f"run {run.pk} is no longer running; it was not swapped in")
        loader.line_items_swap(
            run_id=run.pk, account_id=account.pk, billing_period_start=run.billing_period_start
        )
        rows_loaded, database_sums = loader.line_item_sums(run_id=run.pk)
        # Old version out before the new one is marked current: ingestrun_one_current_per_period.
        IngestRun.objects.filter(
            account_id=account.pk, billing_period_start=run.billing_period_start, state=IngestState.SUCCEEDED
        ).update(state=IngestState.SUPERSEDED, superseded_by=run.pk)
        sums = {column: _decimal_text(state.source_sums[column]) for column in COST_COLUMNS}
        sums.update(
            {f"rejected_{column}": _decimal_text(state.rejected_sums[column]) for column in COST_COLUMNS}
        )
        if state.paired:
            sums["rows_merged"] = str(rows_merged)
        IngestRun.objects.filter(pk=run.pk).update(
            state=IngestState.SUCCEEDED,
            rows_in_source=state.rows_in_source,
            rows_loaded=rows_loaded,
            rows_rejected=state.rows_rejected,
            rows_processed=state.rows_in_source,
            bytes_processed=state.bytes_done,
            source_sums=sums,
            database_sums={column: _decimal_text(database_sums[column]) for column in COST_COLUMNS},
            finished_at=timezone.now(),
        )
        loader.daily_cost_rebuild(account_id=account.pk, billing_period_start=run.billing_period_start)
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


def daily_cost_rebuild(*, account_id: int, billing_period_start: dt.date) -> int:
    """Rebuild DailyCost for one (account, billing period) in one transaction."""
    with transaction.atomic():
        loader.period_lock(account_id=account_id, billing_period_start=billing_period_start)
        return loader.daily_cost_rebuild(account_id=account_id, billing_period_start=billing_period_start)
