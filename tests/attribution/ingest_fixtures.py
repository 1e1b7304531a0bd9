"""Fixture writers for the format tests: FOCUS and CUR 2.0 files built from the documented schemas
(CSV, gzip, Parquet), and read-back helpers that do not use the parsers under test."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.db import connection

from attribution.models import DailyCost, IngestRun

# FOCUS 1.0 columns (plus the 1.3 rename handled by the parser), in the spec's order.
FOCUS_COLUMNS = [
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountId", "ConsumedQuantity",
    "ConsumedUnit", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingCategory",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName",
    "ResourceId", "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId",
    "SubAccountId", "SubAccountName", "Tags", "x_ServiceCode",
]  # fmt: skip


def focus_row(**values: str) -> dict[str, str]:
    row = {
        "AvailabilityZone": "us-east-1a",
        "BilledCost": "1.25",
        "BillingAccountId": "123456789012",
        "BillingAccountName": "Payer",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": "2024-04-01T00:00:00Z",
        "BillingPeriodStart": "2024-03-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": "GPU instance hours",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": "2024-03-02T00:00:00Z",
        "ChargePeriodStart": "2024-03-01T00:00:00Z",
        "CommitmentDiscountId": "",
        "ConsumedQuantity": "1",
        "ConsumedUnit": "Hours",
        "ContractedCost": "1.25",
        "EffectiveCost": "1.25",
        "InvoiceIssuerName": "Amazon Web Services, Inc.",
        "ListCost": "1.5",
        "PricingCategory": "Standard",
        "PricingQuantity": "1",
        "PricingUnit": "Hours",
        "ProviderName": "AWS",
        "PublisherName": "Amazon Web Services, Inc.",
        "RegionId": "us-east-1",
        "RegionName": "US East (N. Virginia)",
        "ResourceId": "i-0abc",
        "ResourceName": "inference-1",
        "ResourceType": "Instance",
        "ServiceCategory": "Compute",
        "ServiceName": "Amazon Elastic Compute Cloud",
        "SkuId": "SKU1",
        "SkuPriceId": "SKU1.PRICE",
        "SubAccountId": "210987654321",
        "SubAccountName": "ml-prod",
        "Tags": '{"user:team": "search", "env": "prod"}',
        "x_ServiceCode": "AmazonEC2",
    }
    row.update(values)
    return row


def csv_write(
    path: Path, header: list[str], rows: Iterable[dict[str, str]], *, compress: bool = False
) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: row.get(name, "") for name in header})
    data = buffer.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _timestamp(text: str) -> dt.datetime | None:
    if text in ("", "NULL"):
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


FOCUS_TIMESTAMPS = {"BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"}
FOCUS_DECIMALS = {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost"}
FOCUS_QUANTITIES = {"ConsumedQuantity", "PricingQuantity"}


def focus_parquet_write(path: Path, rows: list[dict[str, str]], *, tags_as_map: bool = True) -> Path:
    """FOCUS as providers write Parquet: typed timestamps (UTC), decimal costs, Tags as a map."""
    arrays = {}
    for name in FOCUS_COLUMNS:
        values = [row.get(name, "") for row in rows]
        if name in FOCUS_TIMESTAMPS:
            arrays[name] = pa.array([_timestamp(v) for v in values], pa.timestamp("us", tz="UTC"))
        elif name in FOCUS_DECIMALS:
            arrays[name] = pa.array([Decimal(v) if v else None for v in values], pa.decimal128(38, 10))
        elif name in FOCUS_QUANTITIES:
            arrays[name] = pa.array([float(v) if v else None for v in values], pa.float64())
        elif name == "Tags" and tags_as_map:
            import json

            arrays[name] = pa.array(
                [list(json.loads(v).items()) if v else None for v in values],
                pa.map_(pa.string(), pa.string()),
            )
        else:
            arrays[name] = pa.array([v or None for v in values], pa.string())
    pq.write_table(pa.table(arrays), path, row_group_size=max(1, len(rows) // 3 or 1))
    return path


def view_totals(account: str) -> tuple[int, Decimal, Decimal]:
    with connection.cursor() as cursor:
        cursor.execute(
            # Line items, not view rows: a commitment fee billed as usage is two FOCUS rows (0029).
            'SELECT COUNT(DISTINCT "x_LineItemId"), COALESCE(SUM("BilledCost"), 0), '
            'COALESCE(SUM("EffectiveCost"), 0) '
            'FROM focus_line_items WHERE "x_Account" = %s',
            [account],
        )
        return cursor.fetchone()


def stored_state(account: str) -> dict:
    """Everything an ingest may change for an account, to compare before/after a failed run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT li.id, li.ingest_run_id, li.source_line, li.billed_cost, li.effective_cost, ts.tags "
            "FROM attribution_costlineitem li JOIN attribution_cloudaccount a ON a.id = li.account_id "
            "JOIN attribution_tagset ts ON ts.id = li.tag_set_id "
            "WHERE a.slug = %s ORDER BY li.id",
            [account],
        )
        line_items = cursor.fetchall()
        cursor.execute(
            "SELECT COUNT(*) FROM attribution_costlineitem_staging s "
            "JOIN attribution_cloudaccount a ON a.id = s.account_id WHERE a.slug = %s",
            [account],
        )
        (staged,) = cursor.fetchone()
    daily = list(
        DailyCost.objects.filter(account__slug=account)
        .order_by("id")
        .values_list("id", "day", "billed_cost", "effective_cost", "line_items")
    )
    succeeded = list(
        IngestRun.objects.filter(account__slug=account, state="succeeded")
        .order_by("id")
        .values_list("id", "billing_period_start", "rows_loaded", "source_sums")
    )
    return {"line_items": line_items, "daily": daily, "succeeded_runs": succeeded, "staged": staged}


# CUR 2.0 CSV: the columns the AWS rules read plus a few usual others, in the export's naming.
CUR2_COLUMNS = [
    "identity_line_item_id", "bill_billing_period_start_date", "bill_billing_period_end_date",
    "bill_payer_account_id", "bill_invoicing_entity", "line_item_usage_account_id",
    "line_item_line_item_type",
    "line_item_usage_start_date", "line_item_usage_end_date", "line_item_product_code",
    "line_item_usage_type", "line_item_usage_amount", "line_item_currency_code", "line_item_unblended_cost",
    "line_item_line_item_description", "line_item_resource_id", "pricing_public_on_demand_cost",
    "pricing_term", "pricing_unit", "product_region_code", "product_sku",
    "savings_plan_savings_plan_effective_cost",
    "reservation_effective_cost", "resource_tags",
]  # fmt: skip


def cur2_row(**values: str) -> dict[str, str]:
    row = {
        "identity_line_item_id": "li-1",
        "bill_billing_period_start_date": "2024-09-01T00:00:00.000Z",
        "bill_billing_period_end_date": "2024-10-01T00:00:00.000Z",
        "bill_payer_account_id": "123456789012",
        "bill_invoicing_entity": "Amazon Web Services, Inc.",
        "line_item_usage_account_id": "210987654321",
        "line_item_line_item_type": "Usage",
        "line_item_usage_start_date": "2024-09-03T10:00:00.000Z",
        "line_item_usage_end_date": "2024-09-03T11:00:00.000Z",
        "line_item_product_code": "AmazonEC2",
        "line_item_usage_type": "USE1-BoxUsage:g5.xlarge",
        "line_item_usage_amount": "1.0",
        "line_item_currency_code": "USD",
        "line_item_unblended_cost": "1.006",
        "line_item_line_item_description": "g5.xlarge On Demand",
        "line_item_resource_id": "i-0123",
        "pricing_public_on_demand_cost": "1.006",
        "pricing_term": "OnDemand",
        "pricing_unit": "Hrs",
        "product_region_code": "us-east-1",
        "product_sku": "SKU",
        "savings_plan_savings_plan_effective_cost": "",
        "reservation_effective_cost": "",
        "resource_tags": '{"user:team": "search"}',
    }
    row.update(values)
    return row
