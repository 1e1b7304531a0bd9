"""The GCP connector on Google's FOCUS table/view, against the loopback BigQuery REST server with
the real google-cloud-bigquery client, and the real FOCUS ingest behind it."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine

from attribution.connectors.base import ConnectorError
from attribution.connectors.gcp import GcpBillingConnector
from attribution.models import BillingPeriodVersion, IngestRun
from tests.factories import CloudAccountFactory
from tests.standins.bigquery import FOCUS_SCHEMA, BigQueryState, Table, demo_table_rows, focus_rows
from tests.standins.demo import delivery_ingest, period_totals

pytest_plugins = ["tests.standins.bigquery", "tests.standins.demo"]

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "ya29.test-access-token"
TABLE = "acme-billing.gcp_billing_immutable_01ABCD_234567_89EF01_us.gcp_billing_export_focus_01ABCD"
SEPTEMBER, OCTOBER = dt.date(2026, 9, 1), dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 10, 3, 9, 0, tzinfo=dt.UTC)
WITHOUT_EXPORT_TIME = [f for f in FOCUS_SCHEMA if f["name"] != "x_ExportTime"]


@pytest.fixture(scope="module")
def gcp_focus_rows(demo_exports):
    paths = [path for entry in demo_exports.entries("gcp") for path in demo_exports.files(entry)]
    return focus_rows(demo_table_rows(paths))


@pytest.fixture
def focus_table(bigquery_server, gcp_focus_rows):
    state: BigQueryState = bigquery_server.state
    state.token = TOKEN
    state.tables[TABLE] = Table(schema=FOCUS_SCHEMA, rows=list(gcp_focus_rows), kind="VIEW")
    return state


@pytest.fixture
def account(bigquery_server, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_GCP_TOKEN", TOKEN)
    return CloudAccountFactory(
        provider="gcp",
        slug="gcp-focus",
        source_settings={
            "table": TABLE,
            "project": "acme-billing",
            "credentials": "env:INFERENSYS_TEST_GCP_TOKEN",
            "api_endpoint": bigquery_server.url,
        },
    )


def sync_once(account):
    """Discover, then ingest the periods whose version changed (what the sync service does)."""
    deliveries = GcpBillingConnector(account).discover()
    changed = []
    for delivery in deliveries:
        stored = BillingPeriodVersion.objects.filter(
            account=account, billing_period_start=delivery.billing_period_start
        ).first()
        if stored and stored.source_version == delivery.source_version:
            continue
        runs = delivery_ingest(account=account, delivery=delivery)
        assert all(run.state == "succeeded" for run in runs), [run.error for run in runs]
        watermark = delivery.details.get("watermark")
        BillingPeriodVersion.objects.update_or_create(
            account=account,
            billing_period_start=delivery.billing_period_start,
            defaults={
                "source_version": delivery.source_version,
                "watermark": dt.datetime.fromisoformat(watermark) if watermark else None,
                "is_final": delivery.is_final,
            },
        )
        changed.append(delivery.billing_period_start)
    return deliveries, changed


def source_totals(rows, period: dt.date) -> tuple[Decimal, int]:
    selected = [row for row in rows if row["BillingPeriodStart"].date() == period]
    return sum((row["BilledCost"] for row in selected), Decimal(0)), len(selected)


@pytest.mark.parametrize("schema", [FOCUS_SCHEMA, WITHOUT_EXPORT_TIME], ids=["x_ExportTime", "fingerprint"])
@time_machine.travel(NOW, tick=True)
def test_it_lands_two_focus_months_to_the_cent_and_skips_them_next_time(
    account, focus_table, demo_exports, schema
):
    table = focus_table.tables[TABLE]
    table.schema = schema
    deliveries, changed = sync_once(account)

    assert [d.billing_period_start for d in deliveries] == [OCTOBER, SEPTEMBER]
    assert changed == [OCTOBER, SEPTEMBER]
    assert {d.source_format for d in deliveries} == {"focus"}
    for period, label in ((SEPTEMBER, "2026-09"), (OCTOBER, "2026-10")):
        expected, count = source_totals(table.rows, period)
        billed, effective, rows = period_totals("gcp-focus", period)
        assert (billed, effective, rows) == (expected, expected, count)
        # The same totals as the demo's own detailed export of that month.
        entry = demo_exports.entry("gcp", label)
        assert billed == Decimal(entry["billed_cost"]) and rows == entry["row_count"]
    if schema is FOCUS_SCHEMA:
        latest = max(row["x_ExportTime"] for row in table.rows if row["BillingPeriodStart"].month == 9)
        assert (
            deliveries[1].source_version
            == dt.datetime.strptime(latest, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.UTC).isoformat()
        )
    else:
        assert all(d.source_version.startswith("sha256:") for d in deliveries)

    runs = IngestRun.objects.filter(account=account).count()
    period_queries = len([sql for sql in focus_table.queries if "focus-period" in sql])
    deliveries, changed = sync_once(account)
    assert changed == [] and len(deliveries) == 2
    assert IngestRun.objects.filter(account=account).count() == runs
    assert len([sql for sql in focus_table.queries if "focus-period" in sql]) == period_queries


@time_machine.travel(NOW, tick=True)
def test_it_selects_only_the_needed_focus_columns(account, focus_table):
    october = GcpBillingConnector(account).discover()[0]
    with october.files[0].open() as stream:
        header = stream.readline().decode().strip().split(",")
        first = stream.readline().decode()

    (query,) = [sql for sql in focus_table.queries if "focus-period" in sql]
    select_list = re.search(r"SELECT (.*)\nFROM", query).group(1).split(", ")
    assert select_list == header
    for unneeded in ("x_Credits", "x_CostType", "x_ExportTime", "*"):
        assert unneeded not in select_list
    # FOCUS conditional columns the table has are read too (ListUnitPrice, migration 0022).
    assert {
        "BilledCost",
        "EffectiveCost",
        "BillingPeriodStart",
        "ChargeCategory",
        "Tags",
        "ListUnitPrice",
    } <= set(header)
    # Bounded by the month and by the version the run was planned with; dry run first.
    assert "BillingPeriodStart >= TIMESTAMP('2026-10-01')" in query
    assert "BillingPeriodStart < TIMESTAMP('2026-11-01')" in query
    assert "x_ExportTime <= TIMESTAMP(" in query
    assert focus_table.dry_runs == [query]
    # Tags arrive as one JSON object per row.
    assert '"{' in first


@time_machine.travel(NOW, tick=True)
def test_it_reads_a_restated_fingerprinted_month_and_refuses_a_stale_version(account, focus_table):
    table = focus_table.tables[TABLE]
    table.schema = WITHOUT_EXPORT_TIME
    # A slice of each month is enough here (the exact-totals test serves every row).
    table.rows = [r for r in table.rows if r["BillingPeriodStart"].month == 9][-300:] + [
        r for r in table.rows if r["BillingPeriodStart"].month == 10
    ][-300:]
    sync_once(account)
    before, _e, rows_before = period_totals("gcp-focus", SEPTEMBER)

    correction = {**next(r for r in table.rows if r["BillingPeriodStart"].month == 9)}
    correction.update(BilledCost=Decimal("12.345678"), EffectiveCost=Decimal("12.345678"))
    correction.update(ChargeCategory="Adjustment", Tags=[])
    table.rows = [*table.rows, correction]
    connector = GcpBillingConnector(account)
    stale = BillingPeriodVersion.objects.get(account=account, billing_period_start=SEPTEMBER).source_version
    # A worker re-opening the version discovered before the correction finds it gone.
    with pytest.raises(ConnectorError, match="changed since it was discovered"):
        with connector.open_uri(f"bigquery://{TABLE}?billing_period=202609", stale) as stream:
            stream.read()

    _deliveries, changed = sync_once(account)
    assert changed == [SEPTEMBER]
    after, _e, rows_after = period_totals("gcp-focus", SEPTEMBER)
    assert (after, rows_after) == (before + Decimal("12.345678"), rows_before + 1)


def test_it_takes_the_focus_path_from_the_setting_or_the_schema(account, focus_table):
    assert GcpBillingConnector(account).is_focus
    account.source_settings = {**account.source_settings, "schema": "detailed"}
    assert not GcpBillingConnector(account).is_focus
    account.source_settings = {**account.source_settings, "schema": "bogus"}
    with pytest.raises(ConnectorError, match="must be 'focus'"):
        GcpBillingConnector(account).is_focus  # noqa: B018
    report = GcpBillingConnector(
        CloudAccountFactory(
            provider="gcp", slug="gcp-f2", source_settings={**account.source_settings, "schema": "focus"}
        )
    ).test_connection()
    assert report.ok, report.message
