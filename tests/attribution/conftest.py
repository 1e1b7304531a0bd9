from __future__ import annotations

import ast
import csv
import gzip
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from attribution.ingest import services
from attribution.models import IngestRun


def csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a (possibly gzipped, possibly BOM-prefixed) CSV, read independently of the parser."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def decimal_sum(values) -> Decimal:
    return sum((Decimal(v) for v in values if v not in ("", None)), Decimal(0))


def cents(value) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


_NESTED_PYTHON_REPR = {"labels", "system_labels", "project.labels", "credits"}


def gcp_koku_csv_to_ndjson(source: Path, target: Path) -> list[dict]:
    """Turn koku's flattened BigQuery CSV (nested fields as Python repr) back into the nested rows
    BigQuery returns, written as NDJSON like `bq query --format=json` output."""
    records = []
    for row in csv_rows(source):
        record: dict = {}
        for key, value in row.items():
            parsed: object = value
            if key in _NESTED_PYTHON_REPR:
                parsed = ast.literal_eval(value) if value else []
            elif value == "":
                parsed = None
            node = record
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = parsed
        records.append(record)
    with target.open("w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return records


@pytest.fixture
def ingest(db) -> Callable[..., list[IngestRun]]:
    """Create and execute the runs for some files, like `manage.py ingest_file` does."""

    def run(paths, *, account: str, provider: str, **options) -> list[IngestRun]:
        cloud_account = services.cloud_account_get_or_create(slug=account, provider=provider)
        runs = services.ingest_runs_create(account=cloud_account, paths=[str(p) for p in paths], **options)
        executed = []
        queue = list(runs)
        while queue:
            planned = queue.pop(0)
            if planned.state == "pending":
                planned = services.ingest_run_execute(run_id=planned.pk)
                # Periods found beyond the files' first rows get their own runs.
                queue.extend(services.ingest_run_followups(run=planned))
            executed.append(planned)
        return sorted(executed, key=lambda run: run.billing_period_start)

    return run
