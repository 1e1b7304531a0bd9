"""Ingests that a person starts from the Ingestion page: retry a failed run, upload a billing file.

Both only plan runs (the existing `ingest_runs_create` and its parsers decide what a file is) and
ask for them to be executed: `ingest_runs_requested` is sent, and attribution/ingest/receivers.py
enqueues the existing ingest task once the transaction commits. A file that cannot be planned
(unknown format, wrong provider, rows of another period) is an IngestError with what and where,
and nothing is stored: no run, no upload left on disk. Both are audited (the audit log says who
loaded which bill by hand).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import uuid
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction

from attribution import signals
from attribution.audit import audited_change_send
from attribution.choices import IngestState
from attribution.ingest.errors import IngestError
from attribution.ingest.services import ingest_runs_create
from attribution.models import CloudAccount, IngestRun

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _upload_path(filename: str) -> Path:
    """A fresh folder per upload under INGEST_UPLOAD_DIR; the file keeps its (sanitised) name,
    whose suffixes (.csv.gz, .parquet) the format detection reads."""
    name = _UNSAFE.sub("_", Path(filename or "upload").name).strip("._") or "upload"
    folder = Path(settings.INGEST_UPLOAD_DIR) / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=False)
    return folder / name[:200]


def ingest_upload_create(
    *,
    actor,
    account: CloudAccount,
    filename: str,
    content: IO[bytes],
    source_format: str = "auto",
    billing_period: dt.date | None = None,
) -> list[IngestRun]:
    """Store an uploaded billing file and plan its runs (one per billing period in it); the runs
    to execute are enqueued after commit. Returns the runs (an unchanged period's current run,
    state succeeded, if the same file was loaded before). Raises IngestError, storing nothing."""
    path = _upload_path(filename)
    try:
        with open(path, "wb") as handle:
            shutil.copyfileobj(content, handle, length=1 << 20)
        if path.stat().st_size == 0:
            raise IngestError("the file is empty", path=Path(filename).name)
        with transaction.atomic():
            try:
                runs = ingest_runs_create(
                    account=account,
                    paths=[path],
                    source_format=source_format,
                    billing_period=billing_period,
                )
            except IngestError as error:
                # Name the file as the person knows it, not where the server keeps it.
                raise IngestError(error.problem, path=Path(filename).name, line=error.line) from None
            if not runs:
                raise IngestError(
                    "the file has no rows; choose its billing period to load an empty period",
                    path=Path(filename).name,
                )
            pending = [run for run in runs if run.state == IngestState.PENDING]
            for run in pending:
                audited_change_send(
                    actor=actor,
                    action="upload",
                    obj=run,
                    changes={
                        "before": None,
                        "after": {
                            "file": Path(filename).name,
                            "bytes": path.stat().st_size,
                            "source_format": run.source_format,
                            "billing_period": run.billing_period_start.isoformat(),
                        },
                    },
                )
            if pending:
                signals.ingest_runs_requested.send(sender=IngestRun, run_ids=[run.pk for run in pending])
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    if not pending:
        shutil.rmtree(path.parent, ignore_errors=True)  # Same bytes as the current version.
    return runs


def ingest_run_retry(*, actor, run_id: int) -> IngestRun:
    """A failed run planned again from the same sources, as a new pending run (the failed one stays
    in the history with its error), then enqueued. Raises IngestError when it cannot be retried."""
    with transaction.atomic():
        run = IngestRun.objects.select_for_update().select_related("account").filter(pk=run_id).first()
        if run is None:
            raise IngestError(f"there is no ingest run #{run_id}")
        if run.state != IngestState.FAILED:
            raise IngestError(
                f"run #{run.pk} is {run.get_state_display().lower()}; only a failed run can be retried"
            )
        newer = (
            IngestRun.objects.filter(
                account_id=run.account_id, billing_period_start=run.billing_period_start, pk__gt=run.pk
            )
            .exclude(state=IngestState.FAILED)
            .order_by("pk")
            .first()
        )
        if newer is not None:
            raise IngestError(
                f"run #{newer.pk} ({newer.get_state_display().lower()}) is newer for "
                f"{run.account.slug} {run.billing_period_start:%Y-%m}; retrying #{run.pk} would replace it"
            )
        if not run.source_files:
            raise IngestError(f"run #{run.pk} has no source files to read again")
        for entry in run.source_files:
            if not entry.get("uri") and not Path(entry.get("path", "")).is_file():
                raise IngestError(
                    "the file is no longer there; upload it again", path=Path(entry.get("path", "")).name
                )
        retry = IngestRun.objects.create(
            account=run.account,
            billing_period_start=run.billing_period_start,
            billing_period_end=run.billing_period_end,
            source_format=run.source_format,
            source_files=run.source_files,
            fingerprint=run.fingerprint,
            bytes_total=run.bytes_total,
        )
        audited_change_send(
            actor=actor,
            action="retry",
            obj=retry,
            changes={"before": {"run": run.pk, "error": run.error[:500]}, "after": {"run": retry.pk}},
        )
        signals.ingest_runs_requested.send(sender=IngestRun, run_ids=[retry.pk])
    return retry
