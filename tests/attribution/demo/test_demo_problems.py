"""The demo's ingest problems (make demo's `demo_problems` step): what a newcomer finds on /ingestion/
is a failed run that names the truncated file, and a loaded run whose three unreadable rows are kept
with their reasons, the rest loaded to the cent."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from attribution.ingest.selectors import _sum_check
from attribution.models import CostLineItem, IngestRun, RejectedRow
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failed_run_and_rejected_rows_with_their_reasons(tmp_path, client):
    out = io.StringIO()
    call_command("demo_problems", out=str(tmp_path), end_date=dt.date(2026, 11, 18), stdout=out)

    runs = {run.billing_period_start: run for run in IngestRun.objects.filter(account__slug="aws-sandbox")}
    failed, loaded = runs[dt.date(2026, 10, 1)], runs[dt.date(2026, 11, 1)]
    assert failed.state == "failed"
    assert "sandbox-focus-2026-10.csv.gz" in failed.error and "truncated or corrupt" in failed.error
    assert not CostLineItem.objects.filter(ingest_run=failed).exists()

    assert loaded.state == "succeeded" and loaded.rows_rejected == 3 and loaded.rows_loaded == 18
    reasons = list(RejectedRow.objects.filter(ingest_run=loaded).values_list("reason", flat=True))
    assert reasons == [
        "BilledCost: '4.1O' is not a number",
        "billing currency 'XYZ' is not an ISO 4217 code",
        "ChargePeriodStart is null",
    ]
    # What was loaded is exactly the file's readable rows.
    with open(tmp_path / "sandbox-focus-2026-11.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    good = [row for row in rows if row["BillingCurrency"] == "USD" and row["ChargePeriodStart"]]
    expected = sum((Decimal(row["BilledCost"]) for row in good if row["BilledCost"] != "4.1O"), Decimal(0))
    stored = CostLineItem.objects.filter(ingest_run=loaded).aggregate(total=Sum("billed_cost"))["total"]
    assert stored == expected
    # Nothing lost: the file's sums are the database's plus the rejected rows' (the page says equal).
    assert _sum_check(loaded) == (True, [])
    assert "failed as intended" in out.getvalue() and "3 rejected" in out.getvalue()

    # Both are on the ingestion pages for finance.
    client.force_login(UserFactory(roles=["finance"]))
    page = client.get("/ingestion/").content.decode()
    assert "truncated or corrupt" in page
    rejected = client.get(f"/ingestion/runs/{loaded.pk}/rejected/").content.decode()
    assert "ISO 4217" in rejected and "4.1O" in rejected


def test_without_billed_days_it_says_what_to_run_first(tmp_path):
    with pytest.raises(CommandError, match="run the demo's ingest first"):
        call_command("demo_problems", out=str(tmp_path), stdout=io.StringIO())
