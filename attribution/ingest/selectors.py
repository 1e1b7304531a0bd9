"""Reads for the Ingestion page: runs with progress and their checks, restatements, rejected rows.

Runs are per cloud account, not per team, so reading them needs `attribution.view_ingestrun` (every
role holds it; see setup_roles) and the rejected rows, which quote source text, `view_rejectedrow`.
Every read here is a bounded number of queries whatever the number of runs on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils import timezone

from attribution.choices import COST_COLUMNS, IngestState
from attribution.models import IngestRun, RejectedRow

RUNS_PER_PAGE = 25
REJECTED_PER_PAGE = 50


@dataclass
class RunView:
    run: IngestRun
    percent: float | None
    rows_per_second: float | None
    sums_match: bool | None
    sum_differences: list[tuple[str, str, str]]
    replaced_run_ids: list[int]


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _sum_check(run: IngestRun) -> tuple[bool | None, list[tuple[str, str, str]]]:
    """The 'nothing is lost' check of DESIGN.md per cost column: what the files held equals what the
    database holds plus the rejected rows' amounts plus, for paired Azure datasets, what the merged
    actual rows held beyond their billed cost. Differences: (column, files, database + accounted)."""
    if not run.source_sums or not run.database_sums:
        return None, []
    sums = run.source_sums
    differences = []
    for column in COST_COLUMNS:
        source, database = _decimal(sums.get(column)), _decimal(run.database_sums.get(column))
        if source is None or database is None:
            continue
        rejected = _decimal(sums.get(f"rejected_{column}")) or Decimal(0)
        merged = _decimal(sums.get(f"merged_{column}")) or Decimal(0)
        accounted = database + rejected + merged
        if source != accounted:
            parts = [f"database {database}"]
            parts += [f"rejected {rejected}"] if rejected else []
            parts += [f"merged {merged}"] if merged else []
            differences.append((column, str(source), " + ".join(parts) if len(parts) > 1 else str(database)))
    return not differences, differences


def ingest_runs_page(*, state: str = "", account: str = "", page_number: int | str = 1) -> Page:
    runs: QuerySet[IngestRun] = IngestRun.objects.select_related("account").order_by("-created_at", "-id")
    if state in IngestState.values:
        runs = runs.filter(state=state)
    if account:
        runs = runs.filter(account__slug=account)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(page_number)
    ids = [run.pk for run in page.object_list]
    # Restatements: which earlier versions each run on the page replaced (one query for the page).
    replaced: dict[int, list[int]] = {}
    for old_id, new_id in IngestRun.objects.filter(superseded_by_id__in=ids).values_list(
        "pk", "superseded_by_id"
    ):
        replaced.setdefault(new_id, []).append(old_id)
    now = timezone.now()
    views = []
    for run in page.object_list:
        rate = None
        if run.started_at and run.rows_processed:
            elapsed = ((run.finished_at or now) - run.started_at).total_seconds()
            rate = run.rows_processed / elapsed if elapsed > 0 else None
        progress = run.progress
        if progress is None and run.state == IngestState.SUCCEEDED:
            progress = 1.0
        match, differences = _sum_check(run)
        views.append(
            RunView(
                run=run,
                percent=None if progress is None else round(progress * 100, 1),
                rows_per_second=rate,
                sums_match=match,
                sum_differences=differences,
                replaced_run_ids=sorted(replaced.get(run.pk, [])),
            )
        )
    page.object_list = views
    return page


def ingest_run_get(*, run_id: int) -> IngestRun:
    return IngestRun.objects.select_related("account", "superseded_by").get(pk=run_id)


def rejected_rows_page(*, run_id: int, page_number: int | str = 1) -> Page:
    rows = RejectedRow.objects.filter(ingest_run_id=run_id).order_by("file_path", "line_number")
    return Paginator(rows, REJECTED_PER_PAGE).get_page(page_number)


def rejected_rows_all(*, run_id: int):
    """Every rejected row of a run, streamed for the CSV download (never held in memory at once)."""
    return (
        RejectedRow.objects.filter(ingest_run_id=run_id)
        .order_by("file_path", "line_number")
        .values_list("file_path", "line_number", "reason", "raw_text")
        .iterator(chunk_size=2000)
    )


def ingest_any_running() -> bool:
    return IngestRun.objects.filter(state__in=[IngestState.PENDING, IngestState.RUNNING]).exists()
