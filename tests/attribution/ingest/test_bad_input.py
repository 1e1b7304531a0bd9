"""Bad input, through the real `ingest_file` command (and services where a hook is needed), on real
Postgres. Every case starts from a loaded previous version of the account.

Two kinds of bad input, as issue 3 defines them:
- File-level (truncated gzip, corrupt Parquet, empty file, missing columns, unknown format, a
  period that does not match, a file that changes while read): the command exits non-zero with
  FILE[:LINE]: PROBLEM, and the stored data (line items, DailyCost, succeeded runs, staging) is
  exactly what it was.
- Row-level (non-numeric / absurd numbers, unparseable dates, unknown currency, too many or too
  few fields, a 1 MB tag value): the row is kept in RejectedRow with its line and reason, the
  command prints FILE:LINE: REASON, the rejected amounts explain the gap between source and
  database sums ("nothing lost"), and other periods' data is untouched.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from attribution.ingest import services
from attribution.ingest.errors import IngestError
from attribution.ingest.formats import parquet as parquet_module
from attribution.models import CloudAccount, IngestRun, RejectedRow
from tests.attribution.ingest_fixtures import (
    CUR2_COLUMNS,
    FOCUS_COLUMNS,
    csv_write,
    cur2_row,
    focus_parquet_write,
    focus_row,
    stored_state,
)

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT = "aws-bad"


def ingest_file(*args: str) -> str:
    out = io.StringIO()
    call_command("ingest_file", *args, "--account", ACCOUNT, "--provider", "aws", stdout=out)
    return out.getvalue()


@pytest.fixture
def previous(tmp_path) -> dict:
    """A loaded previous version: September (CUR 2.0) and October (FOCUS) of the same account."""
    september = csv_write(
        tmp_path / "previous-sep.csv",
        CUR2_COLUMNS,
        [cur2_row(identity_line_item_id=f"li-{n}", line_item_unblended_cost=f"{n}.25") for n in range(1, 6)],
    )
    october = csv_write(
        tmp_path / "previous-oct.csv",
        FOCUS_COLUMNS,
        [
            focus_row(
                BillingPeriodStart="2024-10-01T00:00:00Z", BillingPeriodEnd="2024-11-01T00:00:00Z",
                ChargePeriodStart="2024-10-02T00:00:00Z", ChargePeriodEnd="2024-10-03T00:00:00Z",
            )
        ],
    )  # fmt: skip
    ingest_file(str(september))
    ingest_file(str(october))
    state = stored_state(ACCOUNT)
    assert len(state["line_items"]) == 6 and len(state["succeeded_runs"]) == 2 and state["daily"]
    return state


def cur2_file(tmp_path: Path, name: str, rows: list[dict[str, str]], **options) -> Path:
    return csv_write(tmp_path / name, CUR2_COLUMNS, rows, **options)


def assert_command_fails(*args: str, match: str) -> CommandError:
    with pytest.raises(CommandError, match=match) as raised:
        ingest_file(*args)
    return raised.value


# --- file-level problems: non-zero exit, nothing changes -----------------------------------------


def test_a_truncated_gzip_fails_naming_the_file_and_line(previous, tmp_path):
    rows = [
        cur2_row(identity_line_item_id=f"li-{n}", resource_tags=json.dumps({"n": "x" * 200}))
        for n in range(3000)
    ]
    path = cur2_file(tmp_path, "cur.csv.gz", rows, compress=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    assert_command_fails(str(path), match=r"cur\.csv\.gz:\d+: file is truncated or corrupt")
    assert stored_state(ACCOUNT) == previous


def test_a_gzip_truncated_inside_its_header_fails(previous, tmp_path):
    path = cur2_file(tmp_path, "tiny.csv.gz", [cur2_row()], compress=True)
    path.write_bytes(path.read_bytes()[:40])

    assert_command_fails(str(path), match=r"tiny\.csv\.gz: the gzip file is truncated or corrupt")
    assert stored_state(ACCOUNT) == previous


def test_a_parquet_file_without_its_footer_fails(previous, tmp_path):
    path = focus_parquet_write(tmp_path / "focus.parquet", [focus_row() for _ in range(50)])
    path.write_bytes(path.read_bytes()[:-100])

    assert_command_fails(str(path), match=r"focus\.parquet: corrupt or truncated Parquet file")
    assert stored_state(ACCOUNT) == previous


def test_a_parquet_file_with_corrupt_pages_fails_and_the_run_is_failed(previous, tmp_path):
    rows = [
        focus_row(BillingPeriodStart="2024-10-01T00:00:00Z", ResourceId=f"i-{n:06d}-{n * 7919 % 10007}")
        for n in range(5000)
    ]
    path = focus_parquet_write(tmp_path / "pages.parquet", rows)
    data = bytearray(path.read_bytes())
    # Zero the middle of the file: data pages, not the footer the schema comes from.
    data[len(data) // 4 : len(data) // 2] = bytes(len(data) // 2 - len(data) // 4)
    path.write_bytes(bytes(data))

    assert_command_fails(str(path), match=r"pages\.parquet(:\d+)?: corrupt")
    assert stored_state(ACCOUNT) == previous
    assert not IngestRun.objects.filter(account__slug=ACCOUNT, state__in=("pending", "running")).exists()


def test_an_empty_file_fails(previous, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    assert_command_fails(str(path), match=r"empty\.csv: the file is empty \(0 bytes\)")
    assert stored_state(ACCOUNT) == previous


def test_an_empty_gzip_fails(previous, tmp_path):
    path = tmp_path / "empty.csv.gz"
    path.write_bytes(gzip.compress(b""))

    assert_command_fails(str(path), match=r"empty\.csv\.gz:1: the file has no header line")
    assert stored_state(ACCOUNT) == previous


def test_a_header_only_file_is_a_valid_empty_export_when_the_period_is_given(previous, tmp_path):
    path = cur2_file(tmp_path, "header-only.csv", [])

    output = ingest_file(str(path), "--period", "2024-11")

    assert "2024-11 run #" in output and "0 rows loaded, 0 rejected of 0" in output
    run = IngestRun.objects.get(account__slug=ACCOUNT, billing_period_start=dt.date(2024, 11, 1))
    assert (run.state, run.rows_in_source, run.rows_loaded) == ("succeeded", 0, 0)
    after = stored_state(ACCOUNT)
    assert (after["line_items"], after["daily"]) == (previous["line_items"], previous["daily"])


def test_a_header_only_file_without_a_period_changes_nothing(previous, tmp_path):
    path = cur2_file(tmp_path, "header-only.csv", [])

    assert "nothing to ingest" in ingest_file(str(path))
    assert stored_state(ACCOUNT) == previous


def test_a_missing_required_column_fails_naming_it(previous, tmp_path):
    cur2 = [c for c in CUR2_COLUMNS if c != "line_item_line_item_type"]
    path = csv_write(tmp_path / "no-type.csv", cur2, [cur2_row()])
    focus = csv_write(
        tmp_path / "no-effective.csv", [c for c in FOCUS_COLUMNS if c != "EffectiveCost"], [focus_row()]
    )

    assert_command_fails(
        str(path), match=r"no-type\.csv:1: required column 'line_item_line_item_type' is missing"
    )
    assert_command_fails(str(focus), match=r"no-effective\.csv:1: required column 'effectivecost' is missing")
    assert stored_state(ACCOUNT) == previous


def test_an_unknown_format_fails(previous, tmp_path):
    path = tmp_path / "invoice.csv"
    path.write_text("Invoice,Amount\nINV-1,12.00\n")
    binary = tmp_path / "export.bin"
    binary.write_bytes(bytes(range(256)) * 4)

    assert_command_fails(str(path), match=r"invoice\.csv:1: unrecognised billing export format")
    assert_command_fails(str(binary), match=r"export\.bin: the file is not UTF-8 text nor a Parquet file")
    assert stored_state(ACCOUNT) == previous


def test_an_unknown_parquet_schema_fails(previous, tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)

    assert_command_fails(str(path), match=r"other\.parquet: unrecognised Parquet schema \(1 columns: a\)")
    assert stored_state(ACCOUNT) == previous


def test_a_billing_period_that_does_not_match_the_files_fails(previous, tmp_path):
    path = cur2_file(tmp_path, "september.csv", [cur2_row()])

    assert_command_fails(
        str(path),
        "--period",
        "2024-08",
        match=r"september\.csv: rows of billing period 2024-09 in a delivery for 2024-08",
    )
    assert stored_state(ACCOUNT) == previous


def test_a_file_that_changes_after_planning_fails(previous, tmp_path):
    path = cur2_file(tmp_path, "moving.csv", [cur2_row(line_item_unblended_cost="9.99")])
    account = CloudAccount.objects.get(slug=ACCOUNT)
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    path.write_text(path.read_text().replace("9.99", "1.11"))

    with pytest.raises(IngestError, match=r"moving\.csv: the file changed after the run was planned"):
        services.ingest_run_execute(run_id=run.pk)

    assert IngestRun.objects.get(pk=run.pk).state == "failed"
    assert stored_state(ACCOUNT) == previous


def test_a_csv_that_changes_while_it_is_read_fails(previous, tmp_path, settings):
    settings.INGEST_CHUNK_ROWS = 1000
    rows = [
        cur2_row(identity_line_item_id=f"li-{n:05d}", line_item_unblended_cost="1.5") for n in range(8000)
    ]
    path = cur2_file(tmp_path, "growing.csv", rows)
    account = CloudAccount.objects.get(slug=ACCOUNT)
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    size = path.stat().st_size
    assert size > 3 * (1 << 20) // 2  # beyond the reader's first 1 MiB block

    def rewrite_the_tail(_run) -> None:
        with path.open("r+b") as handle:  # same length, different bytes after the first block
            handle.seek(size - 200_000)
            chunk = handle.read(100_000)
            handle.seek(size - 200_000)
            handle.write(chunk.replace(b"1.5", b"7.5"))

    with pytest.raises(IngestError, match=r"growing\.csv: the file changed"):
        services.ingest_run_execute(run_id=run.pk, progress=rewrite_the_tail)

    assert stored_state(ACCOUNT) == previous


def test_a_parquet_file_that_changes_while_it_is_read_fails(previous, tmp_path, monkeypatch, settings):
    settings.INGEST_CHUNK_ROWS = 1000
    monkeypatch.setattr(parquet_module, "BATCH_ROWS", 10)
    october = {
        "BillingPeriodStart": "2024-10-01T00:00:00Z",
        "BillingPeriodEnd": "2024-11-01T00:00:00Z",
        "ChargePeriodStart": "2024-10-05T00:00:00Z",
        "ChargePeriodEnd": "2024-10-06T00:00:00Z",
    }
    path = focus_parquet_write(tmp_path / "moving.parquet", [focus_row(**october) for _ in range(3000)])
    account = CloudAccount.objects.get(slug=ACCOUNT)
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    original = path.read_bytes()

    def append_a_byte(_run) -> None:
        path.write_bytes(original + b"\0")

    with pytest.raises(IngestError, match=r"moving\.parquet:\d+: the file changed while it was being read"):
        services.ingest_run_execute(run_id=run.pk, progress=append_a_byte)

    assert stored_state(ACCOUNT) == previous


# --- row-level problems: the row is rejected with its line, nothing is lost ----------------------


def _ingest_with_one_bad_row(tmp_path: Path, bad: dict[str, str]) -> tuple[IngestRun, str]:
    rows = [
        cur2_row(identity_line_item_id="good-1", line_item_unblended_cost="2.50"),
        cur2_row(identity_line_item_id="bad", **bad),
        cur2_row(identity_line_item_id="good-2", line_item_unblended_cost="0.75"),
    ]
    path = cur2_file(tmp_path, "restated.csv", rows)
    output = ingest_file(str(path))
    run = IngestRun.objects.filter(account__slug=ACCOUNT, billing_period_start=dt.date(2024, 9, 1)).latest(
        "id"
    )
    return run, output


def assert_rejected_at_line_3(run: IngestRun, output: str, reason: str, previous: dict) -> None:
    assert run.state == "succeeded" and (run.rows_in_source, run.rows_loaded, run.rows_rejected) == (3, 2, 1)
    rejected = RejectedRow.objects.get(ingest_run=run)
    assert rejected.line_number == 3 and reason in rejected.reason and "bad" in rejected.raw_text
    assert f"restated.csv:3: {rejected.reason}" in output
    # The good rows are there; source - rejected = database, exactly.
    assert Decimal(run.database_sums["billed_cost"]) == Decimal("3.25")
    assert Decimal(run.source_sums["billed_cost"]) - Decimal(
        run.source_sums["rejected_billed_cost"]
    ) == Decimal(run.database_sums["billed_cost"])
    # October (another period) is exactly as it was.
    after = stored_state(ACCOUNT)
    october_run = previous["succeeded_runs"][1][0]
    assert [i for i in after["line_items"] if i[1] == october_run] == [
        i for i in previous["line_items"] if i[1] == october_run
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("twelve", "'twelve' is not a number"),
        ("1e30", "'1e30' is out of range for a cost"),
        ("-1E+20", "'-1E+20' is out of range for a cost"),
        # Past the decimal module's own exponent limit: once a decimal.Overflow that ended the run.
        ("1E+1000000", "'1E+1000000' is out of range for a cost"),
        ("-9.9e+999999999", "'-9.9e+999999999' is out of range for a cost"),
        ("Infinity", "'Infinity' is not a finite number"),
        ("-inf", "'-inf' is not a finite number"),
        ("1,5", "'1,5' is not a number"),
    ],
)
def test_a_non_numeric_or_absurd_cost_rejects_its_row(previous, tmp_path, value, reason):
    run, output = _ingest_with_one_bad_row(tmp_path, {"line_item_unblended_cost": value})

    assert_rejected_at_line_3(run, output, reason, previous)


def test_an_oversized_quantity_is_dropped_and_the_row_kept(previous, tmp_path):
    run, _ = _ingest_with_one_bad_row(
        tmp_path, {"line_item_unblended_cost": "1.00", "line_item_usage_amount": "1E+1000000"}
    )

    assert run.state == "succeeded" and (run.rows_loaded, run.rows_rejected) == (3, 0)
    assert Decimal(run.database_sums["billed_cost"]) == Decimal("4.25")


def test_a_nan_cost_rejects_its_row(previous, tmp_path):
    run, output = _ingest_with_one_bad_row(tmp_path, {"line_item_unblended_cost": "NaN"})

    assert_rejected_at_line_3(run, output, "'NaN' is not a finite number", previous)


def test_a_nan_cost_in_focus_rejects_its_row(previous, tmp_path):
    path = csv_write(tmp_path / "nan.csv", FOCUS_COLUMNS, [focus_row(), focus_row(BilledCost="NaN")])

    output = ingest_file(str(path), "--period", "2024-03")

    assert "nan.csv:3: BilledCost: 'NaN' is not a finite number" in output


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (
            "line_item_usage_start_date",
            "2024-13-45T00:00:00Z",
            "line_item_usage_start_date: '2024-13-45T00:00:00Z' is not a date",
        ),
        ("line_item_usage_end_date", "yesterday", "line_item_usage_end_date: 'yesterday' is not a date"),
        ("line_item_usage_start_date", "31/12/2024", "is not a date"),
    ],
)
def test_an_unparseable_date_rejects_its_row(previous, tmp_path, column, value, reason):
    run, output = _ingest_with_one_bad_row(tmp_path, {column: value})

    assert_rejected_at_line_3(run, output, reason, previous)


def test_an_unparseable_billing_period_rejects_its_row_in_the_files_period(previous, tmp_path):
    run, output = _ingest_with_one_bad_row(tmp_path, {"bill_billing_period_start_date": "Sept 2024"})

    assert_rejected_at_line_3(
        run, output, "bill_billing_period_start_date: 'Sept 2024' is not a date", previous
    )


@pytest.mark.parametrize("code", ["XYZ", "MC", "usd$", "€"])
def test_an_unknown_currency_rejects_its_row(previous, tmp_path, code):
    run, output = _ingest_with_one_bad_row(tmp_path, {"line_item_currency_code": code})

    assert_rejected_at_line_3(run, output, "is not an ISO 4217 code", previous)


@pytest.mark.parametrize(("extra", "found"), [(["surplus"], 25), ([], 23)])
def test_a_row_with_too_many_or_too_few_fields_is_rejected(previous, tmp_path, extra, found):
    rows = [
        cur2_row(identity_line_item_id="good-1", line_item_unblended_cost="2.50"),
        cur2_row(identity_line_item_id="bad"),
        cur2_row(identity_line_item_id="good-2", line_item_unblended_cost="0.75"),
    ]
    path = cur2_file(tmp_path, "restated.csv", rows)
    lines = path.read_bytes().decode().split("\r\n")
    cells = lines[2].split(",")
    lines[2] = ",".join(cells + extra if extra else cells[:-1])
    path.write_bytes("\r\n".join(lines).encode())

    output = ingest_file(str(path))

    run = IngestRun.objects.filter(account__slug=ACCOUNT, billing_period_start=dt.date(2024, 9, 1)).latest(
        "id"
    )
    assert_rejected_at_line_3(run, output, f"expected 24 fields, found {found}", previous)


def test_a_1_mb_tag_value_rejects_its_focus_row(previous, tmp_path):
    huge = "x" * (1 << 20)
    path = csv_write(
        tmp_path / "huge-tag.csv", FOCUS_COLUMNS, [focus_row(), focus_row(Tags=json.dumps({"team": huge}))]
    )

    output = ingest_file(str(path))

    run = IngestRun.objects.get(account__slug=ACCOUNT, billing_period_start=dt.date(2024, 3, 1))
    assert (run.rows_loaded, run.rows_rejected) == (1, 1)
    rejected = RejectedRow.objects.get(ingest_run=run)
    assert rejected.reason == "Tags: the value of 'team' has 1,048,576 characters (limit 65,536)"
    assert "huge-tag.csv:3: Tags: the value of 'team'" in output
    assert len(rejected.raw_text) <= 100_000  # kept, bounded


def test_a_1_mb_tag_value_rejects_its_cur_row(previous, tmp_path):
    run, output = _ingest_with_one_bad_row(
        tmp_path, {"resource_tags": json.dumps({"user:team": "x" * (1 << 20)})}
    )

    assert_rejected_at_line_3(run, output, "Tags", previous)
