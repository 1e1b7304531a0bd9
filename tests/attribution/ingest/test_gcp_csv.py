"""Google Cloud billing export rows flattened to CSV, read as they are (no conversion to NDJSON):
the real koku samples (nested cells as Python literals) and the same rows with JSON cells.
Expected totals: cost + sum(credits.amount), computed here with ast/json, not the parser."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import json
from decimal import Decimal

import pytest

from attribution.ingest.detect import format_detect
from attribution.ingest.formats.gcp_csv import GcpCsvParser
from attribution.models import CostLineItem, DailyCost, RejectedRow
from tests.attribution.conftest import csv_rows, gcp_koku_csv_to_ndjson
from tests.attribution.ingest_fixtures import view_totals

pytestmark = pytest.mark.django_db(transaction=True)

KOKU = "gcp/koku"
NOVEMBER = f"{KOKU}/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv"
OCTOBER = f"{KOKU}/tmp_example.csv"
SCALE = Decimal("1e-10")


def net_cost(row: dict[str, str]) -> Decimal:
    total = Decimal(row["cost"]).quantize(SCALE)
    for credit in ast.literal_eval(row["credits"] or "[]"):
        total += Decimal(repr(credit["amount"])).quantize(SCALE)
    return total


@pytest.mark.parametrize(
    ("name", "periods", "rows_rejected"),
    [
        (NOVEMBER, [dt.date(2020, 11, 1)], 0),
        (f"{KOKU}/2022-08-01_5.csv", [dt.date(2022, 8, 1)], 0),
        # Three rows of invoice month 2024-02 and three of 2024-03: one run per period.
        (f"{KOKU}/2024-03-01_5.csv", [dt.date(2024, 2, 1), dt.date(2024, 3, 1)], 0),
        # koku's October sample has 9 hand-edited rows that end before they start.
        (OCTOBER, [dt.date(2020, 10, 1)], 9),
    ],
)
def test_it_loads_the_real_flattened_csv_exports_to_the_cent(
    ingest, shared_billing_data, name, periods, rows_rejected
):
    path = shared_billing_data / name
    rows = csv_rows(path)

    assert format_detect(path) is GcpCsvParser
    runs = ingest([path], account="gcp-csv", provider="gcp")

    assert [run.billing_period_start for run in runs] == periods
    assert all(run.source_format == "gcp-csv" and run.state == "succeeded" for run in runs)
    for run in runs:
        month = f"{run.billing_period_start:%Y%m}"
        assert run.rows_in_source == sum(1 for r in rows if r["invoice.month"] == month)
    assert sum(run.rows_rejected for run in runs) == rows_rejected
    assert sum(run.rows_loaded for run in runs) == len(rows) - rows_rejected
    loaded_lines = set(CostLineItem.objects.values_list("source_line", flat=True))
    expected = sum((net_cost(r) for line, r in enumerate(rows, start=2) if line in loaded_lines), Decimal(0))
    count, billed, effective = view_totals("gcp-csv")
    assert (count, billed, effective) == (len(rows) - rows_rejected, expected, expected)
    if rows_rejected:
        assert set(RejectedRow.objects.values_list("reason", flat=True)) == {
            "usage_end_time is before usage_start_time"
        }
    cells = DailyCost.objects.filter(account__slug="gcp-csv")
    assert sum(c.billed_cost for c in cells) == billed


def test_promotion_credits_are_netted_into_billed_cost(ingest, shared_billing_data):
    path = shared_billing_data / NOVEMBER
    rows = csv_rows(path)

    ingest([path], account="gcp-csv", provider="gcp")

    credited = [r for r in rows if r["credits"] not in ("", "[]")]
    assert credited and all(net_cost(r) == 0 for r in credited)
    assert view_totals("gcp-csv")[1] == sum((net_cost(r) for r in rows), Decimal(0))
    assert sum(Decimal(r["cost"]) for r in rows) > 0  # the gross cost is not what is billed


def test_csv_and_ndjson_of_the_same_rows_load_identically(ingest, shared_billing_data, tmp_path):
    source = shared_billing_data / OCTOBER
    gcp_koku_csv_to_ndjson(source, tmp_path / "oct.json")

    ingest([source], account="from-csv", provider="gcp")
    ingest([tmp_path / "oct.json"], account="from-json", provider="gcp")

    fields = (
        "billed_cost", "charge_period_start", "charge_period_end", "tag_set__tags",
        "tag_set__normalized_tags", "service_name",
        "sku_id", "sub_account_id", "region_id", "consumed_quantity", "pricing_quantity", "resource_id",
    )  # fmt: skip

    def items(account):
        return list(
            CostLineItem.objects.filter(account__slug=account).order_by("source_line").values_list(*fields)
        )

    assert items("from-csv") == items("from-json") and len(items("from-csv")) == 283


def test_it_reads_nested_cells_written_as_json(ingest, shared_billing_data, tmp_path):
    """The same export flattened by a query with TO_JSON_STRING(...) for the nested fields."""
    source = shared_billing_data / NOVEMBER
    rows = csv_rows(source)
    nested = ("credits", "labels", "system_labels", "project.labels")
    target = tmp_path / "json-cells.csv"
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (json.dumps(ast.literal_eval(v or "[]")) if k in nested else v) for k, v in row.items()}
            )

    (run,) = ingest([target], account="gcp-json-cells", provider="gcp")

    assert run.rows_loaded == len(rows) == 25
    assert view_totals("gcp-json-cells")[1] == sum((net_cost(r) for r in rows), Decimal(0))
    labelled = CostLineItem.objects.exclude(tag_set__tags={}).first()
    assert labelled is not None and all(isinstance(v, str) for v in labelled.tags.values())


def test_it_rejects_a_nested_cell_that_is_neither_json_nor_a_literal(ingest, tmp_path):
    header = "billing_account_id,cost,currency,usage_start_time,usage_end_time,invoice.month,credits\n"
    path = tmp_path / "bad.csv"
    path.write_text(
        header
        + "A,1.5,USD,2024-05-01 00:00:00+00:00,2024-05-01 01:00:00+00:00,202405,[]\n"
        + "A,2.5,USD,2024-05-01 00:00:00+00:00,2024-05-01 01:00:00+00:00,202405,"
        + "[{'amount': __import__('os')}]\n"
    )

    (run,) = ingest([path], account="gcp-bad", provider="gcp")

    assert (run.rows_loaded, run.rows_rejected) == (1, 1)
    rejected = RejectedRow.objects.get()
    assert rejected.line_number == 3 and rejected.reason.startswith("credits: ")
    assert Decimal(run.source_sums["rejected_billed_cost"]) == Decimal("2.5")
