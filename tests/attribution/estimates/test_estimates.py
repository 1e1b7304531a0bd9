"""Spend estimated from usage between bills: from the latest unit cost or a price card, to the cent;
replaced by the bill when it lands, with the error recorded; accuracy per deployment."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from attribution import signals
from attribution.costs.selectors import estimate_accuracy
from attribution.estimates import receivers as estimate_receivers  # noqa: F401  (connects the receiver)
from attribution.estimates.services import estimates_reconcile, estimates_refresh
from attribution.estimates.tasks import estimates_reconcile_task
from attribution.models import Deployment, PriceCard, SpendEstimate, UnitCost, UsageRecord
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 10, 20)
NOW = dt.datetime(2026, 10, 22, 9, 30, tzinfo=dt.UTC)
CENT = Decimal("0.01")


def _usage(deployment, team, *, hour=10, requests=0, input_tokens=0, output_tokens=0, day=DAY, model=None):
    return UsageRecord.objects.create(
        bucket_start=dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC),
        bucket_seconds=60,
        reporter="gw-1",
        deployment=deployment,
        team=team,
        model=model or deployment.model,
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


@pytest.fixture
def world():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    llama = ServedModelFactory(slug="llama", name="llama-3.1-70b")
    pool = DeploymentFactory(slug="llama-pool", model=llama, account=aws, gpu_count=8)
    # Created long before the day, so it existed for every hour of it.
    Deployment.objects.filter(pk=pool.pk).update(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    pool.refresh_from_db()
    search = TeamFactory(slug="search", name="Search")
    ads = TeamFactory(slug="ads", name="Ads")
    return {"aws": aws, "llama": llama, "pool": pool, "search": search, "ads": ads}


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def test_it_estimates_from_the_latest_unit_cost(world):
    llama = world["llama"]
    # A managed deployment without a card: its bill follows tokens, so does the estimate. (An
    # instance bills for hours: test_it_estimates_a_committed_instance_at_its_billed_hourly_rate.)
    pool = DeploymentFactory(
        slug="llama-managed", model=llama, account=world["aws"], pricing_mode="managed_per_token"
    )
    # Two days before: an older unit cost that must not be used.
    UnitCost.objects.create(
        day=DAY - dt.timedelta(days=2),
        model=llama,
        deployment=pool,
        provider="aws",
        currency="USD",
        effective_cost=Decimal("999"),
        input_tokens=1,
        output_tokens=1,
        cost_per_1m_input_tokens=Decimal("999"),
        cost_per_1m_output_tokens=Decimal("999"),
    )
    UnitCost.objects.create(
        day=DAY - dt.timedelta(days=1),
        model=llama,
        deployment=pool,
        provider="aws",
        currency="USD",
        effective_cost=Decimal("100.00"),
        requests=1000,
        input_tokens=600_000,
        output_tokens=400_000,
        cost_per_1m_input_tokens=Decimal("62.5"),  # output priced at 2x input
        cost_per_1m_output_tokens=Decimal("125"),
        cost_per_1k_requests=Decimal("100"),
    )
    _usage(pool, world["search"], requests=300, input_tokens=200_000, output_tokens=100_000)
    _usage(pool, world["search"], hour=11, requests=10, input_tokens=10_000, output_tokens=0)
    _usage(pool, world["ads"], requests=100, input_tokens=40_000, output_tokens=80_000)

    result = estimates_refresh(days=[DAY], now=NOW)

    assert result.estimates_written == 2
    estimates = {e.team.slug: e for e in SpendEstimate.objects.select_related("team")}
    # search: 210k input x 62.5/1M + 100k output x 125/1M = 13.125 + 12.5
    assert estimates["search"].estimated_cost == Decimal("25.625")
    # ads: 40k x 62.5/1M + 80k x 125/1M = 2.5 + 10
    assert estimates["ads"].estimated_cost == Decimal("12.50")
    assert estimates["ads"].basis == "unit_cost"
    assert estimates["ads"].basis_details["unit_cost_day"] == "2026-10-19"
    assert estimates["ads"].currency == "USD"
    assert estimates["ads"].reconciled_at is None


def test_it_estimates_a_managed_api_from_its_price_card(world):
    managed = DeploymentFactory(
        slug="claude-bedrock", model=world["llama"], account=world["aws"], pricing_mode="managed_per_token"
    )
    for unit, price in (("1m_input_tokens", "3.00"), ("1m_output_tokens", "15.00"), ("1k_requests", "0.50")):
        PriceCard.objects.create(
            deployment=managed, unit=unit, price=Decimal(price), valid_from=DAY.replace(day=1)
        )
    # A later price that is not valid yet on DAY.
    PriceCard.objects.create(
        deployment=managed, unit="1m_input_tokens", price=Decimal("99"), valid_from=DAY + dt.timedelta(days=1)
    )
    _usage(managed, world["search"], requests=4000, input_tokens=2_000_000, output_tokens=500_000)

    estimates_refresh(days=[DAY], now=NOW)

    estimate = SpendEstimate.objects.get()
    # 2M x 3/1M + 0.5M x 15/1M + 4000 x 0.50/1k = 6 + 7.5 + 2
    assert estimate.estimated_cost == Decimal("15.50")
    assert estimate.basis == "price_card"
    assert estimate.basis_details["price_1m_input_tokens"] == "3.0000000000"


def test_it_estimates_an_instance_from_capacity_hours_split_by_tokens(world):
    pool = world["pool"]
    PriceCard.objects.create(
        deployment=pool, unit="hour", price=Decimal("12.29"), valid_from=dt.date(2026, 1, 1)
    )
    _usage(pool, world["search"], input_tokens=300_000, output_tokens=0, requests=10)
    _usage(pool, world["ads"], hour=3, input_tokens=50_000, output_tokens=50_000, requests=10)

    estimates_refresh(days=[DAY], now=NOW)

    estimates = {e.team.slug: e for e in SpendEstimate.objects.select_related("team")}
    # 24 capacity hours x 12.29 = 294.96, split 3:1 by tokens.
    assert estimates["search"].estimated_cost == Decimal("221.22")
    assert estimates["ads"].estimated_cost == Decimal("73.74")
    assert estimates["search"].basis_details["hours"] == "24.0000"
    assert estimates["search"].basis_details["hours_kind"] == "capacity"


def test_it_estimates_a_committed_instance_at_its_billed_hourly_rate(world):
    """Issue 16: a GPU pool under a savings plan with per-token reference cards only.

    Its bill (EffectiveCost) is the amortized commitment rate x hours, whatever it served; pricing
    its tokens at a managed API's list price missed the bill several times over, a ratio
    calibration refuses to learn. The estimate must be on the basis it is compared with.
    """
    pool, llama = world["pool"], world["llama"]
    Deployment.objects.filter(pk=pool.pk).update(pricing_mode="reserved")
    for unit in ("1m_input_tokens", "1m_output_tokens"):
        PriceCard.objects.create(
            deployment=pool, unit=unit, price=Decimal("3.00"), valid_from=dt.date(2026, 1, 1)
        )
    # The day before, billed at the savings-plan rate: 8 x $98.32 on demand x 0.64 = $503.3984/h.
    amortized_day = Decimal("12081.56")
    UnitCost.objects.create(
        day=DAY - dt.timedelta(days=1),
        model=llama,
        deployment=pool,
        provider="aws",
        currency="USD",
        effective_cost=amortized_day,
        requests=900_000,
        input_tokens=1_350_000_000,
        output_tokens=288_000_000,
        cost_per_1m_input_tokens=Decimal("7.37"),
        cost_per_1m_output_tokens=Decimal("7.37"),
    )
    # A busier day: tokens x $3/1M would be $7,500, with no relation to the bill.
    _usage(pool, world["search"], requests=600_000, input_tokens=1_500_000_000, output_tokens=300_000_000)
    _usage(pool, world["ads"], hour=3, requests=200_000, input_tokens=500_000_000, output_tokens=200_000_000)

    estimates_refresh(days=[DAY], now=NOW)

    estimates = {e.team.slug: e for e in SpendEstimate.objects.select_related("team")}
    assert {e.basis for e in estimates.values()} == {"unit_cost"}
    assert estimates["search"].basis_details["measure"] == "capacity_hours"
    # 24 capacity hours at the billed $503.3983333/h, split 18:7 by tokens.
    assert _cents(sum(e.estimated_cost for e in estimates.values())) == amortized_day
    assert _cents(estimates["search"].estimated_cost) == Decimal("8698.72")
    assert _cents(estimates["ads"].estimated_cost) == Decimal("3382.84")

    # The bill lands at the same amortized rate: the deployment-day is estimated to the cent.
    for team, amount in ((world["search"], "7000.00"), (world["ads"], "4000.00"), (None, "1081.56")):
        DailyCostFactory(
            day=DAY,
            account=world["aws"],
            team=team,
            model=llama if team else None,
            deployment=pool,
            billed_cost=Decimal(amount),
            effective_cost=Decimal(amount),
        )
    estimates_reconcile(days=[DAY], now=NOW)
    rows = SpendEstimate.objects.filter(day=DAY, deployment=pool)
    assert _cents(sum(r.billed_cost for r in rows)) == amortized_day
    assert _cents(sum(r.error for r in rows)) == Decimal("0.00")


def test_an_instance_registered_after_its_bills_is_estimated_from_them(world):
    """The demo seeds deployments after the history it bills: created_at is later than every
    replayed day. Its bill says it ran; counting no capacity hours fell back to token prices."""
    pool, llama = world["pool"], world["llama"]
    Deployment.objects.filter(pk=pool.pk).update(pricing_mode="reserved", created_at=NOW)
    PriceCard.objects.create(
        deployment=pool, unit="1m_input_tokens", price=Decimal("3.00"), valid_from=dt.date(2026, 1, 1)
    )
    UnitCost.objects.create(
        day=DAY - dt.timedelta(days=1),
        model=llama,
        deployment=pool,
        provider="aws",
        currency="USD",
        effective_cost=Decimal("240.00"),
    )
    _usage(pool, world["search"], requests=10, input_tokens=1_000_000_000)

    estimates_refresh(days=[DAY], now=NOW)

    estimate = SpendEstimate.objects.get()
    assert (estimate.basis, estimate.estimated_cost) == ("unit_cost", Decimal("240.00"))
    assert estimate.basis_details["hours"] == "24.0000"


def test_today_counts_only_the_hours_so_far_and_an_idle_instance_still_costs(world):
    pool = world["pool"]
    PriceCard.objects.create(
        deployment=pool, unit="hour", price=Decimal("10"), valid_from=dt.date(2026, 1, 1)
    )
    today = NOW.date()
    estimates_refresh(days=[today], now=NOW)
    estimate = SpendEstimate.objects.get()
    # No usage at all: 9.5 hours of an idle instance, carried by no team.
    assert estimate.team is None
    assert estimate.estimated_cost == Decimal("95.00")


def test_it_reports_deployments_it_cannot_estimate(world):
    _usage(world["pool"], world["search"], requests=5, input_tokens=5)
    result = estimates_refresh(days=[DAY], now=NOW)
    assert result.without_basis == [("2026-10-20", "llama-pool")]
    assert not SpendEstimate.objects.exists()


def test_it_is_idempotent(world):
    pool = world["pool"]
    PriceCard.objects.create(deployment=pool, unit="hour", price=Decimal("1"), valid_from=dt.date(2026, 1, 1))
    _usage(pool, world["search"], requests=1, input_tokens=1)
    estimates_refresh(days=[DAY], now=NOW)
    estimates_refresh(days=[DAY], now=NOW)
    assert SpendEstimate.objects.count() == 1
    assert SpendEstimate.objects.get().estimated_cost == Decimal("24")


def _priced_world(world):
    pool = world["pool"]
    PriceCard.objects.create(
        deployment=pool, unit="hour", price=Decimal("10"), valid_from=dt.date(2026, 1, 1)
    )
    _usage(pool, world["search"], input_tokens=300, requests=1)
    _usage(pool, world["ads"], input_tokens=100, requests=1)
    estimates_refresh(days=[DAY], now=NOW)  # 240.00: search 180.00, ads 60.00


def test_the_bill_landing_replaces_the_estimate_and_records_the_error(
    world, django_capture_on_commit_callbacks
):
    _priced_world(world)
    pool = world["pool"]
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        DailyCostFactory(
            day=DAY,
            account=world["aws"],
            team=world["search"],
            model=world["llama"],
            deployment=pool,
            billed_cost=Decimal("170.00"),
            effective_cost=Decimal("170.00"),
        )
        DailyCostFactory(
            day=DAY,
            account=world["aws"],
            team=None,
            model=None,
            deployment=pool,
            billed_cost=Decimal("80.00"),
            effective_cost=Decimal("80.00"),
        )
        signals.period_ingested.send(
            sender=None,
            account_id=world["aws"].pk,
            billing_period_start=DAY.replace(day=1),
            run_id=1,
            days=[DAY],
        )
    # The receivers only enqueued (after commit): allocation and this reconciliation. Run the latter.
    # (governance enqueues its own budget re-evaluation on the same signal)
    enqueued = {f"{c.__module__}.{c.__qualname__.split('.')[0]}" for c in callbacks}
    assert {
        "attribution.estimates.receivers.estimates_reconcile_on_ingest",
        "attribution.allocation.receivers.on_period_ingested",
    } <= enqueued
    assert estimates_reconcile_task(world["aws"].pk, [DAY.isoformat()]) == 3

    rows = {(e.team.slug if e.team else None): e for e in SpendEstimate.objects.select_related("team")}
    assert (rows["search"].estimated_cost, rows["search"].billed_cost, rows["search"].error) == (
        Decimal("180.00"),
        Decimal("170.00"),
        Decimal("10.00"),
    )
    assert (rows["ads"].billed_cost, rows["ads"].error) == (Decimal("0"), Decimal("60.00"))
    # Billed cost nobody estimated becomes its own row, so the day adds up to the bill.
    assert (rows[None].basis, rows[None].estimated_cost, rows[None].billed_cost) == (
        "unestimated",
        Decimal("0"),
        Decimal("80.00"),
    )
    assert all(row.reconciled_at is not None for row in rows.values())

    # A later refresh keeps the reconciled estimates (the bill has landed: nothing is re-estimated).
    estimates_refresh(days=[DAY], now=NOW)
    assert SpendEstimate.objects.count() == 3
    assert SpendEstimate.objects.get(team=world["search"]).estimated_cost == Decimal("180.00")

    admin = UserFactory(username="admin", roles=["admin"])
    [accuracy] = estimate_accuracy(user=admin)
    assert accuracy.deployment_slug == "llama-pool"
    assert accuracy.days == 1
    assert (accuracy.estimated, accuracy.billed) == (Decimal("240.00"), Decimal("250.00"))
    # |240 - 250| / 250 = 4 %; bias: 4 % under
    assert _cents(accuracy.mape_percent) == Decimal("4.00")
    assert _cents(accuracy.bias_percent) == Decimal("-4.00")
