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
            'SELECT COUNT(*), COALESCE(SUM("BilledCost"), 0), COALESCE(SUM("EffectiveCost"), 0) '
            'FROM focus_line_items WHERE "x_Account" = %s',
            [account],
        )
        return cursor.fetchone()


def stored_state(account: str) -> dict:
    """Everything an ingest may change for an account, to compare before/after a failed run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT li.id, li.ingest_run_id, li.source_line, li.billed_cost, li.effective_cost, li.tags "
            "FROM attribution_costlineitem li JOIN attribution_cloudaccount a ON a.id = li.account_id "
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
