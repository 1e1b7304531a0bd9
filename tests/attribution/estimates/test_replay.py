"""The replay of the last billed days: each day estimated before its bill lands (1-2 days later),
reconciled when it does, calibration learning along the way; running it again changes nothing."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from attribution.estimates.accuracy import estimate_accuracy_report
from attribution.estimates.replay import bill_lag_days, estimates_replay
from attribution.models import Deployment, EstimateCalibration, PriceCard, SpendEstimate, UsageRecord
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

FIRST = dt.date(2026, 10, 1)
DAYS = [FIRST + dt.timedelta(days=offset) for offset in range(12)]


@pytest.fixture
def billed_history():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    llama = ServedModelFactory(slug="llama")
    search = TeamFactory(slug="search")
    pool = DeploymentFactory(slug="llama-pool", model=llama, account=aws)
    Deployment.objects.update(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    PriceCard.objects.create(
        deployment=pool, unit="hour", price=Decimal("10"), valid_from=dt.date(2026, 1, 1)
    )
    for day in DAYS:
        UsageRecord.objects.create(
            bucket_start=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
            bucket_seconds=3600, reporter="gw", deployment=pool, team=search, model=llama,
            requests=10, input_tokens=1000,
        )  # fmt: skip
        # Every bill is 10 % above the card (a tax the card does not know).
        DailyCostFactory(
            day=day, account=aws, team=search, model=llama, deployment=pool,
            billed_cost=Decimal("264"), effective_cost=Decimal("264"),
        )  # fmt: skip
    return pool


def test_each_day_is_estimated_before_its_bill_and_reconciled_when_it_lands(billed_history):
    summary = estimates_replay(days=10)
    replayed = DAYS[2:]
    assert summary.days == [day.isoformat() for day in replayed]
    for day in replayed:
        [estimate] = SpendEstimate.objects.filter(day=day)
        landed = dt.datetime.combine(
            day + dt.timedelta(days=bill_lag_days(day)), dt.time(6, 0), tzinfo=dt.UTC
        )
        assert estimate.reconciled_at == landed
        assert estimate.created_at is not None and estimate.billed_cost == Decimal("264")
    assert not SpendEstimate.objects.filter(day__in=DAYS[:2]).exists()
    # Calibration learned the 10 % as bills landed: the last days were estimated at 264, not 240.
    assert SpendEstimate.objects.get(day=DAYS[-1]).estimated_cost == Decimal("264.000000")
    assert SpendEstimate.objects.get(day=replayed[0]).estimated_cost == Decimal("240")
    assert EstimateCalibration.objects.exists()
    report = estimate_accuracy_report(user=UserFactory(username="fin", roles=["finance"]))
    assert report.overall.deployment_days == 10
    assert report.overall.median_error_percent < report.overall.uncalibrated_median_error_percent


def test_running_it_again_gives_the_same_result(billed_history):
    call_command("estimates_replay", days=10, stdout=io.StringIO())
    replayed = SpendEstimate.objects.filter(day__lte=DAYS[-1])  # later days are today's open estimates
    first = sorted(replayed.values_list("day", "estimated_cost", "reconciled_at"))
    factors = list(EstimateCalibration.objects.values_list("factor", "learned_at").order_by("learned_at"))
    call_command("estimates_replay", days=10, stdout=io.StringIO())
    assert sorted(replayed.values_list("day", "estimated_cost", "reconciled_at")) == first
    assert (
        list(EstimateCalibration.objects.values_list("factor", "learned_at").order_by("learned_at"))
        == factors
    )
