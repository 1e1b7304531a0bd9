from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from attribution.ingest import services
from attribution.models import IngestRun, UsageRecord
from tests.factories import CloudAccountFactory, DeploymentFactory, TeamFactory, line_item_create

DAY = dt.date(2026, 10, 5)
PERIOD = dt.date(2026, 10, 1)


class World:
    """An account with one current ingest run; line items and usage added by hand."""

    def __init__(self) -> None:
        self.account = CloudAccountFactory(slug="acct", provider="aws")
        self.run = IngestRun.objects.create(
            account=self.account,
            billing_period_start=PERIOD,
            billing_period_end=dt.date(2026, 11, 1),
            state="succeeded",
        )
        self.teams = {slug: TeamFactory(slug=slug, name=slug.title()) for slug in ("search", "ads", "bots")}
        self.pool = DeploymentFactory(slug="pool-dep", account=self.account, gpu_count=2)
        self.line = 0

    def line_item(
        self,
        billed: str | Decimal,
        effective: str | Decimal | None = None,
        *,
        day: dt.date = DAY,
        team: str | None = None,
        deployment=None,
        tags: dict | None = None,
        category: str = "Usage",
        currency: str = "USD",
    ) -> None:
        self.line += 1
        start = dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
        line_item_create(
            account=self.account,
            ingest_run=self.run,
            source_line=self.line,
            billing_period_start=PERIOD,
            billed_cost=Decimal(billed),
            effective_cost=Decimal(billed if effective is None else effective),
            billing_currency=currency,
            charge_period_start=start,
            charge_period_end=start + dt.timedelta(hours=1),
            billing_period_start_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
            billing_period_end_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            charge_category=category,
            provider_name="AWS",
            billing_account_id="123",
            normalized_tags=tags or {},
            team=self.teams[team] if team else None,
            deployment=deployment,
            model=deployment.model if deployment else None,
        )

    def usage(
        self,
        team: str | None,
        *,
        deployment=None,
        day: dt.date = DAY,
        requests: int = 0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        gpu_seconds: str = "0",
        hour: int = 0,
    ) -> None:
        deployment = deployment or self.pool
        UsageRecord.objects.create(
            bucket_start=dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC),
            bucket_seconds=3600,
            reporter="gw",
            deployment=deployment,
            team=self.teams[team] if team else None,
            model=deployment.model,
            requests=requests,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            gpu_seconds=Decimal(gpu_seconds),
        )

    def allocate(self, days: list[dt.date] | None = None):
        from attribution.allocation.services import allocation_run

        # As after an ingest: DailyCost is the billed side of the conservation check.
        services.daily_cost_rebuild(account_id=self.account.pk, billing_period_start=PERIOD)
        return allocation_run(account_id=self.account.pk, days=days or [DAY])


@pytest.fixture
def world(db) -> World:
    return World()
