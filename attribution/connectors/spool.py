"""Spooling remote files to local disk until the ingest pipeline reads streams itself.

The ingest pipeline (attribution.services.ingest_runs_create) plans runs from local paths: it
checksums, detects the format and scans periods from files. Until it accepts streams, a sync copies
each RemoteFile to `DATA_DIR/spool/<sync run id>/<YYYY-MM>/` in fixed-size chunks (never the whole
object in memory) and hands those paths over. This module is the only place that knows: replacing
`period_files_spool` with direct streaming removes spooling entirely.

Lifetime: the spool of a period is deleted by `spool_delete` when its ingest finishes, successfully
or not (attribution.connectors.tasks.period_ingest_finished_task, chained after the ingest task), or
right away when planning decides there is nothing to load. Spools left behind by an ingest whose
task died for good are removed by `spool_prune`, which sync_due_accounts runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from pathlib import Path

from django.conf import settings

from attribution.connectors.base import RemoteFile

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def spool_root() -> Path:
    return Path(settings.DATA_DIR) / "spool"


def spool_dir(*, sync_run_id: int, billing_period_start: dt.date) -> Path:
    return spool_root() / str(sync_run_id) / f"{billing_period_start:%Y-%m}"


def period_files_spool(
    *, sync_run_id: int, billing_period_start: dt.date, files: list[RemoteFile]
) -> list[Path]:
    """Copy each file of a period delivery to the spool, chunk by chunk. Returns the local paths in
    the delivery's order. Names keep their suffix (.csv.gz, .parquet) and an index keeps them unique."""
    directory = spool_dir(sync_run_id=sync_run_id, billing_period_start=billing_period_start)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, remote in enumerate(files):
        basename = _UNSAFE.sub("_", remote.name.rsplit("/", 1)[-1])[-120:] or "file"
        # The dataset (Azure actual/amortized) is part of the name: the planner reads it from the path.
        dataset = f"{remote.dataset}-" if remote.dataset else ""
        path = directory / f"{index:05d}-{dataset}{basename}"
        stream = remote.open()
        try:
            with path.open("wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
        finally:
            stream.close()
        paths.append(path)
    return paths


def spool_delete(*, sync_run_id: int, billing_period_start: dt.date) -> None:
    directory = spool_dir(sync_run_id=sync_run_id, billing_period_start=billing_period_start)
    shutil.rmtree(directory, ignore_errors=True)
    try:
        directory.parent.rmdir()  # only when no other period of this sync is still spooled
    except OSError:
        pass


def spool_prune(*, older_than_seconds: int = 24 * 3600) -> int:
    """Remove sync spools not touched for a day (their ingest died for good). Returns how many."""
    root = spool_root()
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for directory in root.iterdir():
        if directory.is_dir() and directory.stat().st_mtime < cutoff:
            newest = max((p.stat().st_mtime for p in directory.rglob("*")), default=0)
            if newest < cutoff:
                shutil.rmtree(directory, ignore_errors=True)
                logger.info("removed stale spool %s", directory)
                removed += 1
    return removed
