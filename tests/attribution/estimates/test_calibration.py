"""Calibration: a deployment whose estimates are steadily off (taxes, a discount the card does not
know) gets a factor learned from its true-ups, applied to its new estimates, with a history; the
accuracy report shows the error per deployment-day with and without it, per provider and basis,
and the share of billed dollars nobody estimated."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from attribution.estimates.accuracy import estimate_accuracy_report
from attribution.estimates.calibration import calibration_learn
from attribution.estimates.services import estimates_reconcile, estimates_refresh
from attribution.models import (
    Deployment,
    EstimateCalibration,
    PriceCard,
    SpendEstimate,
    UnitCost,
    UsageRecord,
)
from tests.factories import (
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

FIRST = dt.date(2026, 10, 1)
CENT = Decimal("0.01")


@pytest.fixture
def world():
    aws = CloudAccountFactory(slug="aws-prod", provider="aws")
    gcp = CloudAccountFactory(slug="gcp-prod", provider="gcp")
    llama = ServedModelFactory(slug="llama", name="llama")
    search, ads = TeamFactory(slug="search", name="Search"), TeamFactory(slug="ads", name="Ads")
    pool = DeploymentFactory(slug="llama-pool", model=llama, account=aws)
    vertex = DeploymentFactory(slug="llama-vertex", model=llama, account=gcp, provider="gcp")
    Deployment.objects.update(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    # 10 $/h: every day is estimated at 240.00 before calibration.
    PriceCard.objects.create(
        deployment=pool, unit="hour", price=Decimal("10"), valid_from=dt.date(2026, 1, 1)
    )
    return {
        "aws": aws,
        "gcp": gcp,
        "llama": llama,
        "search": search,
        "ads": ads,
        "pool": pool,
        "vertex": vertex,
    }


def _usage(deployment, team, day, tokens=1000):
    UsageRecord.objects.create(
        bucket_start=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
        bucket_seconds=60,
        reporter="gw",
        deployment=deployment,
        team=team,
        model=deployment.model,
        requests=10,
        input_tokens=tokens,
        output_tokens=0,
    )


def _estimate(day):
    """Estimates made the morning after the day, as beat would."""
    estimates_refresh(
        days=[day], now=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1), tzinfo=dt.UTC)
    )


def _bill(world, day, amount, *, deployment=None, team="search", account="aws"):
    deployment = deployment or world["pool"]
    DailyCostFactory(
        day=day,
        account=world[account],
        team=world[team] if team else None,
        model=world["llama"],
        deployment=deployment,
        billed_cost=Decimal(amount),
        effective_cost=Decimal(amount),
    )
    # The bill lands half an hour after midnight, before the next day's estimates are made.
    estimates_reconcile(
        days=[day], now=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 30), tzinfo=dt.UTC)
    )


def _live_day(world, day, billed):
    _usage(world["pool"], world["search"], day)
    _estimate(day)
    _bill(world, day, billed)


def test_a_steady_bias_is_learned_and_applied_to_new_estimates(world):
    # Bills 10 % above the card (a tax the card does not know), three days running.
    for offset in range(3):
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00")

    [calibration] = EstimateCalibration.objects.all()
    assert (calibration.basis, calibration.factor, calibration.days_used) == ("price_card", Decimal("1.1"), 3)
    assert (calibration.window_first, calibration.window_last) == (FIRST, FIRST + dt.timedelta(days=2))
    assert (calibration.estimated, calibration.billed) == (Decimal("720"), Decimal("792"))

    day = FIRST + dt.timedelta(days=3)
    _usage(world["pool"], world["search"], day)
    _estimate(day)
    estimate = SpendEstimate.objects.get(day=day)
    assert (estimate.uncalibrated_cost, estimate.calibration_factor) == (Decimal("240"), Decimal("1.1"))
    assert estimate.estimated_cost == Decimal("264.00")
    assert estimate.basis_details["calibration_id"] == calibration.pk

    # Its bill matches: the factor, learned from uncalibrated figures, does not move (no new row).
    _bill(world, day, "264.00")
    assert EstimateCalibration.objects.count() == 1
    assert calibration_learn(now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) == []


def test_too_few_true_ups_teach_nothing(world):
    for offset in range(2):
        _live_day(world, FIRST + dt.timedelta(days=offset), "300.00")
    assert not EstimateCalibration.objects.exists()
    day = FIRST + dt.timedelta(days=2)
    _usage(world["pool"], world["search"], day)
    _estimate(day)
    estimate = SpendEstimate.objects.get(day=day)
    assert (estimate.estimated_cost, estimate.calibration_factor) == (Decimal("240"), None)


def test_a_step_is_followed_and_kept_as_history(world):
    for offset in range(4):
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00")
    # A discount tier starts: bills drop to the card's price.
    for offset in range(4, 8):
        _live_day(world, FIRST + dt.timedelta(days=offset), "240.00")
    history = list(EstimateCalibration.objects.order_by("learned_at"))
    assert history[0].factor == Decimal("1.1")
    # Four days after the step the correction is gone or nearly (within 3 %; the old one was 10 %):
    # recency weighting follows the step, and a window that mixes both regimes is not steady.
    assert Decimal("1") <= history[-1].factor < Decimal("1.03")
    # A row each time it moved: 1.1, then down as the step's days gain weight, then 1 (no correction)
    # once the window is mixed; never a row for an unchanged factor.
    factors = [row.factor for row in history]
    assert factors == sorted(factors, reverse=True) and len(set(factors)) == len(factors) >= 3


def test_the_accuracy_report_compares_each_deployment_day_both_ways(world):
    for offset in range(3):
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00")
    for offset in range(3, 5):  # calibrated: exact on day 4, 5 % under on day 5
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00" if offset == 3 else "277.89")
    # A day of another provider that nobody estimated (no card, no unit cost): all of it unestimated.
    _usage(world["vertex"], world["search"], FIRST)
    _estimate(FIRST)
    _bill(world, FIRST, "100.00", deployment=world["vertex"], account="gcp")

    admin = UserFactory(username="admin", roles=["admin"])
    report = estimate_accuracy_report(user=admin)

    # Five estimated deployment-days (the unestimated one does not count in the error).
    assert report.overall.deployment_days == 6
    # Uncalibrated: |240 - 264| / 264 = 9.09 % on four days, |240 - 277.89| / 277.89 = 13.63 % on one.
    assert report.overall.uncalibrated_median_error_percent == 9.09
    # Calibrated: days 1-3 uncalibrated (9.09 %), day 4 exact (0 %), day 5 |264 - 277.89| = 5.0 %.
    assert report.overall.median_error_percent == 9.09
    by_provider = {group.key: group for group in report.by_provider}
    assert by_provider["gcp"].median_error_percent is None
    assert by_provider["aws"].deployment_days == 5
    by_basis = {group.key: group for group in report.by_basis}
    assert set(by_basis) == {"price_card", "unestimated"}
    [coverage] = report.coverage
    billed = Decimal("264.00") * 4 + Decimal("277.89") + Decimal("100.00")
    assert coverage.billed == billed
    assert coverage.unestimated == Decimal("100.00")
    assert coverage.unestimated_share_percent == round(float(Decimal(100) / billed * 100), 2)
    days = {row.day: row for row in estimate_accuracy_report(user=admin, with_days=True).deployment_days}
    fifth = days[FIRST + dt.timedelta(days=4)]
    assert fifth.estimated.quantize(CENT) == Decimal("264.00")
    assert round(fifth.error_percent(), 2) == 5.0
    assert round(fifth.error_percent(calibrated=False), 2) == 13.63


def test_a_price_card_comes_before_a_days_old_unit_cost(world):
    day = FIRST + dt.timedelta(days=5)
    UnitCost.objects.create(
        day=day - dt.timedelta(days=1),
        model=world["llama"],
        deployment=world["pool"],
        provider="aws",
        currency="USD",
        effective_cost=Decimal("999"),
        input_tokens=1000,
        cost_per_1m_input_tokens=Decimal("999000"),
        cost_per_1m_output_tokens=Decimal("999000"),
    )
    _usage(world["pool"], world["search"], day)
    _estimate(day)
    estimate = SpendEstimate.objects.get()
    assert (estimate.basis, estimate.estimated_cost) == ("price_card", Decimal("240"))


def test_the_api_shows_factors_and_history_by_role(world):
    for offset in range(4):
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00" if offset < 3 else "252.00")
    finance = UserFactory(username="fin", roles=["finance"])
    member = UserFactory(username="member", roles=["viewer"])
    MembershipFactory(user=member, team=world["search"])
    outsider = UserFactory(username="outsider", roles=["viewer"])
    MembershipFactory(user=outsider, team=world["ads"])
    client = APIClient()

    client.force_authenticate(finance)
    rows = client.get("/api/v1/estimates/calibration").json()
    assert [(row["deployment"], row["in_force"]) for row in rows] == [
        ("llama-pool", True),
        ("llama-pool", False),
    ]
    assert rows[1]["factor"] == "1.100000" and rows[1]["billed"] is not None
    assert Decimal(rows[0]["factor"]) < Decimal("1.1")
    report = client.get("/api/v1/estimates/accuracy-report", {"deployment": "llama-pool"}).json()
    assert report["overall"]["deployment_days"] == 4
    assert len(report["deployment_days"]) == 4 and report["deployment_days"][0]["basis"] == "price_card"
    assert report["coverage"][0]["unestimated_share_percent"] == 0.0

    client.force_authenticate(member)
    [row, _] = client.get("/api/v1/estimates/calibration").json()
    assert row["billed"] is None and row["estimated"] is None  # deployment-wide sums: finance only
    client.force_authenticate(outsider)
    assert client.get("/api/v1/estimates/calibration").json() == []
    assert client.get("/api/v1/estimates/accuracy-report").json()["overall"]["deployment_days"] == 0


def test_the_deployment_page_shows_each_day_and_the_factor_history_to_who_may_see_them(world, client):
    for offset in range(4):
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00")
    finance = UserFactory(username="fin", roles=["finance"])
    client.force_login(finance)
    response = client.get("/estimates/llama-pool/")
    assert response.status_code == 200
    assert len(response.context["days"]) == 4
    page = response.content.decode()
    assert "in force" in page and "×1.1000" in page
    # Day 4 was estimated with the factor: 264.00 against a bill of 264.00.
    assert response.context["days"][0].error_percent() == 0.0

    outsider = UserFactory(username="outsider", roles=["viewer"])
    MembershipFactory(user=outsider, team=world["ads"])
    client.force_login(outsider)
    response = client.get("/estimates/llama-pool/")
    assert response.context["days"] == [] and response.context["history"] == []
    assert client.get("/estimates/no-such-deployment/").status_code == 404


def test_the_deployment_pages_trend_is_the_same_built_checked_or_unchecked(
    world, client, page_figures_checked_and_unchecked
):
    for offset in range(4):
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00")
    client.force_login(UserFactory(username="fin", roles=["finance"]))
    checked, unchecked = page_figures_checked_and_unchecked(client, "/estimates/llama-pool/")
    assert checked["trend"]["data"]
    assert unchecked == checked


def test_the_deployment_page_reads_a_fixed_number_of_queries_however_many_days(
    world, client, assert_page_queries_flat
):
    for offset in range(3):
        _live_day(world, FIRST + dt.timedelta(days=offset), "264.00")

    def grow():
        days = [FIRST + dt.timedelta(days=offset) for offset in range(3, 9)]
        for day in days:
            _live_day(world, day, "270.00")
        return [f"<td>{day:%a} {day.day} {day:%b}</td>" for day in days]

    client.force_login(UserFactory(username="fin", roles=["finance"]))
    assert_page_queries_flat(client, "/estimates/llama-pool/", grow=grow, ceiling=10)
