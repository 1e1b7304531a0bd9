"""Remote billing files stream into the ingest: nothing is spooled to disk, memory does not hold an
object, and the run re-opens its objects at the planned version (S3 ETag, BigQuery export_time)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import gzip
import io
import json
import random
import tracemalloc
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum

from attribution.connectors.services import account_sync
from attribution.ingest.errors import IngestError
from attribution.ingest.services import ingest_run_execute, ingest_runs_create
from attribution.ingest.sources import RemoteSource
from attribution.models import CostLineItem, IngestRun, RunState
from tests.attribution.connectors.conftest import s3_client
from tests.attribution.ingest_fixtures import CUR2_COLUMNS, cur2_row
from tests.factories import CloudAccountFactory

pytest_plugins = ["tests.standins.bigquery", "tests.standins.demo"]

BUCKET = "stream-billing"
EXPORT = "big"
OBJECT_BYTES = 50 * 1024 * 1024


def data_key(export: str = EXPORT) -> str:
    return f"{export}/data/BILLING_PERIOD=2024-09/{export}-00001.csv.gz"


DATA_KEY = data_key()


def stream_account(export: str = EXPORT):
    return CloudAccountFactory(
        provider="aws",
        slug=f"aws-{export}",
        source_settings={"bucket": BUCKET, "export_name": export, "credentials": "ambient"},
    )


def export_upload(body_path_or_bytes, export: str = EXPORT) -> None:
    """A Data Exports delivery of September 2024 with one data file."""
    client = s3_client()
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    manifest = {"executionId": "exec-1", "dataFiles": [f"s3://{BUCKET}/{data_key(export)}"]}
    client.put_object(
        Bucket=BUCKET,
        Key=f"{export}/metadata/BILLING_PERIOD=2024-09/{export}-Manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    if isinstance(body_path_or_bytes, bytes):
        client.put_object(Bucket=BUCKET, Key=data_key(export), Body=body_path_or_bytes)
    else:
        client.upload_file(str(body_path_or_bytes), BUCKET, data_key(export))


def sync_traced(account):
    """The account's sync with its ingest inline, and the peak of Python allocations meanwhile."""
    tracemalloc.start()
    try:
        run = account_sync(account_id=account.pk, trigger="manual", inline_ingest=True)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return run, peak


def big_cur2_gzip(path, *, min_bytes: int) -> int:
    """A CUR 2.0 CSV.gz of at least `min_bytes` compressed: every row costs 0.01 and carries a
    3,000-character incompressible comment column (not read by the ingest), so the object is large
    while the row count stays small. Returns the row count."""
    columns = [*CUR2_COLUMNS, "product_comment"]
    noise = random.Random(7)
    rows = 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as out:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        while raw.tell() < min_bytes:
            for _ in range(1000):
                rows += 1
                row = cur2_row(identity_line_item_id=f"li-{rows}", line_item_unblended_cost="0.01")
                row["product_comment"] = base64.b64encode(noise.randbytes(2250)).decode()
                writer.writerow([row[c] for c in columns])
            text.flush()
        text.flush()
        text.detach()
    return rows


def test_a_large_csv_gz_streams_from_s3_without_a_spool_or_holding_the_object(moto, settings, tmp_path, db):
    # The same sync of a 1 MB export first: what a sync costs whatever the size (botocore's models,
    # Django, pyarrow's few blocks). The 50 MB export must not add anything near its size.
    small = tmp_path / "small.csv.gz"
    small_rows = big_cur2_gzip(small, min_bytes=1024 * 1024)
    export_upload(small, export="small")
    small_run, small_peak = sync_traced(stream_account("small"))
    assert small_run.state == RunState.SUCCEEDED, small_run.error
    assert IngestRun.objects.get(pk__in=small_run.ingest_run_ids).rows_loaded == small_rows

    source = tmp_path / "big.csv.gz"
    rows = big_cur2_gzip(source, min_bytes=OBJECT_BYTES)
    size = source.stat().st_size
    export_upload(source)
    account = stream_account()

    run, peak = sync_traced(account)

    assert run.state == RunState.SUCCEEDED, run.error
    (ingest,) = IngestRun.objects.filter(pk__in=run.ingest_run_ids)
    assert ingest.state == "succeeded", ingest.error
    assert (ingest.rows_in_source, ingest.rows_loaded, ingest.rows_rejected) == (rows, rows, 0)
    billed = CostLineItem.objects.filter(account=account).aggregate(total=Sum("billed_cost"))["total"]
    assert billed == Decimal(rows) * Decimal("0.01")
    # The run names the object and its version, not a local copy.
    (entry,) = ingest.source_files
    etag = s3_client().head_object(Bucket=BUCKET, Key=DATA_KEY)["ETag"].strip('"')
    assert entry["uri"] == entry["path"] == f"s3://{BUCKET}/{DATA_KEY}"
    assert entry["version"] == etag and entry["checksum"] == f"etag:{etag}"
    assert ingest.bytes_processed == size
    # Nothing was written to disk: no spool directory, no file under DATA_DIR at all.
    assert not (settings.DATA_DIR / "spool").exists()
    assert not settings.DATA_DIR.exists() or not any(p.is_file() for p in settings.DATA_DIR.rglob("*"))
    # Python never held the object: 50 times the data adds a fraction of its size to the peak.
    assert size >= OBJECT_BYTES
    assert peak - small_peak < size / 4, f"peak {peak:,} (1 MB export: {small_peak:,}) for {size:,} bytes"


def test_a_run_fails_with_the_reason_when_its_object_changed_after_planning(moto, db):
    rows = [cur2_row(identity_line_item_id=f"li-{i}", line_item_unblended_cost="1.25") for i in range(3)]
    body = io.StringIO()
    writer = csv.DictWriter(body, fieldnames=CUR2_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    export_upload(gzip.compress(body.getvalue().encode()))
    account = stream_account()
    run = account_sync(account_id=account.pk, trigger="manual")  # enqueues the ingest, not run here
    (ingest_id,) = run.ingest_run_ids

    # The export is rewritten before the worker runs the ingest: the planned ETag is gone.
    s3_client().put_object(Bucket=BUCKET, Key=DATA_KEY, Body=gzip.compress(b"something else\n"))
    with pytest.raises(IngestError, match="changed after the run was planned"):
        ingest_run_execute(run_id=ingest_id)

    ingest = IngestRun.objects.get(pk=ingest_id)
    assert ingest.state == "failed"
    assert f"s3://{BUCKET}/{DATA_KEY}" in ingest.error and "changed after the run was planned" in ingest.error
    assert not CostLineItem.objects.filter(account=account).exists()


def test_a_remote_parquet_is_read_with_ranged_gets(moto, db, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from attribution.connectors.aws import AwsBillingConnector

    table = pa.table(
        {
            "bill_billing_period_start_date": ["2024-09-01T00:00:00Z"] * 2,
            "line_item_unblended_cost": [1.5, 2.25],
            "line_item_line_item_type": ["Usage", "Usage"],
            "line_item_usage_start_date": ["2024-09-03T10:00:00Z"] * 2,
            "line_item_currency_code": ["USD", "USD"],
        }
    )
    path = tmp_path / "part.parquet"
    pq.write_table(table, path)
    s3 = s3_client()
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(path), BUCKET, "parquet/part.parquet")
    account = stream_account()
    connector = AwsBillingConnector(account)
    etag = s3.head_object(Bucket=BUCKET, Key="parquet/part.parquet")["ETag"].strip('"')
    remote = RemoteSource(
        uri=f"s3://{BUCKET}/parquet/part.parquet",
        version=etag,
        opener=lambda seekable: connector.open_uri(
            f"s3://{BUCKET}/parquet/part.parquet", etag, seekable=seekable
        ),
    )
    with remote.open_seekable() as handle:
        assert handle.seekable()  # ranged GETs, not a temporary copy

    (run,) = ingest_runs_create(account=account, sources=[remote], billing_period=dt.date(2024, 9, 1))
    run = ingest_run_execute(run_id=run.pk)

    assert run.state == "succeeded", run.error
    assert (run.rows_loaded, Decimal(run.database_sums["billed_cost"])) == (2, Decimal("3.75"))


@time_machine.travel(dt.datetime(2026, 10, 3, 9, tzinfo=dt.UTC), tick=True)
def test_a_bigquery_month_is_reopened_at_its_version(bigquery_server, demo_exports, monkeypatch, db):
    """The ingest re-runs the month's query in the worker; rows exported after the version the run
    was planned with are not in it (export_time <= version)."""
    from attribution.connectors.gcp import GcpBillingConnector
    from tests.standins.bigquery import DETAILED_SCHEMA, Table, demo_table_rows, restated

    table_id = "acme-billing.billing_export.gcp_billing_export_resource_v1_STREAM"
    paths = [path for entry in demo_exports.entries("gcp") for path in demo_exports.files(entry)]
    september = [row for row in demo_table_rows(paths) if row["invoice"]["month"] == "202609"][-300:]
    bigquery_server.state.token = "ya29.stream-token"
    bigquery_server.state.tables[table_id] = Table(schema=DETAILED_SCHEMA, rows=september)
    monkeypatch.setenv("INFERENSYS_TEST_GCP_TOKEN", "ya29.stream-token")
    account = CloudAccountFactory(
        provider="gcp",
        slug="gcp-stream",
        source_settings={
            "table": table_id,
            "project": "acme-billing",
            "credentials": "env:INFERENSYS_TEST_GCP_TOKEN",
            "api_endpoint": bigquery_server.url,
        },
    )
    (delivery,) = GcpBillingConnector(account).discover()
    (run,) = ingest_runs_create(
        account=account,
        sources=[RemoteSource.from_remote_file(f) for f in delivery.files],
        source_format=delivery.source_format,
        billing_period=delivery.billing_period_start,
    )
    assert run.source_files[0]["version"] == delivery.source_version

    # A correction is exported after planning, before the worker runs the ingest.
    table = bigquery_server.state.tables[table_id]
    table.rows = restated(
        table.rows,
        month="202609",
        export_time=dt.datetime(2026, 10, 3, 6, tzinfo=dt.UTC),
        extra_cost=Decimal("99"),
    )

    run = ingest_run_execute(run_id=run.pk)

    assert run.state == "succeeded", run.error
    assert run.rows_in_source == len(september)  # the planned version, without the correction
    assert "export_time <= TIMESTAMP(" in bigquery_server.state.queries[-1]
