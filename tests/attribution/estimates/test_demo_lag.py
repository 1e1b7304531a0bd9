"""The demo's bills land two days after its usage: those days are estimates until the bill lands."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from attribution.models import DailyCost, SpendEstimate, UnitCost
from tests.factories import DailyCostFactory, DeploymentFactory

pytestmark = pytest.mark.django_db


def test_bills_end_before_the_usage_when_a_lag_is_asked_for(tmp_path: Path):
    call_command(
        "demo_exports", days=10, out=str(tmp_path), seed=7, end_date="2026-11-20", billing_lag_days=2,
        stdout=io.StringIO(),
    )  # fmt: skip
    generator = json.loads((tmp_path / "expected_totals.json").read_text())["generator"]
    assert (generator["end_date"], generator["billing_end_date"]) == ("2026-11-20", "2026-11-18")
    usage_days = sorted(path.stem.removeprefix("usage-") for path in (tmp_path / "usage").glob("*.ndjson"))
    assert usage_days[-1] == "2026-11-20"
    # Every GCP row of the billing export ends by the last billed day.
    gcp_rows = [
        json.loads(line)
        for path in (tmp_path / "gcp").rglob("*.json")
        for line in path.read_text().splitlines()
        if line
    ]
    assert gcp_rows and max(row["usage_start_time"][:10] for row in gcp_rows) == "2026-11-18"


def test_it_refuses_a_lag_as_long_as_the_history(tmp_path: Path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="billing-lag-days"):
        call_command("demo_exports", days=3, out=str(tmp_path), billing_lag_days=3, stdout=io.StringIO())


def test_estimate_spend_reports_what_it_estimated_and_does_not_wait_without_cause():
    DeploymentFactory(slug="idle")
    out = io.StringIO()
    call_command("estimate_spend", days=3, wait_for_unit_costs=0, stdout=out)
    assert "Estimated 0" in out.getvalue() and "without a bill" in out.getvalue()
    assert not SpendEstimate.objects.exists()
    assert not DailyCost.objects.exists() and not UnitCost.objects.exists()


def test_estimate_spend_gives_up_waiting_for_unit_costs_with_a_message():
    DailyCostFactory(day=dt.date(2026, 11, 18))
    err = io.StringIO()
    call_command("estimate_spend", days=1, wait_for_unit_costs=0.5, stdout=io.StringIO(), stderr=err)
    assert "No unit costs yet" in err.getvalue()
