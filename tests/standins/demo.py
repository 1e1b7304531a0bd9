"""The demo company's native exports, written once per test session for the stand-ins to serve,
and a helper that takes a connector's deliveries through the real ingest pipeline."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from attribution.connectors.base import PeriodDelivery
from attribution.demo.azure_cost_details import azure_write
from attribution.demo.company import company_build
from attribution.demo.expected import ExpectedTotals
from attribution.demo.gcp_billing import gcp_write
from attribution.demo.specs import DemoRange

# Two billing periods: September 2026 (closed) and the first days of October (month to date).
DEMO_END = dt.date(2026, 10, 2)
DEMO_DAYS = 3


@dataclass(frozen=True)
class DemoExports:
    root: Path
    expected: dict

    def entries(self, provider: str) -> list[dict]:
        return [entry for entry in self.expected["entries"] if entry["provider"] == provider]

    def entry(self, provider: str, period: str, dataset: str | None = None) -> dict:
        return next(
            entry
            for entry in self.entries(provider)
            if entry["billing_period"] == period and (dataset is None or entry["dataset"] == dataset)
        )

    def files(self, entry: dict) -> list[Path]:
        return [self.root / name for name in entry["files"]]


@pytest.fixture(scope="session")
def demo_exports(tmp_path_factory) -> DemoExports:
    """GCP detailed export and Azure MCA exports of the demo company (seed 42), with their
    expected_totals.json, written by the demo writers themselves."""
    root = tmp_path_factory.mktemp("demo-exports")
    company = company_build(seed=42)
    demo_range = DemoRange.ending(end=DEMO_END, days=DEMO_DAYS)
    totals = ExpectedTotals(generator={"seed": 42, "end_date": DEMO_END.isoformat()})
    gcp_write(company=company, demo_range=demo_range, out_dir=root, totals=totals)
    azure_write(company=company, demo_range=demo_range, out_dir=root, totals=totals)
    totals.write(root / "expected_totals.json")
    return DemoExports(root=root, expected=json.loads((root / "expected_totals.json").read_text()))


def delivery_ingest(*, account, delivery: PeriodDelivery):
    """Run the ingest pipeline on the delivery's files as the sync does: streamed remote sources,
    re-opened by the account's connector when the runs execute; returns the period's runs."""
    from attribution.ingest.services import ingest_run_execute, ingest_runs_create
    from attribution.ingest.sources import RemoteSource

    created = ingest_runs_create(
        account=account,
        sources=[RemoteSource.from_remote_file(remote) for remote in delivery.files],
        source_format=delivery.source_format,
        billing_period=delivery.billing_period_start,
    )
    return [ingest_run_execute(run_id=run.pk) for run in created]


def period_totals(account_slug: str, period: dt.date) -> tuple[Decimal, Decimal, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            # Line items, not view rows: a commitment fee billed as usage is two FOCUS rows (0029).
            'SELECT COALESCE(SUM("BilledCost"), 0), COALESCE(SUM("EffectiveCost"), 0), '
            'COUNT(DISTINCT "x_LineItemId") '
            'FROM focus_line_items WHERE "x_Account" = %s AND "BillingPeriodStart" = %s',
            [account_slug, dt.datetime.combine(period, dt.time(), tzinfo=dt.UTC)],
        )
        return cursor.fetchone()
