from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from attribution.ingest import services
from attribution.models import CostLineItem, IngestRun
from tests.attribution.ingest_fixtures import FOCUS_COLUMNS, csv_write, focus_row
from tests.factories import DeploymentFactory, ServedModelFactory, TeamFactory

PERIODS = (("2024-03", "2024-03-01", "2024-04-01"), ("2024-04", "2024-04-01", "2024-05-01"))


def period_rows(start: str, end: str) -> list[dict[str, str]]:
    day = start[:8]

    def row(n: int, *, billed: str, tags: dict, sub: str, service: str, resource: str):
        return focus_row(
            BilledCost=billed,
            EffectiveCost=billed,
            ContractedCost=billed,
            ListCost=billed,
            BillingPeriodStart=f"{start}T00:00:00Z",
            BillingPeriodEnd=f"{end}T00:00:00Z",
            ChargePeriodStart=f"{day}0{1 + n % 2}T00:00:00Z",
            ChargePeriodEnd=f"{day}0{2 + n % 2}T00:00:00Z",
            Tags=json.dumps(tags),
            SubAccountId=sub,
            ServiceName=service,
            ResourceId=resource,
        )

    return [
        # A: explicit team tag
        row(0, billed="10.00", tags={"user:team": "search"}, sub="111", service="Amazon EC2", resource="i-a"),
        # B: nothing explicit; a sub-account rule and a service rule both apply
        row(1, billed="20.50", tags={}, sub="ml-prod-222", service="Amazon SageMaker", resource="ep-b"),
        # C: only a cost-center tag
        row(2, billed="5.25", tags={"cost-center": "x"}, sub="333", service="Amazon EC2", resource="i-c"),
        # D: explicit team tag in the sub-account the rule maps elsewhere: the tag wins
        row(
            3,
            billed="7.00",
            tags={"user:team": "search"},
            sub="ml-prod-222",
            service="Amazon EC2",
            resource="i-d",
        ),
        # E: untouched by every rule
        row(4, billed="3.333", tags={}, sub="444", service="AWS Lambda", resource="fn-e"),
    ]


@pytest.fixture
def dims(db):
    model = ServedModelFactory(slug="llama-70b", name="Llama 70B")
    return {
        "model": model,
        "pool": DeploymentFactory(slug="llama-pool", model=model),
        "search": TeamFactory(slug="search", name="Search"),
        "ads": TeamFactory(slug="ads", name="Ads"),
    }


@pytest.fixture
def ingest_periods(dims, tmp_path: Path):
    """Ingest the two monthly FOCUS files for account `acme` (real pipeline, with its receivers)."""

    def run() -> list[IngestRun]:
        account = services.cloud_account_get_or_create(slug="acme", provider="aws")
        executed = []
        for name, start, end in PERIODS:
            path = csv_write(tmp_path / f"focus-{name}.csv", FOCUS_COLUMNS, period_rows(start, end))
            for planned in services.ingest_runs_create(account=account, paths=[path], source_format="focus"):
                executed.append(services.ingest_run_execute(run_id=planned.pk))
        assert all(run.state == "succeeded" for run in executed), [run.error for run in executed]
        return executed

    return run


def by_resource() -> dict[str, tuple]:
    """resource id -> (team slug, model slug, deployment slug) of the current line items (period 1)."""
    rows = CostLineItem.objects.filter(billing_period_start="2024-03-01").values_list(
        "resource_id", "team__slug", "model__slug", "deployment__slug"
    )
    return {resource: (team, model, deployment) for resource, team, model, deployment in rows}


def cents(value) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))
