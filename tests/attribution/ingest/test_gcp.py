"""Google Cloud BigQuery export rows (NDJSON) over the real koku samples, turned back into the
nested rows BigQuery returns. Expected totals are computed from the original CSV."""

from __future__ import annotations

import ast
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection

from attribution.ingest.errors import MissingColumnError
from attribution.models import CostLineItem, DailyCost, RejectedRow
from tests.attribution.conftest import cents, csv_rows, gcp_koku_csv_to_ndjson

pytestmark = pytest.mark.django_db(transaction=True)

NOVEMBER = "gcp/koku/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv"
OCTOBER = "gcp/koku/tmp_example.csv"


def expected_net_cost(rows: list[dict[str, str]]) -> Decimal:
    total = Decimal(0)
    for row in rows:
        total += Decimal(row["cost"])
        for credit in ast.literal_eval(row["credits"] or "[]"):
            total += Decimal(repr(credit["amount"]))
    return total


def test_it_nets_credits_and_reconciles_rows(ingest, shared_billing_data, tmp_path):
    source = shared_billing_data / NOVEMBER
    rows = csv_rows(source)
    dump = tmp_path / "billing.json"
    gcp_koku_csv_to_ndjson(source, dump)

    (run,) = ingest([dump], account="gcp-prod", provider="gcp")

    assert run.billing_period_start == dt.date(2020, 11, 1) and run.state == "succeeded"
    assert run.rows_in_source == run.rows_loaded == len(rows) == 25
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT COUNT(*), SUM("BilledCost"), SUM("EffectiveCost") FROM focus_line_items '
            'WHERE "x_Account" = %s',
            ["gcp-prod"],
        )
        count, billed, effective = cursor.fetchone()
    assert count == 25
    assert billed == effective == expected_net_cost(rows).quantize(Decimal("1e-10"))
    cells = DailyCost.objects.filter(account__slug="gcp-prod")
    assert sum(c.billed_cost for c in cells) == billed and sum(c.line_items for c in cells) == 25


def test_it_splits_a_dump_spanning_two_invoice_months(ingest, shared_billing_data, tmp_path):
    dump = tmp_path / "two-months.json"
    october = gcp_koku_csv_to_ndjson(shared_billing_data / OCTOBER, tmp_path / "oct.json")
    november = gcp_koku_csv_to_ndjson(shared_billing_data / NOVEMBER, tmp_path / "nov.json")
    dump.write_text((tmp_path / "nov.json").read_text() + (tmp_path / "oct.json").read_text())

    runs = ingest([dump], account="gcp-prod", provider="gcp")

    # koku's October sample has 9 hand-edited rows that end before they start: rejected, with lines.
    assert [(r.billing_period_start, r.rows_loaded, r.rows_rejected) for r in runs] == [
        (dt.date(2020, 10, 1), len(october) - 9, 9),
        (dt.date(2020, 11, 1), len(november), 0),
    ]
    assert set(RejectedRow.objects.values_list("reason", flat=True)) == {
        "usage_end_time is before usage_start_time"
    }
    assert CostLineItem.objects.exclude(tag_set__tags={}).exists()
    loaded_and_rejected = sum(
        Decimal(r.database_sums["billed_cost"]) + Decimal(r.source_sums["rejected_billed_cost"]) for r in runs
    )
    assert cents(loaded_and_rejected) == cents(
        expected_net_cost(csv_rows(shared_billing_data / OCTOBER))
        + expected_net_cost(csv_rows(shared_billing_data / NOVEMBER))
    )


def test_it_reads_bigquery_strings_utc_timestamps_and_label_records(ingest, tmp_path):
    dump = tmp_path / "rows.json"
    row = {
        "billing_account_id": "01ABCD-234567-89EFGH",
        "service": {"id": "6F81-5844-456A", "description": "Vertex AI"},
        "sku": {"id": "A1", "description": "L4 GPU"},
        "usage_start_time": "2026-09-01 00:00:00 UTC",
        "usage_end_time": "2026-09-01 01:00:00 UTC",
        "project": {"id": "ml-prod", "name": "ML prod", "labels": [{"key": "team", "value": "search"}]},
        "labels": [{"key": "model", "value": "llama-3-70b"}],
        "location": {"location": "us-central1", "region": "us-central1", "zone": None},
        "cost": "12.5",
        "cost_at_list": "14.0",
        "currency": "USD",
        "usage": {"amount": "3600", "unit": "seconds"},
        "credits": [{"name": "CUD", "amount": "-2.5", "type": "COMMITTED_USAGE_DISCOUNT"}],
        "invoice": {"month": "202609"},
        "cost_type": "regular",
    }
    bad = dict(row, cost="twelve")
    dump.write_text(json.dumps(row) + "\n\n" + json.dumps(bad) + "\n{not json\n")

    (run,) = ingest([dump], account="gcp-prod", provider="gcp")

    item = CostLineItem.objects.get()
    assert (item.billed_cost, item.effective_cost, item.list_cost) == (
        Decimal("10"),
        Decimal("10"),
        Decimal("14"),
    )
    assert item.charge_period_start == dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    assert item.normalized_tags == {"team": "search", "model": "llama-3-70b"}
    assert {r.line_number: r.reason for r in RejectedRow.objects.filter(ingest_run=run)} == {
        3: "cost: 'twelve' is not a number",
        4: "not a JSON object (Expecting property name enclosed in double quotes)",
    }


def test_it_names_a_missing_required_field(ingest, tmp_path):
    dump = tmp_path / "rows.json"
    dump.write_text(
        json.dumps(
            {
                "billing_account_id": "x",
                "cost": 1,
                "usage_start_time": "2026-09-01",
                "invoice": {"month": "202609"},
            }
        )
        + "\n"
    )

    with pytest.raises(MissingColumnError, match="rows.json:1: required column 'currency'"):
        ingest([dump], account="gcp-prod", provider="gcp")
