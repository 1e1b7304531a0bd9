"""The rollup tests' data: koku's November 2023 CUR sample (six SKUs, `user:app` and other resource
tags, untagged rows with and without a ResourceId), loaded through the ingest swap, and rows of it
changed and ingested again (a restatement, or another period's charges on its days)."""

from __future__ import annotations

import csv
from collections.abc import Callable

import pytest

from attribution.models import CostLineItem, IngestRun

SAMPLE = "aws/koku/November-2023-None.csv"
ACCOUNT = "aws-koku"


@pytest.fixture
def sample(shared_billing_data) -> tuple[list[str], list[dict[str, str]]]:
    """The sample's header and rows, read apart from the parser."""
    with open(shared_billing_data / SAMPLE, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def loaded(ingest, shared_billing_data) -> list[CostLineItem]:
    """The sample ingested; its line items, with their tag sets."""
    (run,) = ingest([shared_billing_data / SAMPLE], account=ACCOUNT, provider="aws")
    assert run.state == "succeeded"
    items = list(CostLineItem.objects.filter(ingest_run_id=run.pk).select_related("tag_set"))
    assert items
    return items


@pytest.fixture
def ingest_rows(ingest, sample, tmp_path) -> Callable[..., IngestRun]:
    """Write rows in the sample's columns to a file of their own and ingest it into the same account;
    returns the run (it must succeed)."""
    fields, _rows = sample

    def run(rows: list[dict[str, str]], *, name: str = "November-2023-restated.csv") -> IngestRun:
        path = tmp_path / name
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        (ingested,) = ingest([path], account=ACCOUNT, provider="aws")
        assert ingested.state == "succeeded"
        return ingested

    return run
