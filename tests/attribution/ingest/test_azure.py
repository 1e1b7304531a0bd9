"""Azure cost details over the real samples: EA actual + amortized combined per period, MCA
camelCase, legacy pay-as-you-go, BOM, M/D/YYYY dates, brace-less Tags, a bogus currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from attribution.ingest import selectors as ingest_selectors
from attribution.models import CostLineItem, RejectedRow
from tests.attribution.conftest import csv_rows, decimal_sum

pytestmark = pytest.mark.django_db(transaction=True)

EA = "azure/finops-toolkit-ea"


def test_it_combines_actual_and_amortized_so_both_totals_hold(ingest, shared_billing_data):
    actual = shared_billing_data / EA / "EA_ActualCost_Small.csv"
    amortized = shared_billing_data / EA / "EA_AmortizedCost_Small.csv"
    actual_rows, amortized_rows = csv_rows(actual), csv_rows(amortized)

    (run,) = ingest([actual, amortized], account="azure-prod", provider="azure")

    items = CostLineItem.objects.filter(ingest_run=run)
    billed = sum((i.billed_cost for i in items), Decimal(0))
    effective = sum((i.effective_cost for i in items), Decimal(0))
    assert billed == decimal_sum(r["Cost"] for r in actual_rows).quantize(Decimal("1e-10"))
    assert effective == decimal_sum(r["Cost"] for r in amortized_rows).quantize(Decimal("1e-10"))
    merged = int(run.source_sums["rows_merged"])
    assert merged == 10  # every actual usage row has its amortized twin in these samples
    assert run.rows_in_source == len(actual_rows) + len(amortized_rows) == run.rows_loaded + merged
    # The files' sums are the database's plus what the merged actual twins held beyond their billed
    # cost (both exports state the same usage's list cost): the Ingestion page's check says equal.
    assert Decimal(run.source_sums["merged_list_cost"]) > 0
    assert Decimal(run.source_sums["list_cost"]) == Decimal(run.database_sums["list_cost"]) + Decimal(
        run.source_sums["merged_list_cost"]
    )
    assert ingest_selectors._sum_check(run) == (True, [])
    purchase = items.get(charge_category="Purchase")
    assert (purchase.billed_cost, purchase.effective_cost) == (Decimal("3.25"), Decimal("0"))
    covered = items.filter(pricing_category="Committed", charge_category="Usage")
    assert covered and all(i.billed_cost == 0 and i.effective_cost > 0 for i in covered)
    assert run.billing_period_start == dt.date(2023, 9, 1)
    assert items.first().billing_period_end_at == dt.datetime(2023, 10, 1, tzinfo=dt.UTC)


def test_it_loads_an_actual_file_alone_with_purchases_out_of_effective_cost(ingest, shared_billing_data):
    path = shared_billing_data / EA / "EA_ActualCost_Small.csv"
    rows = csv_rows(path)

    (run,) = ingest([path], account="azure-prod", provider="azure", dataset="actual")

    total = decimal_sum(r["Cost"] for r in rows).quantize(Decimal("1e-10"))
    assert run.rows_loaded == len(rows) == 11
    assert Decimal(run.database_sums["billed_cost"]) == total
    assert Decimal(run.database_sums["effective_cost"]) == total - Decimal("3.25")
    tagged = CostLineItem.objects.filter(tag_set__normalized_tags__costcenter="1234").count()
    assert tagged == sum(1 for r in rows if '"CostCenter": "1234"' in r["Tags"])


def test_it_reads_mca_camel_case_and_legacy_exports_and_rejects_a_bogus_currency(ingest, shared_billing_data):
    koku = shared_billing_data / "azure/koku"
    paths = sorted(koku.glob("*.csv"))

    runs = ingest(paths, account="azure-prod", provider="azure")

    by_period = {run.billing_period_start: run for run in runs}
    # azure_version_2.csv carries BillingCurrencyCode "MC": every row rejected, with its line.
    bogus = by_period[dt.date(2020, 9, 1)]
    assert (bogus.rows_loaded, bogus.rows_rejected) == (0, 5)
    assert set(RejectedRow.objects.filter(ingest_run=bogus).values_list("reason", flat=True)) == {
        "billing currency 'MC' is not an ISO 4217 code"
    }
    mca = by_period[dt.date(2023, 8, 1)]
    mca_rows = csv_rows(koku / "camel_azure_version_2.csv")
    assert mca.rows_loaded == len(mca_rows)
    assert Decimal(mca.database_sums["billed_cost"]) == decimal_sum(
        r["costInBillingCurrency"] for r in mca_rows
    ).quantize(Decimal("1e-10"))
    legacy = by_period[dt.date(2019, 7, 1)]
    legacy_rows = csv_rows(koku / "azure_camelCased.csv") + csv_rows(
        koku / "costreport_a243c6f2-199f-4074-9a2c-40e671cf1584.csv"
    )
    assert legacy.rows_loaded == len(legacy_rows)
    assert Decimal(legacy.database_sums["billed_cost"]) == decimal_sum(
        r.get("preTaxCost") or r.get("PreTaxCost") for r in legacy_rows
    ).quantize(Decimal("1e-10"))


def test_a_header_only_export_succeeds_with_no_rows(ingest, shared_billing_data):
    path = shared_billing_data / EA / "EA_NoRows.csv"

    (run,) = ingest([path], account="azure-prod", provider="azure", billing_period=dt.date(2023, 9, 1))

    assert (run.state, run.rows_in_source, run.rows_loaded) == ("succeeded", 0, 0)


def test_it_reads_tags_without_braces(ingest, shared_billing_data):
    path = shared_billing_data / "azure/opencost-billingexports/values_MissingBrackets.csv"

    (run,) = ingest([path], account="azure-prod", provider="azure")

    item = CostLineItem.objects.get(ingest_run=run)
    assert item.tags["resourceNameSuffix"] == "12345678"
    assert item.normalized_tags["aksengineversion"] == "aks-release-v0.47.0-1-aks"


def test_it_reads_localized_headers(ingest, shared_billing_data):
    path = shared_billing_data / "azure/opencost-billingexports/headersets_German.csv"

    (run,) = ingest([path], account="azure-prod", provider="azure")

    item = CostLineItem.objects.get(ingest_run=run)
    assert (item.billed_cost, item.billing_currency, item.service_name) == (
        Decimal("0.075"),
        "USD",
        "Load Balancer",
    )
    assert item.pricing_unit == "100 Hours" and item.charge_period_start.date() == dt.date(2021, 2, 2)


def test_it_rejects_rows_shorter_than_the_header(ingest, shared_billing_data):
    path = shared_billing_data / "azure/opencost-billingexports/values_Template.csv"

    (run,) = ingest([path], account="azure-prod", provider="azure")

    assert run.rows_rejected == run.rows_in_source == len(csv_rows(path)) == 87
    assert RejectedRow.objects.filter(ingest_run=run, reason__startswith="expected 11 fields").count() == 87
