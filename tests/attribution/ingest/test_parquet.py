"""AWS CUR as Parquet: the real legacy CUR Parquet / Athena sample (119,307 rows, tags flattened
into resource_tags_user_* columns), and CUR 2.0 Parquet built here with pyarrow from the
documented CUR 2.0 schema (no public sample exists): `resource_tags`, `cost_category`, `product`
and `discount` are MAP columns, dates are timestamps, amounts doubles. Expected totals are read
from the files with pyarrow, not through the parser."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attribution.ingest.detect import format_detect
from attribution.ingest.formats.aws_cur_parquet import AwsCurParquetParser
from attribution.models import CostLineItem, DailyCost, TagKey
from tests.attribution.ingest_fixtures import csv_write, view_totals

pytestmark = pytest.mark.django_db(transaction=True)

LEGACY = "aws/legacy-cur-parquet/Oct2018-WorkshopCUR-00001.snappy.parquet"
SCALE = Decimal("1e-10")


def _decimal(value) -> Decimal:
    return Decimal(0) if value is None else Decimal(repr(value)).quantize(SCALE)


def test_it_loads_the_real_legacy_cur_parquet_to_the_cent(ingest, shared_billing_data):
    path = shared_billing_data / LEGACY
    table = pq.read_table(
        path,
        columns=[
            "line_item_line_item_type", "line_item_unblended_cost", "reservation_effective_cost",
            "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
            "resource_tags_user_cost_center",
        ],
    ).to_pylist()  # fmt: skip
    billed = sum((_decimal(r["line_item_unblended_cost"]) for r in table), Decimal(0))
    # AWS amortization per line item type (the types present: Usage, DiscountedUsage, RIFee).
    effective = Decimal(0)
    for r in table:
        kind = r["line_item_line_item_type"]
        if kind == "DiscountedUsage":
            effective += _decimal(r["reservation_effective_cost"])
        elif kind == "RIFee":
            effective += _decimal(
                r["reservation_unused_amortized_upfront_fee_for_billing_period"]
            ) + _decimal(r["reservation_unused_recurring_fee"])
        else:
            effective += _decimal(r["line_item_unblended_cost"])

    assert format_detect(path) is AwsCurParquetParser
    (run,) = ingest([path], account="aws-parquet", provider="aws")

    assert run.state == "succeeded" and run.source_format == "aws-cur-parquet"
    assert run.billing_period_start == dt.date(2018, 10, 1)
    assert run.rows_in_source == run.rows_loaded == len(table) == 119_307 and run.rows_rejected == 0
    count, db_billed, db_effective = view_totals("aws-parquet")
    assert (count, db_billed, db_effective) == (len(table), billed, effective)
    assert db_billed.quantize(Decimal("0.01")) == Decimal("4064.48")
    cells = DailyCost.objects.filter(account__slug="aws-parquet")
    assert sum(c.billed_cost for c in cells) == db_billed and sum(c.line_items for c in cells) == count
    # Flattened tag columns become tags with normalised keys.
    tagged = sum(1 for r in table if r["resource_tags_user_cost_center"])
    assert CostLineItem.objects.filter(tag_set__normalized_tags__has_key="cost_center").count() == tagged > 0
    assert TagKey.objects.filter(key="resource_tags_user_cost_center", normalized_key="cost_center").exists()


# --- CUR 2.0 Parquet, built from the documented schema ---------------------------------------------

CUR2_SCHEMA = pa.schema(
    [
        ("identity_line_item_id", pa.string()),
        ("identity_time_interval", pa.string()),
        ("bill_bill_type", pa.string()),
        ("bill_billing_entity", pa.string()),
        ("bill_billing_period_end_date", pa.timestamp("ms", tz="UTC")),
        ("bill_billing_period_start_date", pa.timestamp("ms", tz="UTC")),
        ("bill_invoice_id", pa.string()),
        ("bill_invoicing_entity", pa.string()),
        ("bill_payer_account_id", pa.string()),
        ("bill_payer_account_name", pa.string()),
        ("cost_category", pa.map_(pa.string(), pa.string())),
        ("discount", pa.map_(pa.string(), pa.float64())),
        ("line_item_availability_zone", pa.string()),
        ("line_item_currency_code", pa.string()),
        ("line_item_legal_entity", pa.string()),
        ("line_item_line_item_description", pa.string()),
        ("line_item_line_item_type", pa.string()),
        ("line_item_product_code", pa.string()),
        ("line_item_resource_id", pa.string()),
        ("line_item_unblended_cost", pa.float64()),
        ("line_item_usage_account_id", pa.string()),
        ("line_item_usage_account_name", pa.string()),
        ("line_item_usage_amount", pa.float64()),
        ("line_item_usage_end_date", pa.timestamp("ms", tz="UTC")),
        ("line_item_usage_start_date", pa.timestamp("ms", tz="UTC")),
        ("line_item_usage_type", pa.string()),
        ("pricing_public_on_demand_cost", pa.float64()),
        ("pricing_term", pa.string()),
        ("pricing_unit", pa.string()),
        ("product", pa.map_(pa.string(), pa.string())),
        ("product_product_family", pa.string()),
        ("product_region_code", pa.string()),
        ("product_servicecode", pa.string()),
        ("product_sku", pa.string()),
        ("reservation_effective_cost", pa.float64()),
        ("reservation_reservation_a_r_n", pa.string()),
        ("reservation_unused_amortized_upfront_fee_for_billing_period", pa.float64()),
        ("reservation_unused_recurring_fee", pa.float64()),
        ("resource_tags", pa.map_(pa.string(), pa.string())),
        ("savings_plan_savings_plan_a_r_n", pa.string()),
        ("savings_plan_savings_plan_effective_cost", pa.float64()),
        ("savings_plan_total_commitment_to_date", pa.float64()),
        ("savings_plan_used_commitment", pa.float64()),
    ]
)

SEPTEMBER = dt.datetime(2024, 9, 1, tzinfo=dt.UTC)
OCTOBER = dt.datetime(2024, 10, 1, tzinfo=dt.UTC)
SP_ARN = "arn:aws:savingsplans::123456789012:savingsplan/abc"
RI_ARN = "arn:aws:ec2:us-east-1:123456789012:reserved-instances/def"


def cur2_rows() -> list[dict]:
    """One row per line item type, with the amounts each AWS amortization rule reads."""

    def row(kind: str, unblended: float, hour: int, **extra) -> dict:
        start = SEPTEMBER + dt.timedelta(hours=hour)
        base = {name: None for name in CUR2_SCHEMA.names}
        base.update(
            identity_line_item_id=f"id-{hour}",
            identity_time_interval="2024-09-01T00:00:00Z/2024-10-01T00:00:00Z",
            bill_bill_type="Anniversary", bill_billing_entity="AWS", bill_billing_period_start_date=SEPTEMBER,
            bill_billing_period_end_date=OCTOBER, bill_invoice_id="",
            bill_invoicing_entity="Amazon Web Services, Inc.",
            bill_payer_account_id="123456789012", bill_payer_account_name="payer",
            cost_category=[("team", "search")], discount=[],
            line_item_currency_code="USD", line_item_line_item_type=kind, line_item_product_code="AmazonEC2",
            line_item_unblended_cost=unblended, line_item_usage_account_id="210987654321",
            line_item_usage_account_name="ml-prod", line_item_usage_amount=1.0,
            line_item_usage_start_date=start, line_item_usage_end_date=start + dt.timedelta(hours=1),
            line_item_usage_type="USE1-BoxUsage:p4d.24xlarge", pricing_unit="Hrs",
            product=[("region", "us-east-1"), ("instance_type", "p4d.24xlarge")],
            product_region_code="us-east-1",
            product_servicecode="AmazonEC2", product_sku="SKU", resource_tags=[("user:team", "search")],
        )  # fmt: skip
        base.update(extra)
        return base

    return [
        row("Usage", 32.7726, 0, pricing_term="OnDemand", pricing_public_on_demand_cost=32.7726,
            resource_tags=[("user:team", "search, ranking \"quoted\""), ("user:Model ", "llama-3-70b")]),
        row("SavingsPlanCoveredUsage", 32.7726, 1, savings_plan_savings_plan_effective_cost=21.3021,
            savings_plan_savings_plan_a_r_n=SP_ARN, resource_tags=[]),
        row("SavingsPlanNegation", -32.7726, 1, savings_plan_savings_plan_a_r_n=SP_ARN, resource_tags=None),
        row("SavingsPlanRecurringFee", 720.0, 2, savings_plan_total_commitment_to_date=720.0,
            savings_plan_used_commitment=690.5, savings_plan_savings_plan_a_r_n=SP_ARN),
        row("DiscountedUsage", 0.0, 3, reservation_effective_cost=18.04,
            reservation_reservation_a_r_n=RI_ARN),
        row("RIFee", 1200.0, 4, reservation_unused_amortized_upfront_fee_for_billing_period=12.5,
            reservation_unused_recurring_fee=7.25, reservation_reservation_a_r_n=RI_ARN),
        row("Fee", 3000.0, 5),
        row("Tax", 120.0000000001, 6),
        row("Credit", -50.123456789, 7),
        row("Refund", -1e-10, 8),
        row("BundledDiscount", -0.3333333333, 9),
    ]  # fmt: skip


def cur2_expected_effective(rows: list[dict]) -> Decimal:
    """AWS's amortized cost per line item type, computed here from the row values."""
    total = Decimal(0)
    for r in rows:
        kind, value = r["line_item_line_item_type"], _decimal(r["line_item_unblended_cost"])
        if kind == "SavingsPlanCoveredUsage":
            total += _decimal(r["savings_plan_savings_plan_effective_cost"])
        elif kind == "DiscountedUsage":
            total += _decimal(r["reservation_effective_cost"])
        elif kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
            pass
        elif kind == "SavingsPlanRecurringFee":
            total += _decimal(r["savings_plan_total_commitment_to_date"]) - _decimal(
                r["savings_plan_used_commitment"]
            )
        elif kind == "RIFee":
            total += _decimal(r["reservation_unused_amortized_upfront_fee_for_billing_period"]) + _decimal(
                r["reservation_unused_recurring_fee"]
            )
        else:
            total += value
    return total


def cur2_parquet_write(path, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=CUR2_SCHEMA), path, row_group_size=4)


def cur2_csv_write(path, rows: list[dict]) -> None:
    """The same rows as the CUR 2.0 CSV writes them: maps as JSON objects, ISO timestamps."""

    def text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return json.dumps(dict(value))
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return repr(value) if isinstance(value, float) else str(value)

    csv_write(path, CUR2_SCHEMA.names, [{k: text(v) for k, v in r.items()} for r in rows], compress=True)


def test_cur2_parquet_with_map_columns_loads_to_the_cent(ingest, tmp_path):
    rows = cur2_rows()
    path = tmp_path / "cur2-00001.snappy.parquet"
    cur2_parquet_write(path, rows)

    assert format_detect(path) is AwsCurParquetParser
    (run,) = ingest([path], account="aws-cur2-parquet", provider="aws")

    assert run.billing_period_start == dt.date(2024, 9, 1)
    assert run.rows_in_source == run.rows_loaded == len(rows) and run.rows_rejected == 0
    count, billed, effective = view_totals("aws-cur2-parquet")
    assert billed == sum((_decimal(r["line_item_unblended_cost"]) for r in rows), Decimal(0))
    assert effective == cur2_expected_effective(rows)
    usage = CostLineItem.objects.get(source_line=1)
    assert usage.tags == {"user:team": 'search, ranking "quoted"', "user:Model ": "llama-3-70b"}
    assert usage.normalized_tags == {"team": 'search, ranking "quoted"', "model": "llama-3-70b"}
    assert set(CostLineItem.objects.values_list("charge_category", flat=True)) == {
        "Usage", "Purchase", "Tax", "Credit", "Adjustment",
    }  # fmt: skip


def test_cur2_parquet_and_cur2_csv_of_the_same_rows_load_identically(ingest, tmp_path):
    rows = cur2_rows()
    cur2_parquet_write(tmp_path / "part.parquet", rows)
    cur2_csv_write(tmp_path / "part.csv.gz", rows)

    ingest([tmp_path / "part.parquet"], account="from-parquet", provider="aws")
    ingest([tmp_path / "part.csv.gz"], account="from-csv", provider="aws")

    fields = (
        "source_line", "billed_cost", "effective_cost", "list_cost", "charge_category", "charge_period_start",
        "charge_period_end", "billing_period_end_at", "tag_set__tags", "tag_set__normalized_tags",
        "commitment_discount_id",
        "sku_id", "region_id", "pricing_category", "consumed_quantity",
    )  # fmt: skip

    def items(account):
        return list(
            CostLineItem.objects.filter(account__slug=account).order_by("source_line").values_list(*fields)
        )

    parquet_items, csv_items = items("from-parquet"), items("from-csv")
    # CSV line numbers count the header; Parquet rows do not.
    assert [i[1:] for i in parquet_items] == [i[1:] for i in csv_items]
    assert [i[0] for i in parquet_items] == [i[0] - 1 for i in csv_items]


def test_a_legacy_parquet_month_with_other_columns_still_loads(ingest, tmp_path):
    """The Athena layout's column set drifts month to month: unknown columns are ignored, tag
    columns come and go, and only the required ones must be there."""
    rows = cur2_rows()[:2]
    table = pa.Table.from_pylist(rows, schema=CUR2_SCHEMA).drop_columns(
        ["resource_tags", "product", "discount"]
    )
    table = table.append_column("resource_tags_user_new_tag", pa.array(["x", None]))
    table = table.append_column("product_some_new_attribute", pa.array(["a", "b"]))
    pq.write_table(table, tmp_path / "drift.parquet")

    (run,) = ingest([tmp_path / "drift.parquet"], account="aws-drift", provider="aws")

    assert run.rows_loaded == 2
    assert CostLineItem.objects.get(source_line=1).normalized_tags == {"new_tag": "x"}
