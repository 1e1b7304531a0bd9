"""The storage sweeper: what crashed ingests leave behind, found and cleaned (issue 15).

Run every minute by beat (`attribution.tasks.storage_sweep_task`, config/celery_app.py) and when a
worker starts. Each pass:

1. Dead runs: a `running` run whose execution lock no live session holds (its process died) is
   reaped (`services.ingest_run_reap`): failed with the reason, partition dropped, period freed.
   A run a worker was executing goes back to `pending` and is enqueued again instead (at most
   `INGEST_MAX_ATTEMPTS` attempts), so a killed worker's ingest finishes without waiting for the
   broker to redeliver its message.
2. Orphan tables: a line item table (`attribution_costlineitem_r<run id>`) whose run is not the
   current version of its period and is not being executed is dropped, attached or not; so are
   staging rows of runs no longer running.
3. Lost messages: a pending run of remote files (a sync's) that nobody started within
   INGEST_PENDING_STALE_SECONDS lost its task message (a broker restart without persistence); it is
   enqueued again. Enqueuing twice is harmless: the run's lock and claim let one execution in.
4. Sync runs still `running` past the sync task's time limit (connectors/services.py:
   `sync_runs_abandon_stale`) are failed as abandoned, so the schedule syncs their account again.
5. Tag sets (hourly, `collect_tag_sets`): those no line item references are deleted, only while no
   run is executing (a run names its tag sets before its rows are visible).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Greatest
from django.utils import timezone

from attribution.choices import IngestState
from attribution.connectors.services import sync_runs_abandon_stale
from attribution.ingest import loader, services
from attribution.models import IngestRun

logger = logging.getLogger(__name__)

_PARTITION_PATTERN = re.compile(rf"^{loader.LINE_ITEM_TABLE}_r(\d+)$")


@dataclass
class SweepReport:
    reaped: list[int] = field(default_factory=list)  # dead runs now failed
    retried: list[int] = field(default_factory=list)  # dead worker runs back to pending: enqueue
    requeued: list[int] = field(default_factory=list)  # pending runs whose message was lost: enqueue
    tables_dropped: list[str] = field(default_factory=list)
    staging_rows_deleted: int = 0
    sync_runs_abandoned: list[int] = field(default_factory=list)
    tag_sets_deleted: int | None = None  # None: not collected (not asked, or a run was executing)

    def as_dict(self) -> dict:
        return asdict(self)


def storage_sweep(
    *, collect_tag_sets: bool = False, pending_stale_after: dt.timedelta | None = None
) -> SweepReport:
    """One pass of the sweeper (module docstring). The caller enqueues `retried` and `requeued`.
    `pending_stale_after` defaults to INGEST_PENDING_STALE_SECONDS (30 min: longer than a transient
    failure's longest backoff, 600 s x 1.5 jitter, so a run waiting for its retry is left alone)."""
    if pending_stale_after is None:
        pending_stale_after = dt.timedelta(seconds=settings.INGEST_PENDING_STALE_SECONDS)
    report = SweepReport()
    _dead_runs_reap(report)
    _orphan_tables_drop(report)
    _staging_orphans_delete(report)
    _lost_pending_find(report, pending_stale_after)
    report.sync_runs_abandoned = sync_runs_abandon_stale()
    if collect_tag_sets:
        report.tag_sets_deleted = tag_sets_collect()
    return report


def _dead_runs_reap(report: SweepReport) -> None:
    running = IngestRun.objects.filter(state=IngestState.RUNNING).order_by("pk")
    for run_id in running.values_list("pk", flat=True):
        state = services.ingest_run_reap(run_id=run_id, detected_by="the sweeper", retry_worker_runs=True)
        if state == IngestState.PENDING:
            report.retried.append(run_id)
        elif state == IngestState.FAILED:
            report.reaped.append(run_id)


def line_item_tables() -> dict[int, str]:
    """Every per-run line item table in the database, attached as a partition or not: run id -> name."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname LIKE %s""",
            [f"{loader.LINE_ITEM_TABLE}_r%"],
        )
        names = [row[0] for row in cursor.fetchall()]
    return {int(match.group(1)): name for name in names if (match := _PARTITION_PATTERN.match(name))}


def _orphan_tables_drop(report: SweepReport) -> None:
    tables = line_item_tables()
    current = set(
        IngestRun.objects.filter(pk__in=list(tables), state=IngestState.SUCCEEDED).values_list(
            "pk", flat=True
        )
    )
    for run_id, name in sorted(tables.items()):
        if run_id in current:
            continue
        # The run's own lock: nobody executes it while we look, and a live executor keeps its table.
        with services.ingest_run_locked(run_id=run_id) as locked:
            if not locked:
                continue
            state = IngestRun.objects.filter(pk=run_id).values_list("state", flat=True).first()
            if state == IngestState.SUCCEEDED:
                continue  # It finished between the two reads.
            if loader.partition_drop(run_id=run_id):
                report.tables_dropped.append(name)
                logger.warning("dropped %s: its run is %s", name, state or "gone")


def _staging_orphans_delete(report: SweepReport) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""DELETE FROM {loader.STAGING_TABLE} s WHERE NOT EXISTS (
                  SELECT 1 FROM attribution_ingestrun r WHERE r.id = s.ingest_run_id AND r.state = %s)""",  # noqa: S608
            [IngestState.RUNNING],
        )
        report.staging_rows_deleted = cursor.rowcount


def _lost_pending_find(report: SweepReport, stale_after: dt.timedelta) -> None:
    """Pending runs of remote files untouched for `stale_after`: marked dispatched now, enqueued by
    the caller. Runs of local files are left alone: their files may be on another machine."""
    cutoff = timezone.now() - stale_after
    candidates = (
        IngestRun.objects.filter(state=IngestState.PENDING)
        .exclude(pk__in=report.retried)
        # Postgres' GREATEST skips nulls: the latest of created, last started, last enqueued again.
        .annotate(touched=Greatest("created_at", "started_at", "dispatched_at"))
        .filter(touched__lt=cutoff)
        .filter(~Q(source_files=[]))
        .order_by("pk")
    )
    for run in candidates.only("pk", "source_files"):
        if not all(entry.get("uri") for entry in run.source_files):
            continue
        if IngestRun.objects.filter(pk=run.pk, state=IngestState.PENDING).update(
            dispatched_at=timezone.now()
        ):
            report.requeued.append(run.pk)


def tag_sets_collect() -> int | None:
    """Delete the tag sets no line item (attached or staged) references. Runs that are executing
    hold TAG_SETS_LOCK shared: if any does, nothing is collected (None) and the next pass tries."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", services.TAG_SETS_LOCK)
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(
            f"""DELETE FROM attribution_tagset t
                 WHERE NOT EXISTS (SELECT 1 FROM {loader.LINE_ITEM_TABLE} li WHERE li.tag_set_id = t.id)
                   AND NOT EXISTS (SELECT 1 FROM {loader.STAGING_TABLE} s WHERE s.tag_set_id = t.id)"""  # noqa: S608
        )
        return cursor.rowcount
