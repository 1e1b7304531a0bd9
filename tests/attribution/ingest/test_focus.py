"""FOCUS 1.0-1.3 from any provider: the spec's own scenario files (real), and fixtures built from
the FOCUS column definitions (CSV, gzip, Parquet; 1.3 names; NULL/empty nulls; zoned and naive
timestamps). Expected totals are computed here from the files with the csv module."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from attribution.ingest.detect import format_detect
from attribution.ingest.formats.focus import FocusParser
from attribution.models import CostLineItem, DailyCost, RejectedRow, TagKey
from tests.attribution.conftest import csv_rows, decimal_sum
from tests.attribution.ingest_fixtures import (
    FOCUS_COLUMNS,
    csv_write,
    focus_parquet_write,
    focus_row,
    view_totals,
)

pytestmark = pytest.mark.django_db(transaction=True)

SCENARIOS = "focus/focus-spec-scenarios"
SCALE = Decimal("1e-10")


def _valid_timestamp(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def test_it_detects_every_spec_scenario_as_focus(shared_billing_data):
    paths = sorted((shared_billing_data / SCENARIOS).glob("*.csv"))

    assert len(paths) == 11
    assert {format_detect(path) for path in paths} == {FocusParser}


def test_it_loads_the_spec_scenarios_to_the_cent_and_rejects_the_impossible_hour(ingest, shared_billing_data):
    paths = sorted((shared_billing_data / SCENARIOS).glob("*.csv"))
    rows = [(path, row) for path in paths for row in csv_rows(path)]
    # Two rows of the purchase scenarios end at "2023-02-01T30:00:00Z" (hour 30): not a time.
    bad = [(p, r) for p, r in rows if not _valid_timestamp(r["ChargePeriodEnd"])]
    good = [(p, r) for p, r in rows if _valid_timestamp(r["ChargePeriodEnd"])]

    (run,) = ingest(paths, account="focus-any", provider="aws")

    assert run.state == "succeeded" and run.billing_period_start == dt.date(2023, 1, 1)
    assert run.rows_in_source == len(rows) == 25
    assert (run.rows_loaded, run.rows_rejected) == (len(good), len(bad)) == (23, 2)
    count, billed, effective = view_totals("focus-any")
    assert count == len(good)
    assert billed == decimal_sum(r["BilledCost"] for _p, r in good) == Decimal("13153.25")
    assert effective == decimal_sum(r["EffectiveCost"] for _p, r in good)
    # Source sums cover every row; the rejected rows' amounts explain the gap exactly.
    assert Decimal(run.source_sums["billed_cost"]) == decimal_sum(r["BilledCost"] for _p, r in rows)
    assert Decimal(run.source_sums["rejected_billed_cost"]) == decimal_sum(r["BilledCost"] for _p, r in bad)
    reasons = set(RejectedRow.objects.filter(ingest_run=run).values_list("reason", flat=True))
    assert reasons == {"ChargePeriodEnd: '2023-02-01T30:00:00Z' is not a date"}
    # The account's currency stands in for the missing BillingCurrency column.
    assert set(CostLineItem.objects.values_list("billing_currency", flat=True)) == {"USD"}
    cells = DailyCost.objects.filter(account__slug="focus-any")
    assert sum(c.billed_cost for c in cells) == billed and sum(c.line_items for c in cells) == count


def test_purchase_rows_keep_effective_cost_zero_and_unused_commitment_stays_a_row(
    ingest, shared_billing_data
):
    path = (
        shared_billing_data
        / SCENARIOS
        / "zero_percent_utilization_without_commitment_discount_flexibility.csv"
    )

    ingest([path], account="focus-any", provider="azure")

    items = {(i.charge_category, i.pricing_category): i for i in CostLineItem.objects.all()}
    purchase = items[("Purchase", "Standard")]
    assert (purchase.billed_cost, purchase.effective_cost) == (Decimal("1.5"), Decimal(0))
    unused = items[("Usage", "Committed")]
    assert (unused.billed_cost, unused.effective_cost) == (Decimal(0), Decimal("1.5"))
    assert unused.commitment_discount_id == "<my-commitment-discount-id>"
    # Literal "null" is a null: no unit, no quantity on the purchase.
    assert purchase.consumed_quantity is None and purchase.consumed_unit == ""


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure", "oci"])
def test_a_focus_file_loads_into_an_account_of_any_provider(ingest, tmp_path, provider):
    path = csv_write(tmp_path / "focus.csv", FOCUS_COLUMNS, [focus_row(), focus_row(BilledCost="2.5")])

    (run,) = ingest([path], account=f"{provider}-focus", provider=provider)

    assert run.source_format == "focus" and run.rows_loaded == 2
    assert view_totals(f"{provider}-focus")[1] == Decimal("3.75")


def test_it_reads_every_focus_column_and_ignores_provider_extensions(ingest, tmp_path):
    path = csv_write(tmp_path / "focus.csv", FOCUS_COLUMNS, [focus_row()])

    ingest([path], account="aws-focus", provider="aws")

    item = CostLineItem.objects.get()
    assert (item.billed_cost, item.effective_cost, item.list_cost, item.contracted_cost) == (
        Decimal("1.25"), Decimal("1.25"), Decimal("1.5"), Decimal("1.25"),
    )  # fmt: skip
    assert (item.provider_name, item.publisher_name, item.invoice_issuer_name) == (
        "AWS", "Amazon Web Services, Inc.", "Amazon Web Services, Inc.",
    )  # fmt: skip
    assert (item.billing_account_id, item.sub_account_id, item.sub_account_name) == (
        "123456789012", "210987654321", "ml-prod",
    )  # fmt: skip
    assert (item.region_id, item.availability_zone, item.resource_id, item.resource_type) == (
        "us-east-1", "us-east-1a", "i-0abc", "Instance",
    )  # fmt: skip
    assert (item.service_name, item.service_category, item.sku_id, item.sku_price_id) == (
        "Amazon Elastic Compute Cloud", "Compute", "SKU1", "SKU1.PRICE",
    )  # fmt: skip
    assert (item.pricing_quantity, item.pricing_unit, item.consumed_quantity, item.charge_frequency) == (
        Decimal(1), "Hours", Decimal(1), "Usage-Based",
    )  # fmt: skip
    assert item.tags == {"user:team": "search", "env": "prod"}
    assert item.normalized_tags == {"team": "search", "env": "prod"}
    assert "x_ServiceCode" not in item.tags
    assert set(TagKey.objects.values_list("key", "normalized_key")) == {("user:team", "team"), ("env", "env")}


def test_it_reads_focus_1_3_names_nulls_and_zoned_or_naive_timestamps(ingest, tmp_path):
    header = [("ServiceProviderName" if c == "ProviderName" else c) for c in FOCUS_COLUMNS]
    header = [c.lower() if c == "SkuPriceId" else c for c in header]  # any case
    rows = [
        # Zoned: the billing period is the calendar date written, not shifted to UTC.
        focus_row(
            ProviderName="", ServiceProviderName="Oracle", BillingPeriodStart="2024-03-01T00:00:00+01:00",
            ChargePeriodStart="2024-03-01T00:30:00+01:00", ChargePeriodEnd="2024-03-01T01:30:00+01:00",
            ListCost="NULL", ContractedCost="", Tags="NULL", BillingCurrency="EUR", skupriceid="P-1",
        ),
        # Naive timestamps are UTC.
        focus_row(
            ServiceProviderName="Oracle", BillingPeriodStart="2024-03-01 00:00:00",
            ChargePeriodStart="2024-03-05 10:00:00", ChargePeriodEnd="2024-03-05 11:00:00",
            BillingCurrency="EUR", CommitmentDiscountId="null",
        ),
    ]  # fmt: skip
    path = csv_write(tmp_path / "focus13.csv.gz", header, rows, compress=True)

    (run,) = ingest([path], account="oci-focus", provider="oci")

    assert run.billing_period_start == dt.date(2024, 3, 1) and run.rows_loaded == 2
    zoned, naive = CostLineItem.objects.order_by("source_line")
    assert zoned.provider_name == naive.provider_name == "Oracle"
    assert zoned.charge_period_start == dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC)
    assert zoned.billing_period_start_at == dt.datetime(2024, 2, 29, 23, 0, tzinfo=dt.UTC)
    assert naive.charge_period_start == dt.datetime(2024, 3, 5, 10, 0, tzinfo=dt.UTC)
    assert (zoned.list_cost, zoned.contracted_cost, zoned.tags) == (None, None, {})
    assert zoned.sku_price_id == "P-1" and naive.commitment_discount_id == ""
    assert {zoned.billing_currency, naive.billing_currency} == {"EUR"}


def test_a_focus_parquet_file_loads_like_its_csv_twin(ingest, tmp_path):
    rows = [
        focus_row(
            BilledCost=f"{n}.0123456789",
            EffectiveCost=f"-{n}.5",
            Tags=json.dumps({"team": "ranking", "n": str(n)}),
        )
        for n in range(1, 8)
    ] + [focus_row(ChargeCategory="Credit", BilledCost="-3.3333333333", EffectiveCost="-3.3333333333")]
    csv_path = csv_write(tmp_path / "twin.csv", FOCUS_COLUMNS, rows)
    parquet_path = focus_parquet_write(tmp_path / "twin.parquet", rows)
    expected_billed = decimal_sum(r["BilledCost"] for r in rows)

    assert format_detect(parquet_path) is FocusParser
    (csv_run,) = ingest([csv_path], account="csv-focus", provider="aws")
    (parquet_run,) = ingest([parquet_path], account="parquet-focus", provider="gcp")

    assert csv_run.rows_loaded == parquet_run.rows_loaded == len(rows)
    assert view_totals("csv-focus") == view_totals("parquet-focus")
    assert view_totals("parquet-focus")[1] == expected_billed
    fields = (
        "source_line",
        "billed_cost",
        "effective_cost",
        "list_cost",
        "charge_period_start",
        "tag_set__tags",
    )
    assert (
        list(CostLineItem.objects.filter(ingest_run=csv_run).order_by("source_line").values_list(*fields))[0][
            1:
        ]
        == list(
            CostLineItem.objects.filter(ingest_run=parquet_run).order_by("source_line").values_list(*fields)
        )[0][1:]
    )


def test_it_rejects_rows_that_break_focus_rules_with_their_line(ingest, tmp_path):
    rows = [
        focus_row(),
        focus_row(BilledCost="NULL"),
        focus_row(ChargeCategory="Refund"),
        focus_row(BillingCurrency=""),
        focus_row(EffectiveCost="NaN"),
        focus_row(ChargePeriodEnd="2024-02-28T00:00:00Z"),
    ]
    path = csv_write(tmp_path / "bad.csv", FOCUS_COLUMNS, rows)

    (run,) = ingest([path], account="aws-focus", provider="aws")

    assert (run.rows_in_source, run.rows_loaded, run.rows_rejected) == (6, 1, 5)
    assert dict(RejectedRow.objects.values_list("line_number", "reason")) == {
        3: "BilledCost is null",
        4: "ChargeCategory: 'Refund' is not one of Usage, Purchase, Tax, Credit, Adjustment",
        5: "BillingCurrency is null",
        6: "EffectiveCost: 'NaN' is not a finite number",
        7: "ChargePeriodEnd is before ChargePeriodStart",
    }


def test_ingest_file_reports_a_focus_run(tmp_path):
    path = csv_write(tmp_path / "focus.csv", FOCUS_COLUMNS, [focus_row(), focus_row()])
    out = io.StringIO()

    call_command("ingest_file", str(path), "--account", "gcp-focus", "--provider", "gcp", stdout=out)

    assert "gcp-focus 2024-03 run #" in out.getvalue() and "2 rows loaded, 0 rejected of 2" in out.getvalue()
    assert "billed_cost=2.5000000000" in out.getvalue()
