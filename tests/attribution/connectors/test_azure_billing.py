"""The Azure billing connector: Cost Management exports in Azurite (real azure-storage-blob), the
Query API on a loopback https server (real azure-mgmt-costmanagement), the real ingest behind."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import time
from decimal import Decimal

import pytest
import time_machine

from attribution.connectors.azure import AzureBillingConnector
from attribution.connectors.base import ConnectorError
from attribution.models import BillingPeriodVersion, CostLineItem, IngestRun
from tests.factories import CloudAccountFactory
from tests.standins.demo import delivery_ingest, period_totals

pytest_plugins = ["tests.standins.azurite", "tests.standins.azure_management", "tests.standins.demo"]
pytestmark = pytest.mark.django_db(transaction=True)

SEPTEMBER, OCTOBER, NOVEMBER = dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)
NOW = dt.datetime(2026, 10, 3, 9, 0, tzinfo=dt.UTC)
SCOPE = "/providers/Microsoft.Billing/billingAccounts/acme/billingProfiles/K7QX-3RTD-BG7-PGB"
_containers = itertools.count()


@pytest.fixture
def container(azurite, demo_exports, monkeypatch):
    """A fresh container holding the demo's export runs, as Cost Management delivers them."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("INFERENSYS_TEST_AZURE_STORAGE", azurite.connection_string)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"cost-exports-{next(_containers)}"
    client = service.create_container(name)
    source = demo_exports.root / "azure" / "cost-exports"
    for path in sorted(source.rglob("*")):
        if path.is_file():
            client.upload_blob(path.relative_to(source).as_posix(), path.read_bytes())
    yield client
    client.delete_container()


@pytest.fixture
def account(container, management_server, local_ca, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_AZURE_TOKEN", management_server.state.token)
    return CloudAccountFactory(
        provider="azure",
        slug="azure-prod",
        source_settings={
            "storage_credential": "env:INFERENSYS_TEST_AZURE_STORAGE",
            "container": container.container_name,
            "directory": "mca/acme-prod",
            "actual_export_name": "acme-actual-cost",
            "amortized_export_name": "acme-amortized-cost",
            "credentials": "env:INFERENSYS_TEST_AZURE_TOKEN",
            "cost_scope": SCOPE,
            "management_endpoint": management_server.url,
            "ca_bundle": str(local_ca.ca_pem),
        },
    )


def sync_once(account, tmp_path):
    """What the sync does with a connector: discover, ingest the periods whose version changed."""
    deliveries = AzureBillingConnector(account).discover()
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
            defaults={"source_version": delivery.source_version, "is_final": delivery.is_final},
        )
        changed.append(delivery.billing_period_start)
    return deliveries, changed


@time_machine.travel(NOW, tick=True)
def test_it_syncs_two_periods_of_both_exports_to_the_exact_totals(account, demo_exports, tmp_path):
    deliveries, changed = sync_once(account, tmp_path)

    assert changed == [OCTOBER, SEPTEMBER]
    for period, label in ((SEPTEMBER, "2026-09"), (OCTOBER, "2026-10")):
        actual = demo_exports.entry("azure", label, "actual")
        amortized = demo_exports.entry("azure", label, "amortized")
        billed, effective, _rows = period_totals("azure-prod", period)
        assert billed == Decimal(actual["billed_cost"]) == Decimal(actual["native_cost_sum"])
        assert effective == Decimal(amortized["effective_cost"]) == Decimal(amortized["native_cost_sum"])
        delivery = next(d for d in deliveries if d.billing_period_start == period)
        assert delivery.source_version == f"actual={actual['run_id']};amortized={amortized['run_id']}"
        assert sorted(f.dataset for f in delivery.files) == ["actual", "amortized"]
    assert not any(d.is_final for d in deliveries)


def test_it_marks_a_month_final_only_after_a_run_submitted_after_the_close(account, container):
    with time_machine.travel(dt.datetime(2026, 10, 20, tzinfo=dt.UTC), tick=True):
        deliveries = AzureBillingConnector(account).discover()
    # September's newest run was submitted on October 1st, before the invoice closed.
    assert {d.billing_period_start: d.is_final for d in deliveries} == {OCTOBER: False, SEPTEMBER: False}
    folder = deliveries[1].details["runs"]["actual"]["folder"]
    manifest = json.loads(container.download_blob(f"{folder}/manifest.json").readall())
    for dataset in ("actual", "amortized"):
        run_folder = deliveries[1].details["runs"][dataset]["folder"]
        document = json.loads(container.download_blob(f"{run_folder}/manifest.json").readall())
        document["runInfo"]["submittedTime"] = "2026-10-09T02:31:07.0000000Z"
        container.upload_blob(f"{run_folder}/manifest.json", json.dumps(document), overwrite=True)
    assert manifest["runInfo"]["endDate"].startswith("2026-09-30")
    with time_machine.travel(dt.datetime(2026, 10, 20, tzinfo=dt.UTC), tick=True):
        deliveries = AzureBillingConnector(account).discover()
    assert {d.billing_period_start: d.is_final for d in deliveries} == {OCTOBER: False, SEPTEMBER: True}


@time_machine.travel(NOW, tick=True)
def test_it_replaces_a_period_when_a_new_run_lands_and_skips_the_unchanged_one(account, container, tmp_path):
    deliveries, _ = sync_once(account, tmp_path / "first")
    october = next(d for d in deliveries if d.billing_period_start == OCTOBER)
    billed_before, effective_before, _ = period_totals("azure-prod", OCTOBER)
    september_runs = IngestRun.objects.filter(account=account, billing_period_start=SEPTEMBER).count()

    # A new run of the actual export for October: same rows plus one more day of usage.
    old_folder = october.details["runs"]["actual"]["folder"]
    new_run = "5d1c2f7e-9a0b-4c3d-8e6f-112233445566"
    new_folder = old_folder.rsplit("/", 1)[0] + "/" + new_run
    csv_text = container.download_blob(f"{old_folder}/part_1_0001.csv").readall().decode()
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    extra = dict(next(row for row in rows if row["chargeType"] == "Usage"))
    extra["costInBillingCurrency"] = "7.2500000000"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows([*rows, extra])
    new_csv = buffer.getvalue()
    manifest = json.loads(container.download_blob(f"{old_folder}/manifest.json").readall())
    manifest["runInfo"].update(runId=new_run, submittedTime="2026-10-03T02:31:07.0000000Z")
    manifest["blobs"] = [{"blobName": f"{new_folder}/part_1_0001.csv", "byteCount": len(new_csv)}]
    container.upload_blob(f"{new_folder}/part_1_0001.csv", new_csv.encode())
    container.upload_blob(f"{new_folder}/manifest.json", json.dumps(manifest))

    deliveries, changed = sync_once(account, tmp_path / "second")

    assert changed == [OCTOBER]
    assert next(d for d in deliveries if d.billing_period_start == OCTOBER).source_version.startswith(
        f"actual={new_run};"
    )
    billed_after, effective_after, _ = period_totals("azure-prod", OCTOBER)
    assert billed_after == billed_before + Decimal("7.25")
    assert effective_after == effective_before
    assert IngestRun.objects.filter(account=account, billing_period_start=SEPTEMBER).count() == september_runs


def test_it_names_a_missing_container_and_changes_nothing(account):
    account.source_settings = {**account.source_settings, "container": "no-such-container"}
    report = AzureBillingConnector(account).test_connection()
    assert report.error_kind == "not_found"
    assert "container no-such-container not found in storage account devstoreaccount1" in report.message
    with pytest.raises(ConnectorError) as raised:
        AzureBillingConnector(account).discover()
    assert raised.value.error_kind == "not_found"
    assert IngestRun.objects.count() == 0 and CostLineItem.objects.count() == 0


def test_it_rejects_a_wrong_storage_key_as_authentication(account, azurite, monkeypatch):
    wrong = azurite.connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA")
    monkeypatch.setenv("INFERENSYS_TEST_AZURE_STORAGE", wrong)
    report = AzureBillingConnector(account).test_connection()
    assert report.error_kind == "authentication", report.message
    assert "AAAA" not in report.message
    assert IngestRun.objects.count() == 0


def test_it_reports_a_working_connection(account):
    report = AzureBillingConnector(account).test_connection()
    assert report.ok, report.message
    assert [c.name for c in report.checks] == [
        "credentials",
        f"container {account.source_settings['container']}",
        "export acme-actual-cost",
        "export acme-amortized-cost",
    ]


# --- the Query API for month-to-date figures ------------------------------------------------------

VM = "/subscriptions/s/resourcegroups/rg-ml/providers/microsoft.compute/virtualmachines/a"
STORAGE = "/subscriptions/s/resourcegroups/rg-ml/providers/microsoft.storage/storageaccounts/b"
AI = "/subscriptions/s/resourcegroups/rg-ai/providers/microsoft.cognitiveservices/accounts/c"
NOVEMBER_ROWS = [
    [812.4401, 20261101, VM, "Virtual Machines", "USD"],
    [19.97, 20261101, STORAGE, "Storage", "USD"],
    [803.1, 20261102, VM, "Virtual Machines", "USD"],
    [0.000123, 20261102, STORAGE, "Storage", "USD"],
    [44.5, 20261102, AI, "Foundry Models", "USD"],
]


@pytest.fixture
def query_account(account, management_server):
    management_server.state.query_rows = NOVEMBER_ROWS
    account.source_settings = {**account.source_settings, "month_to_date_query": True}
    account.save()
    return account


@time_machine.travel(dt.datetime(2026, 11, 3, 8, tzinfo=dt.UTC), tick=True)
def test_it_fills_the_month_to_date_from_the_query_api_until_the_export_lands(
    query_account, management_server, container, tmp_path
):
    management_server.state.throttle_once_seconds = 1
    started = time.monotonic()
    deliveries, changed = sync_once(query_account, tmp_path / "first")
    elapsed = time.monotonic() - started

    estimate = deliveries[0]
    assert estimate.billing_period_start == NOVEMBER and not estimate.is_final
    assert estimate.source_version == "query:2026-11-03" and estimate.details["estimate"] == "month-to-date"
    # The 429 was waited out for the time its retry-after headers asked.
    assert management_server.state.throttled == 1 and elapsed >= 1.0
    # nextLink paging: 5 rows, 2 a page -> 3 pages, the same body each time.
    bodies = management_server.state.query_bodies
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["timePeriod"] == {"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T23:59:59Z"}
    billed, effective, rows = period_totals("azure-prod", NOVEMBER)
    assert rows == 5 and billed == effective == Decimal("1680.010223")

    # November's first export run lands: it replaces the estimate whole.
    demo_folder = "mca/acme-prod/acme-actual-cost/20261001-20261031"
    for blob in list(container.list_blobs(name_starts_with=demo_folder)):
        if blob.name.endswith("manifest.json"):
            manifest = json.loads(container.download_blob(blob.name).readall())
            break
    run = "0b7f9a2c-1111-4a2b-9c3d-445566778899"
    folder = f"mca/acme-prod/acme-actual-cost/20261101-20261130/{run}"
    csv_text = (
        "date,costInBillingCurrency,billingCurrency,ResourceId,meterCategory,chargeType,billingPeriodStartDate\r\n"
        "11/01/2026,812.44,USD,/subscriptions/s/vm/a,Virtual Machines,Usage,11/01/2026\r\n"
        "11/02/2026,803.10,USD,/subscriptions/s/vm/a,Virtual Machines,Usage,11/01/2026\r\n"
    )
    manifest["runInfo"].update(runId=run, submittedTime="2026-11-03T02:31:07.0000000Z",
                               startDate="2026-11-01T00:00:00", endDate="2026-11-02T00:00:00")  # fmt: skip
    manifest["blobs"] = [{"blobName": f"{folder}/part_1_0001.csv"}]
    container.upload_blob(f"{folder}/part_1_0001.csv", csv_text.encode())
    container.upload_blob(f"{folder}/manifest.json", json.dumps(manifest))

    deliveries, changed = sync_once(query_account, tmp_path / "second")
    assert changed == [NOVEMBER]
    assert deliveries[0].source_version == f"actual={run}"
    billed, _e, rows = period_totals("azure-prod", NOVEMBER)
    assert rows == 2 and billed == Decimal("1615.54")


@time_machine.travel(dt.datetime(2026, 11, 3, 8, tzinfo=dt.UTC), tick=True)
def test_it_gives_up_on_throttling_beyond_the_wait_budget(query_account, management_server):
    query_account.source_settings = {**query_account.source_settings, "max_throttle_wait_seconds": 1}
    management_server.state.throttle_once_seconds = 5
    delivery = AzureBillingConnector(query_account).discover()[0]
    with pytest.raises(ConnectorError) as raised:
        delivery.files[0].open().read()
    assert raised.value.transient and raised.value.retry_after == 5
    assert "HTTP 429" in str(raised.value)


@time_machine.travel(dt.datetime(2026, 11, 3, 8, tzinfo=dt.UTC), tick=True)
def test_it_rejects_a_bad_query_token_clearly(query_account, management_server, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_AZURE_TOKEN", "not-the-token")
    report = AzureBillingConnector(query_account).test_connection()
    assert report.error_kind == "authentication"
    assert "Cost Management query" in report.message and "not-the-token" not in report.message
    assert IngestRun.objects.count() == 0


@time_machine.travel(NOW, tick=True)
def test_the_sync_service_lands_actual_and_amortized_exports_and_skips_them_next_time(account, demo_exports):
    from attribution.connectors.services import account_sync

    first = account_sync(account_id=account.pk, trigger="manual", inline_ingest=True)
    assert first.state == "succeeded", first.error
    assert (first.periods_found, first.periods_changed) == (2, 2)
    for period, label in ((SEPTEMBER, "2026-09"), (OCTOBER, "2026-10")):
        billed, effective, _rows = period_totals("azure-prod", period)
        # BilledCost from the actual export, EffectiveCost from the amortized one, both through
        # streamed sources (the dataset travels with each remote file).
        assert billed == Decimal(demo_exports.entry("azure", label, "actual")["billed_cost"])
        assert effective == Decimal(demo_exports.entry("azure", label, "amortized")["effective_cost"])

    second = account_sync(account_id=account.pk, trigger="manual", inline_ingest=True)
    assert second.state == "succeeded" and (second.periods_changed, second.periods_skipped) == (0, 2)
