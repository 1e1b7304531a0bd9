"""The GCP billing connector against the loopback BigQuery REST server, with the real
google-cloud-bigquery client, and the real ingest pipeline behind it."""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal

import pytest
import time_machine

from attribution.connectors.base import ConnectorError
from attribution.connectors.gcp import GcpBillingConnector
from attribution.models import BillingPeriodVersion, CostLineItem, IngestRun
from tests.factories import CloudAccountFactory
from tests.standins.bigquery import (
    DETAILED_SCHEMA,
    BigQueryState,
    Table,
    demo_table_rows,
    restated,
)
from tests.standins.demo import delivery_ingest, period_totals

pytest_plugins = ["tests.standins.bigquery", "tests.standins.demo"]

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "ya29.test-access-token"
TABLE = "acme-billing.billing_export.gcp_billing_export_resource_v1_01ABCD_234567_89EF01"
SEPTEMBER, OCTOBER = dt.date(2026, 9, 1), dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 10, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def gcp_rows(demo_exports):
    paths = [path for entry in demo_exports.entries("gcp") for path in demo_exports.files(entry)]
    return demo_table_rows(paths)


@pytest.fixture
def billing_table(bigquery_server, gcp_rows):
    """The export with October whole and a slice of September: enough for version logic, and
    quick (the real client parses ~1 ms a row). The exact-totals test serves every row."""
    state: BigQueryState = bigquery_server.state
    state.token = TOKEN
    september = [row for row in gcp_rows if row["invoice"]["month"] == "202609"][-400:]
    october = [row for row in gcp_rows if row["invoice"]["month"] == "202610"]
    state.tables[TABLE] = Table(schema=DETAILED_SCHEMA, rows=september + october)
    return state


@pytest.fixture
def account(bigquery_server, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_GCP_TOKEN", TOKEN)
    return CloudAccountFactory(
        provider="gcp",
        slug="gcp-prod",
        source_settings={
            "table": TABLE,
            "project": "acme-billing",
            "location": "US",
            "credentials": "env:INFERENSYS_TEST_GCP_TOKEN",
            "api_endpoint": bigquery_server.url,
        },
    )


def sync_once(account, tmp_path):
    """What the sync does with a connector: discover, then ingest the periods that changed."""
    connector = GcpBillingConnector(account)
    deliveries = connector.discover()
    changed = []
    for delivery in deliveries:
        stored = BillingPeriodVersion.objects.filter(
            account=account, billing_period_start=delivery.billing_period_start
        ).first()
        if stored and stored.source_version == delivery.source_version:
            continue
        delivery_ingest(account=account, delivery=delivery)
        BillingPeriodVersion.objects.update_or_create(
            account=account,
            billing_period_start=delivery.billing_period_start,
            defaults={
                "source_version": delivery.source_version,
                "watermark": dt.datetime.fromisoformat(delivery.details["watermark"]),
                "is_final": delivery.is_final,
            },
        )
        changed.append(delivery.billing_period_start)
    return deliveries, changed


@time_machine.travel(NOW, tick=True)
def test_it_syncs_two_invoice_months_to_the_exact_totals(
    account, billing_table, gcp_rows, demo_exports, tmp_path
):
    billing_table.tables[TABLE].rows = list(gcp_rows)
    deliveries, changed = sync_once(account, tmp_path)

    assert [d.billing_period_start for d in deliveries] == [OCTOBER, SEPTEMBER]
    assert changed == [OCTOBER, SEPTEMBER]
    for period, label in ((SEPTEMBER, "2026-09"), (OCTOBER, "2026-10")):
        entry = demo_exports.entry("gcp", label)
        billed, effective, rows = period_totals("gcp-prod", period)
        assert rows == entry["row_count"]
        assert billed == effective == Decimal(entry["billed_cost"])
    # Neither month is final on October 3rd: September's invoice closes in the first days of October.
    assert [d.is_final for d in deliveries] == [False, False]
    # The version of a month is its latest export_time.
    september_rows = [row for row in billing_table.tables[TABLE].rows if row["invoice"]["month"] == "202609"]
    latest = max(dt.datetime.strptime(r["export_time"], "%Y-%m-%d %H:%M:%S UTC") for r in september_rows)
    assert deliveries[1].source_version == latest.replace(tzinfo=dt.UTC).isoformat()


@time_machine.travel(NOW, tick=True)
def test_it_selects_only_the_needed_columns_and_pages_the_rows(account, billing_table, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="attribution.connectors.gcp")
    connector = GcpBillingConnector(account)
    october = next(d for d in connector.discover() if d.billing_period_start == OCTOBER)
    with october.files[0].open() as stream:
        lines = stream.read().splitlines()

    (query,) = [sql for sql in billing_table.queries if "inferensys:period" in sql]
    select_list = re.search(r"SELECT (.*)\nFROM", query).group(1)
    for unneeded in (
        "currency_conversion_rate",
        "ancestors",
        "ancestry_numbers",
        "publisher_type",
        "*",
    ):
        assert unneeded not in select_list
    assert "_PARTITIONTIME >= TIMESTAMP('2026-09-29T00:00:00+00:00')" in query
    # The dry run came first, and its estimate was logged.
    assert billing_table.dry_runs == [query]
    assert any("dry run estimates" in record.getMessage() for record in caplog.records)
    # Rows were paged (5,000 a page), not fetched in one response.
    assert billing_table.page_sizes and set(billing_table.page_sizes) - {1, 2} == {5000}
    assert len(lines) == sum(1 for r in billing_table.tables[TABLE].rows if r["invoice"]["month"] == "202610")
    assert b'"invoice":{"month":"202610"}' in lines[0]
    # The price sub-fields the parser reads (FOCUS ContractedUnitPrice, SkuPriceDetails), those the
    # table has: the stand-in's older schema has no list_price.
    assert (
        "STRUCT(price.effective_price AS effective_price, price.tier_start_amount AS tier_start_amount, "
        "price.unit AS unit, price.pricing_unit_quantity AS pricing_unit_quantity) AS price" in select_list
    )
    assert b'"price":{"effective_price":' in lines[0]


@time_machine.travel(NOW, tick=True)
def test_it_reingests_a_restated_month_whole_and_skips_an_unchanged_one(account, billing_table, tmp_path):
    sync_once(account, tmp_path / "first")
    september_before, _e, rows_before = period_totals("gcp-prod", SEPTEMBER)
    october_runs = IngestRun.objects.filter(account=account, billing_period_start=OCTOBER).count()

    # A late correction for September arrives with a later export_time.
    correction_time = dt.datetime(2026, 10, 3, 6, 12, 9, tzinfo=dt.UTC)
    table = billing_table.tables[TABLE]
    table.rows = restated(
        table.rows, month="202609", export_time=correction_time, extra_cost=Decimal("12.345678")
    )
    queries_before = len(billing_table.queries)
    deliveries, changed = sync_once(account, tmp_path / "second")

    assert changed == [SEPTEMBER]
    september = next(d for d in deliveries if d.billing_period_start == SEPTEMBER)
    assert september.source_version == correction_time.isoformat()
    september_after, _e, rows_after = period_totals("gcp-prod", SEPTEMBER)
    assert september_after == september_before + Decimal("12.345678")
    assert rows_after == rows_before + 1
    # October was not re-read: one discovery query and one September query this time.
    new_queries = billing_table.queries[queries_before:]
    assert len(new_queries) == 2 and "inferensys:period 202609" in new_queries[1]
    assert IngestRun.objects.filter(account=account, billing_period_start=OCTOBER).count() == october_runs
    # Discovery scanned only from the watermark minus the re-scan window (3 days).
    watermark = max(
        v.watermark
        for v in BillingPeriodVersion.objects.filter(account=account).exclude(billing_period_start=SEPTEMBER)
    )
    since = max(watermark, dt.datetime(2026, 10, 1, 11, tzinfo=dt.UTC))
    assert "_PARTITIONTIME >= TIMESTAMP(" in new_queries[0]
    assert dt.datetime.fromisoformat(re.search(r"TIMESTAMP\('([^']+)'\)", new_queries[0]).group(1)) <= since


def test_it_marks_a_month_final_after_the_invoice_closes_and_exports_go_quiet(account, billing_table):
    with time_machine.travel(dt.datetime(2026, 10, 20, tzinfo=dt.UTC), tick=True):
        deliveries = GcpBillingConnector(account).discover()
    assert {d.billing_period_start: d.is_final for d in deliveries} == {OCTOBER: False, SEPTEMBER: True}


def test_it_falls_back_to_export_time_on_a_view(account, billing_table, tmp_path):
    billing_table.tables[TABLE].kind = "VIEW"
    with time_machine.travel(NOW, tick=True):
        deliveries = GcpBillingConnector(account).discover()
        with deliveries[0].files[0].open() as stream:
            assert stream.read(1) == b"{"
    assert all("_PARTITIONTIME" not in sql for sql in billing_table.queries)
    assert "export_time >= TIMESTAMP(" in billing_table.queries[-1]


def test_it_rejects_a_bad_token_clearly_and_changes_nothing(account, billing_table, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_GCP_TOKEN", "ya29.expired")
    report = GcpBillingConnector(account).test_connection()
    assert not report.ok and report.error_kind == "authentication"
    assert "authentication failed" in report.message and "ya29" not in report.message
    with pytest.raises(ConnectorError) as raised:
        GcpBillingConnector(account).discover()
    assert raised.value.error_kind == "authentication" and not raised.value.transient
    assert CostLineItem.objects.count() == 0 and IngestRun.objects.count() == 0


def test_it_names_the_missing_table(account, billing_table):
    account.source_settings = {**account.source_settings, "table": "acme-billing.billing_export.nope"}
    report = GcpBillingConnector(account).test_connection()
    assert report.error_kind == "not_found"
    assert "acme-billing.billing_export.nope not found" in report.message
    assert "Cloud Billing export to BigQuery is enabled" in report.message
    with pytest.raises(ConnectorError) as raised:
        GcpBillingConnector(account).discover()
    assert raised.value.error_kind == "not_found" and IngestRun.objects.count() == 0


def test_it_names_the_missing_job_permission(account, billing_table):
    billing_table.denied_job_projects.add("acme-billing")
    report = GcpBillingConnector(account).test_connection()
    assert report.error_kind == "permission"
    assert "bigquery.jobs.create" in report.message and "roles/bigquery.jobUser" in report.message


def test_it_reports_a_working_connection(account, billing_table):
    report = GcpBillingConnector(account).test_connection()
    assert report.ok, report.message
    assert [check.name for check in report.checks] == [
        "credentials",
        f"bigquery.tables.get on {TABLE}",
        "bigquery.jobs.create in project acme-billing",
        "export has rows",
    ]


@time_machine.travel(NOW, tick=True)
def test_the_sync_service_lands_both_months_and_skips_them_next_time(account, billing_table):
    from attribution.connectors.services import account_sync

    first = account_sync(account_id=account.pk, trigger="manual", inline_ingest=True)
    assert first.state == "succeeded", first.error
    assert (first.periods_found, first.periods_changed) == (2, 2)
    rows = billing_table.tables[TABLE].rows
    for period, month in ((SEPTEMBER, "202609"), (OCTOBER, "202610")):
        expected = sum(
            (Decimal(str(r["cost"])) + sum((Decimal(str(c["amount"])) for c in r["credits"]), Decimal(0)))
            for r in rows
            if r["invoice"]["month"] == month
        )
        billed, _effective, count = period_totals("gcp-prod", period)
        assert billed == expected and count == sum(1 for r in rows if r["invoice"]["month"] == month)

    second = account_sync(account_id=account.pk, trigger="manual", inline_ingest=True)
    assert second.state == "succeeded" and (second.periods_changed, second.periods_skipped) == (0, 2)
    # The second discovery scanned from the stored watermark minus the re-scan window only.
    assert "_PARTITIONTIME >= TIMESTAMP(" in billing_table.queries[-1]
