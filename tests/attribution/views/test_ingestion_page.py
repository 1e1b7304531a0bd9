"""The Ingestion page: which run failed and why, progress of a running one, source vs database sums,
which version replaced which, rejected rows with reasons and their CSV; bounded queries."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client

from attribution.models import IngestRun, RejectedRow
from tests.factories import CloudAccountFactory, UserFactory

pytestmark = pytest.mark.django_db
OCTOBER = {"billing_period_start": dt.date(2026, 10, 1), "billing_period_end": dt.date(2026, 11, 1)}


def _run(account, **fields) -> IngestRun:
    return IngestRun.objects.create(account=account, **{**OCTOBER, **fields})


@pytest.fixture
def runs():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    gcp = CloudAccountFactory(slug="gcp-prod", provider="gcp")
    started = dt.datetime(2026, 10, 20, 8, 0, tzinfo=dt.UTC)
    old = _run(aws, state="superseded", rows_in_source=10, rows_loaded=10, started_at=started)
    new = _run(
        aws,
        state="succeeded",
        rows_in_source=12,
        rows_loaded=11,
        rows_rejected=1,
        # The files' sums: the database's plus the rejected row's amounts.
        source_sums={"billed_cost": "123.00", "rejected_billed_cost": "2.50", "list_cost": "130"},
        database_sums={"billed_cost": "120.5000000000", "list_cost": "130.0000000000"},
        started_at=started,
        finished_at=started + dt.timedelta(seconds=11),
        rows_processed=11,
    )
    old.superseded_by = new
    old.save()
    RejectedRow.objects.create(
        ingest_run=new,
        file_path="cur/part-0.csv",
        line_number=7,
        raw_text="x,,y",
        reason="BilledCost is not a number: ''",
    )
    failed = _run(
        gcp,
        state="failed",
        error="Column ChargePeriodStart is missing from billing.csv",
        source_sums={"billed_cost": "5.00", "rejected_billed_cost": "0"},
        database_sums={"billed_cost": "0"},
    )
    running = _run(
        gcp,
        billing_period_start=dt.date(2026, 11, 1),
        billing_period_end=dt.date(2026, 12, 1),
        state="running",
        bytes_total=1000,
        bytes_processed=250,
        started_at=started,
        rows_processed=500,
    )
    return {"old": old, "new": new, "failed": failed, "running": running}


def _client(roles) -> Client:
    client = Client()
    client.force_login(UserFactory(roles=roles))
    return client


def test_it_shows_why_a_run_failed_its_progress_sums_and_restatements(runs):
    html = _client(["viewer"]).get("/ingestion/").content.decode()
    failed = html[html.index(f'id="run-{runs["failed"].pk}"') :]
    failed = failed[: failed.index("</tr>")]
    assert "Failed" in failed and "Column ChargePeriodStart is missing from billing.csv" in failed
    assert "differ" in failed and "billed_cost: 5.00 vs 0" in failed
    new = html[html.index(f'id="run-{runs["new"].pk}"') :]
    new = new[: new.index("</tr>")]
    assert "equal" in new and f"#{runs['old'].pk}" in new  # replaced the old version
    running = html[html.index(f'id="run-{runs["running"].pk}"') :]
    assert 'value="25.0"' in running[: running.index("</tr>")]
    assert 'data-live="true"' in html


def test_rejected_rows_show_their_reason_and_download(runs):
    client = _client(["finance"])
    html = client.get("/ingestion/").content.decode()
    assert f"/ingestion/runs/{runs['new'].pk}/rejected/" in html
    page = client.get(f"/ingestion/runs/{runs['new'].pk}/rejected/").content.decode()
    assert "BilledCost is not a number" in page and "cur/part-0.csv" in page
    response = client.get(f"/ingestion/runs/{runs['new'].pk}/rejected/?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["file", "line", "reason", "raw_text"],
        ["cur/part-0.csv", "7", "BilledCost is not a number: ''", "x,,y"],
    ]
    assert client.get("/ingestion/runs/999999/rejected/").status_code == 404


def test_it_refuses_users_without_the_permission(runs):
    assert _client([]).get("/ingestion/").status_code == 403
    assert _client([]).get(f"/ingestion/runs/{runs['new'].pk}/rejected/").status_code == 403


def test_it_filters_by_state_and_its_queries_do_not_grow(runs, django_assert_max_num_queries):
    client = _client(["viewer"])
    html = client.get("/ingestion/?state=failed").content.decode()
    assert f'id="run-{runs["failed"].pk}"' in html and f'id="run-{runs["new"].pk}"' not in html
    account = CloudAccountFactory(slug="azure-prod", provider="azure")
    for month in range(1, 10):
        _run(
            account,
            billing_period_start=dt.date(2025, month, 1),
            billing_period_end=dt.date(2025, month + 1, 1),
            state="succeeded",
            source_sums={"BilledCost": "1"},
            database_sums={"BilledCost": "1"},
        )
    with django_assert_max_num_queries(9):
        assert client.get("/ingestion/").status_code == 200


def test_rejected_rows_read_a_fixed_number_of_queries_however_many_rows(runs, assert_page_queries_flat):
    def grow():
        for line in range(20, 30):
            RejectedRow.objects.create(
                ingest_run=runs["new"], file_path="cur/part-1.csv", line_number=line, raw_text="x",
                reason=f"reason on line {line}",
            )  # fmt: skip
        return [f"reason on line {line}" for line in range(20, 30)]

    url = f"/ingestion/runs/{runs['new'].pk}/rejected/"
    assert_page_queries_flat(_client(["finance"]), url, grow=grow, ceiling=8)


def test_the_cloud_accounts_page_reads_a_fixed_number_of_queries_however_many_accounts(
    runs, assert_page_queries_flat
):
    from attribution.models import SyncRun

    def grow():
        for index in range(6):
            account = CloudAccountFactory(slug=f"azure-{index}", provider="azure", name=f"Azure {index}")
            SyncRun.objects.create(account=account, kind="billing", state="succeeded")
            SyncRun.objects.create(account=account, kind="connection_test", state="failed", error="denied")
        return [f'data-account="azure-{index}"' for index in range(6)]

    SyncRun.objects.create(account=runs["new"].account, kind="billing", state="succeeded")
    assert_page_queries_flat(_client(["finance"]), "/accounts/", grow=grow, ceiling=8)
