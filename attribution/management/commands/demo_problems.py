"""The demo's ingest problems, so a newcomer can see on /ingestion/ what a failure and a rejected row
look like: a sandbox AWS account whose FOCUS export of this month has three rows that cannot be read
(the rest is loaded, the three are kept with their reasons), and whose export of last month arrived
truncated (the run fails with the reason, nothing of it is stored).

    python manage.py demo_problems --out .data/exports/problems [--end-date YYYY-MM-DD]

Both files go through the same ingest path as every upload and sync (ingest_file's). The month is
the one of the demo's last billed day (or --end-date); the files are rewritten on every run.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max

from attribution.ingest import services
from attribution.ingest.errors import IngestError
from attribution.models import DailyCost

ACCOUNT = "aws-sandbox"
COLUMNS = [
    "BillingAccountId", "BillingAccountName", "SubAccountId", "SubAccountName", "BillingCurrency",
    "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
    "ChargeClass", "ChargeDescription", "ChargeFrequency", "BilledCost", "EffectiveCost", "ListCost",
    "ContractedCost", "PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit",
    "PricingCategory", "ProviderName", "PublisherName", "InvoiceIssuerName", "RegionId", "RegionName",
    "ResourceId", "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "Tags",
]  # fmt: skip
# What a user sees on the rejected-rows page: one bad number, one unknown currency, no charge date.
BAD_ROWS = (
    ("BilledCost", "4.1O"),
    ("BillingCurrency", "XYZ"),
    ("ChargePeriodStart", ""),
)


def _iso(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _month_rows(month: dt.date, last_day: dt.date) -> list[dict[str, str]]:
    """One GPU-hours row per day of `month` up to `last_day`: a sandbox's notebook instance."""
    next_month = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    rows = []
    day = month
    while day <= last_day and day < next_month:
        hours = Decimal(6 + (day.day * 7) % 11)
        cost = (hours * Decimal("0.526")).quantize(Decimal("0.01"))
        rows.append(
            {
                "BillingAccountId": "210987654399",
                "BillingAccountName": "Sandbox payer",
                "SubAccountId": "210987654399",
                "SubAccountName": "ml-sandbox",
                "BillingCurrency": "USD",
                "BillingPeriodStart": _iso(month),
                "BillingPeriodEnd": _iso(next_month),
                "ChargePeriodStart": _iso(day),
                "ChargePeriodEnd": _iso(day + dt.timedelta(days=1)),
                "ChargeCategory": "Usage",
                "ChargeClass": "",
                "ChargeDescription": "g5.xlarge notebook hours",
                "ChargeFrequency": "Usage-Based",
                "BilledCost": str(cost),
                "EffectiveCost": str(cost),
                "ListCost": str(cost),
                "ContractedCost": str(cost),
                "PricingQuantity": str(hours),
                "PricingUnit": "Hours",
                "ConsumedQuantity": str(hours),
                "ConsumedUnit": "Hours",
                "PricingCategory": "Standard",
                "ProviderName": "AWS",
                "PublisherName": "Amazon Web Services, Inc.",
                "InvoiceIssuerName": "Amazon Web Services, Inc.",
                "RegionId": "us-east-1",
                "RegionName": "US East (N. Virginia)",
                "ResourceId": "i-0sandbox0notebook",
                "ResourceType": "Instance",
                "ServiceCategory": "Compute",
                "ServiceName": "Amazon Elastic Compute Cloud",
                "SkuId": "G5XL-USE1",
                "SkuPriceId": "G5XL-USE1.OD",
                "Tags": '{"owner": "research-sandbox"}',
            }
        )
        day += dt.timedelta(days=1)
    return rows


def _csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


class Command(BaseCommand):
    help = "Ingest the demo's two problem files: one with rejected rows, one truncated (a failed run)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", default=".data/exports/problems", help="Where the files are written.")
        parser.add_argument("--end-date", type=dt.date.fromisoformat, default=None)

    def handle(self, *args, out: str, end_date: dt.date | None, **options) -> None:
        last_day = end_date or DailyCost.objects.aggregate(day=Max("day"))["day"]
        if last_day is None:
            raise CommandError("No billed days yet: run the demo's ingest first, or give --end-date.")
        month = last_day.replace(day=1)
        previous = (month - dt.timedelta(days=1)).replace(day=1)
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)

        rows = _month_rows(month, last_day)
        for (column, value), index in zip(BAD_ROWS, (2, 9, 15), strict=True):
            if index < len(rows):
                rows.insert(index, {**rows[index], column: value})
        with_rejects = folder / f"sandbox-focus-{month:%Y-%m}.csv"
        with_rejects.write_bytes(_csv(rows))

        whole = gzip.compress(_csv(_month_rows(previous, month - dt.timedelta(days=1))), mtime=0)
        truncated = folder / f"sandbox-focus-{previous:%Y-%m}.csv.gz"
        truncated.write_bytes(whole)

        account = services.cloud_account_get_or_create(slug=ACCOUNT, provider="aws")
        if account.name in ("", ACCOUNT):
            account.name = "AWS sandbox"
            account.save(update_fields=["name"])
        # Last month's file is cut in half after its run was planned, as when an export is rewritten
        # while it is being delivered: the run reads a truncated gzip and fails with that reason.
        self._ingest(
            account, truncated, previous, before=lambda: truncated.write_bytes(whole[: len(whole) // 2])
        )
        self._ingest(account, with_rejects, month)

    def _ingest(self, account, path: Path, period: dt.date, before=None) -> None:
        runs = services.ingest_runs_create(
            account=account, paths=[path], source_format="focus", billing_period=period
        )
        if before is not None:
            before()
        for run in runs:
            if run.state == "succeeded":
                self.stdout.write(f"{path.name}: unchanged since run #{run.pk}")
                continue
            try:
                run = services.ingest_run_execute(
                    run_id=run.pk, executor=services.executor_describe("command")
                )
            except IngestError as error:
                self.stdout.write(f"{path.name}: run #{run.pk} failed as intended: {error}")
                continue
            self.stdout.write(
                f"{path.name}: run #{run.pk} {run.state}, {run.rows_loaded} rows loaded, "
                f"{run.rows_rejected} rejected (see /ingestion/runs/{run.pk}/rejected/)"
            )
