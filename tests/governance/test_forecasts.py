"""Forecasts on short, flat, trending and weekly-seasonal series; the stored forecast of a budget;
anomalies on an injected spike with the contributor that explains it."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pytest

from attribution.models import DailyCost
from governance.anomalies import anomalies_detect
from governance.forecast_services import budget_forecast_refresh
from governance.forecasting import (
    Remaining,
    backtest_errors,
    backtest_mape,
    calendar_charges,
    forecast_remaining,
    forecast_run_rate,
    forecast_total,
    interval_calibrated,
)
from governance.models import Alert
from governance.periods import period_containing
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    TeamFactory,
)


def test_under_a_week_of_history_falls_back_to_the_run_rate():
    point, lower, upper, method, path = forecast_total(
        history=[10, 12, 14], spent_in_period=36, remaining_days=10
    )
    assert method == "run_rate"
    assert point == pytest.approx(36 + 12 * 10)
    assert lower < point < upper
    assert len(path) == 10 and path[-1][0] == pytest.approx(point)


def test_a_flat_series_forecasts_exactly_with_a_zero_width_interval():
    point, lower, upper, method, _ = forecast_total(
        history=[50.0] * 40, spent_in_period=500, remaining_days=20
    )
    assert point == pytest.approx(1500) and lower == pytest.approx(1500) and upper == pytest.approx(1500)
    assert method == "weekly_mean"


def test_a_trending_series_is_forecast_better_than_the_run_rate():
    rng = np.random.default_rng(1)
    days = np.arange(60)
    series = 100 + 3 * days + rng.normal(0, 4, size=60)
    history, future = series[:40], series[40:]
    point, lower, upper, method, _ = forecast_total(
        history=list(history), spent_in_period=0, remaining_days=20
    )
    actual = float(future.sum())
    run_rate = float(history[-10:].mean()) * 20  # what 'spend so far / days' would say for this month
    assert method == "ets"
    assert abs(point - actual) < abs(run_rate - actual) / 2
    # Whether one draw falls inside an 80 % band is chance; bench/forecast.py measures coverage.
    assert lower < point < upper


def test_weekly_seasonality_is_learnt():
    rng = np.random.default_rng(2)
    weekly = np.array([100, 110, 105, 100, 95, 20, 15])  # weekends are quiet
    series = np.tile(weekly, 9) + rng.normal(0, 3, size=63)
    # 5 days ahead from a Friday-aligned cut: Fri..Tue contains the weekend.
    history = list(series[:53])
    point, lower, upper, method, path = forecast_total(history=history, spent_in_period=0, remaining_days=5)
    actual = float(series[53:58].sum())
    assert method == "ets"
    assert abs(point - actual) / actual < 0.05
    naive = float(np.mean(history[-7:])) * 5
    assert abs(point - actual) < abs(naive - actual)
    daily = np.diff([0.0] + [step[0] for step in path])
    assert daily.min() < 0.4 * daily.max()  # the quiet weekend shows in the path
    assert lower < point < upper


def test_backtest_error_is_small_on_a_predictable_series_and_none_without_history():
    series = [(dt.date(2026, 9, 1) + dt.timedelta(days=i), Decimal(100 + (i % 7) * 5)) for i in range(70)]
    error = backtest_mape(series=series)
    assert error is not None and error < 0.05
    assert backtest_mape(series=series[:10]) is None


def test_run_rate_baseline():
    period = period_containing(period="month", at=dt.datetime(2026, 11, 10, tzinfo=dt.UTC))
    forecast = forecast_run_rate(actuals=[Decimal("10")] * 10, period=period)
    assert forecast.point == Decimal("300.00")


@pytest.mark.django_db
def test_a_budget_forecast_is_stored_with_its_interval_backtest_and_daily_path():
    team, account = TeamFactory(), CloudAccountFactory()
    start = dt.date(2026, 9, 1)
    DailyCost.objects.bulk_create(
        [
            DailyCostFactory.build(
                team=team,
                account=account,
                day=start + dt.timedelta(days=i),
                billed_cost=amount,
                effective_cost=amount,
            )  # fmt: skip
            for i in range(70)
            for amount in [Decimal(100 + 2 * i + (30 if (start + dt.timedelta(days=i)).weekday() < 5 else 0))]
        ]
    )
    budget = BudgetFactory(team=team, amount=Decimal("6000"))
    now = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)
    row = budget_forecast_refresh(budget_id=budget.pk, now=now)
    assert row.method == "ets" and row.period_start == dt.date(2026, 11, 1)
    assert row.lower < row.point < row.upper
    assert row.spend_to_date == sum(
        Decimal(100 + 2 * i + (30 if (start + dt.timedelta(days=i)).weekday() < 5 else 0))
        for i in range(61, 70)
    )
    assert row.backtest_mape is not None and row.backtest_mape < Decimal("0.1")
    assert [item["day"] for item in row.daily][:1] == ["2026-11-01"] and row.daily[-1]["day"] == "2026-11-30"
    expected_end = sum(
        100 + 2 * i + (30 if (start + dt.timedelta(days=i)).weekday() < 5 else 0) for i in range(61, 91)
    )
    assert math.isclose(float(row.point), expected_end, rel_tol=0.05)


@pytest.mark.django_db
def test_an_injected_spike_is_an_anomaly_with_its_contributor():
    search, ads = TeamFactory(slug="search"), TeamFactory(slug="ads")
    account = CloudAccountFactory()
    steady, runaway = (
        DeploymentFactory(slug="llama-a100", account=account),
        DeploymentFactory(slug="llama-h100", account=account),
    )
    day = dt.date(2026, 11, 20)
    rows = []
    for offset in range(29):
        current = day - dt.timedelta(days=28 - offset)
        for team, deployment, amount in ((search, steady, 200 + offset % 5), (ads, steady, 80 + offset % 3)):
            rows.append(DailyCostFactory.build(
                team=team, account=account, deployment=deployment, day=current,
                billed_cost=Decimal(amount), effective_cost=Decimal(amount), service_name="SageMaker",
            ))  # fmt: skip
    # On the day, search's traffic also hits the H100 deployment: +900.
    rows.append(DailyCostFactory.build(team=search, account=account, deployment=runaway, day=day,
                                       billed_cost=Decimal("900"), effective_cost=Decimal("900"),
                                       service_name="SageMaker"))  # fmt: skip
    DailyCost.objects.bulk_create(rows)
    raised = anomalies_detect(day=day)
    by_scope = {(anomaly.dimension, anomaly.value): anomaly for anomaly, _ in raised}
    assert ("team", "search") in by_scope and ("team", "ads") not in by_scope
    anomaly = by_scope[("team", "search")]
    assert (
        anomaly.actual == pytest.approx(900 + 200 + 28 % 5)
        and anomaly.expected < anomaly.upper < anomaly.actual
    )
    assert (
        anomaly.contributors[0]["dimension"] == "deployment"
        and anomaly.contributors[0]["value"] == "llama-h100"
    )
    alert = Alert.objects.get(dedup_key="anomaly:team:search:2026-11-20")
    assert alert.kind == "anomaly" and alert.team == search and "llama-h100" in alert.message
    # Detected again, it is the same alert.
    anomalies_detect(day=day)
    assert Alert.objects.filter(kind="anomaly", team=search).count() == 1


@pytest.mark.django_db
def test_a_spike_on_one_sku_names_that_sku_as_the_top_contributor():
    """Same team, deployment, service and region all month: only the SKU explains the jump."""
    search = TeamFactory(slug="search")
    account = CloudAccountFactory()
    deployment = DeploymentFactory(slug="llama-a100", account=account)
    day = dt.date(2026, 11, 20)
    rows = []
    for offset in range(29):
        current = day - dt.timedelta(days=28 - offset)
        for sku, amount in (("ml.g5.12xlarge-hours", 150 + offset % 4), ("ml-storage-gb-month", 20)):
            rows.append(DailyCostFactory.build(
                team=search, account=account, deployment=deployment, day=current,
                billed_cost=Decimal(amount), effective_cost=Decimal(amount), service_name="SageMaker",
                sku_id=sku,
            ))  # fmt: skip
    # On the day, the endpoint scales out onto p4d instances: +700 on a SKU never seen before.
    rows.append(DailyCostFactory.build(team=search, account=account, deployment=deployment, day=day,
                                       billed_cost=Decimal("700"), effective_cost=Decimal("700"),
                                       service_name="SageMaker",
                                       sku_id="ml.p4d.24xlarge-hours"))  # fmt: skip
    DailyCost.objects.bulk_create(rows)
    raised = {(anomaly.dimension, anomaly.value): anomaly for anomaly, _ in anomalies_detect(day=day)}
    anomaly = raised[("team", "search")]
    assert anomaly.contributors[0] == {
        "dimension": "sku",
        "value": "ml.p4d.24xlarge-hours",
        "actual": Decimal("700.00"),
        "expected": Decimal("0.00"),
        "delta": Decimal("700.00"),
        "basis": "billed",
    }
    # The steady SKUs did not rise, so they explain nothing.
    assert all(item["value"] != "ml-storage-gb-month" for item in anomaly.contributors)
    assert "ml.p4d.24xlarge-hours" in Alert.objects.get(dedup_key="anomaly:team:search:2026-11-20").message


def _with_month_start_fee(
    *, start: dt.date, days: int, fee: float, seed: int
) -> tuple[list[float], list[float]]:
    """Usage of about 100 a day (quiet weekends, noise) and, separately, `fee` on each 1st."""
    rng = np.random.default_rng(seed)
    usage, fees = [], []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        usage.append((100.0 if day.weekday() < 5 else 60.0) + float(rng.normal(0, 3)))
        fees.append(fee if day.day == 1 else 0.0)
    return usage, fees


def test_a_month_start_fee_is_in_the_point_forecast_on_the_1st_of_the_horizon():
    # 70 days of history to 2026-12-25, then the 7 days to the end of the year and January's 31:
    # one 1st (2027-01-01) in the horizon, three (Oct, Nov, Dec) in the history.
    start, fee = dt.date(2026, 10, 17), 2000.0
    usage, fees = _with_month_start_fee(start=start, days=70 + 38, fee=fee, seed=3)
    spend = [u + f for u, f in zip(usage, fees, strict=True)]
    history, horizon = spend[:70], 38
    assert start + dt.timedelta(days=70) == dt.date(2026, 12, 26)
    actual = sum(spend[70:])

    charges = calendar_charges(values=np.array(history), first_day=start)
    assert set(charges.amounts) == {"month_start"}
    assert charges.amounts["month_start"] == pytest.approx(fee, rel=0.05)

    point, lower, upper, method, path = forecast_total(
        history=history, spent_in_period=0, remaining_days=horizon, first_day=start
    )
    assert method == "ets"
    assert point == pytest.approx(actual, rel=0.03)
    assert lower <= actual <= upper
    daily = np.diff([0.0] + [step[0] for step in path])
    new_year = (dt.date(2027, 1, 1) - dt.date(2026, 12, 26)).days
    assert daily[new_year] - np.median(daily) == pytest.approx(fee, rel=0.1)
    # Without dates there is no calendar: the fee is not forecast (and the history's fees are
    # smeared into the usage level instead).
    undated, *_ = forecast_total(history=history, spent_in_period=0, remaining_days=horizon)
    assert abs(undated - actual) > abs(point - actual)


def test_a_credit_on_the_1st_is_a_negative_charge_and_a_month_without_it_is_left_alone():
    start = dt.date(2026, 7, 1)
    usage, fees = _with_month_start_fee(start=start, days=150, fee=-400.0, seed=4)
    spend = [u + f for u, f in zip(usage, fees, strict=True)]
    # The latest month's credit has not landed yet (November 1 is ordinary usage).
    november = (dt.date(2026, 11, 1) - start).days
    spend[november] = usage[november]
    charges = calendar_charges(values=np.array(spend), first_day=start)
    assert charges.amounts["month_start"] == pytest.approx(-400, rel=0.05)
    assert charges.adjusted[november] == spend[november]
    # A charged 1st becomes its same-weekday baseline: usage, within the day-to-day noise.
    october = (dt.date(2026, 10, 1) - start).days
    assert charges.adjusted[october] == pytest.approx(usage[october], abs=10)


@pytest.mark.parametrize("seed", range(5))
def test_no_calendar_charge_is_found_in_plain_noisy_usage(seed):
    rng = np.random.default_rng(seed)
    values = 500 + rng.normal(0, 60, size=180) + 40 * (np.arange(180) % 7 < 5)
    assert calendar_charges(values=values, first_day=dt.date(2026, 5, 1)).amounts == {}


def test_the_interval_is_set_by_the_scopes_own_backtest_errors():
    remaining = Remaining(
        daily=np.full(10, 100.0), lower=990.0, upper=1010.0, method="ets", band_growth="linear"
    )
    # Past forecasts at this horizon missed by up to 12 %: the +-1 % model band is not believable.
    # Four backtests: the ceil(5 x 0.8) = 4th smallest absolute error, the largest, sets the band.
    widened = interval_calibrated(remaining=remaining, errors=[0.1, -0.12, 0.08, -0.1])
    assert widened.point == remaining.point
    assert (widened.lower, widened.upper) == (pytest.approx(880.0), pytest.approx(1120.0))
    # Backtests that landed within 0.2 % set a band narrower than the model's.
    narrowed = interval_calibrated(remaining=remaining, errors=[0.001, -0.002, 0.001, 0.0])
    assert (narrowed.lower, narrowed.upper) == (pytest.approx(998.0), pytest.approx(1002.0))
    # Under four backtests the rank is past n: the model's interval stands.
    few = interval_calibrated(remaining=remaining, errors=[0.3, -0.3, 0.1])
    assert (few.lower, few.upper) == (990.0, 1010.0) and few.backtest_errors == [0.3, -0.3, 0.1]
    # Never below zero spend.
    wild = interval_calibrated(remaining=remaining, errors=[1.5, -1.2, 0.5, 0.2])
    assert wild.lower == 0.0 and wild.upper == pytest.approx(2500.0)


def test_backtest_errors_come_from_the_same_forecaster_at_the_same_horizon():
    # Level shifts every three weeks: the model's band, fitted on a calm stretch, is narrow, but
    # forecasts made before a shift missed; the calibrated interval is wider than the model's.
    rng = np.random.default_rng(5)
    levels = np.repeat([100.0, 140.0, 90.0, 150.0, 95.0, 145.0], 21)
    values = levels + rng.normal(0, 2, size=levels.size)
    history = list(values[:-5])
    errors = backtest_errors(values=np.array(history), first_day=None, horizon=10)
    assert len(errors) == 4 and max(abs(error) for error in errors) > 0.1
    model = forecast_remaining(history=history, remaining_days=10, calibrate=False)
    calibrated = forecast_remaining(history=history, remaining_days=10)
    assert calibrated.backtest_errors == pytest.approx(errors)
    assert calibrated.point == pytest.approx(model.point)
    assert calibrated.lower < model.lower and calibrated.upper > model.upper


@pytest.mark.django_db
def test_spend_to_date_and_forecast_are_on_the_basis_estimates_carry_pool_shares_and_commitments():
    """A team's spend is its tagged deployment (100 a day) plus its share of a reserved shared pool
    (the commitment is a 1,860 purchase on the 1st, untagged; allocation spreads it as 40 a day of
    the team's effective cost, 20 to another team). Bills landed up to Nov 30; Dec 1-2 are
    estimated from usage, the pool share included (140 a day), as estimates are made. Read as the
    tagged billed cost, the history was 100 a day (the 1st: 100, the purchase untagged) and the
    estimated days a jump to 140; on the allocated effective basis every day is 140."""
    from attribution.models import AllocatedCost, SpendEstimate
    from governance.spend import SpendScope, scope_spend_daily

    ads, other, account = TeamFactory(slug="ads"), TeamFactory(slug="other"), CloudAccountFactory()
    direct = DeploymentFactory(slug="ads-direct", account=account, provider=account.provider)
    pool = DeploymentFactory(slug="shared-pool", account=account, provider=account.provider)
    bills, allocated = [], []
    for offset in range(61):  # Oct 1 .. Nov 30
        day = dt.date(2026, 10, 1) + dt.timedelta(days=offset)
        cell = {
            "day": day, "account": account, "billing_period_start": day.replace(day=1),
            "provider": account.provider, "charge_category": "Usage", "billing_currency": "USD",
        }  # fmt: skip
        bills += [
            DailyCostFactory.build(**cell, team=ads, model=direct.model, deployment=direct,
                                   billed_cost=Decimal("100"), effective_cost=Decimal("100")),
            DailyCostFactory.build(**cell, model=pool.model, deployment=pool,
                                   billed_cost=Decimal("0"), effective_cost=Decimal("60")),
        ]  # fmt: skip
        allocated += [
            AllocatedCost(**cell, team=ads, model=direct.model, deployment=direct, billed_cost=Decimal("100"),
                          effective_cost=Decimal("100"), allocated_method_id="direct"),
            AllocatedCost(**cell, team=ads, model=pool.model, deployment=pool, billed_cost=Decimal("0"),
                          effective_cost=Decimal("40"), allocated_method_id="gpu_seconds"),
            AllocatedCost(**cell, team=other, model=pool.model, deployment=pool, billed_cost=Decimal("0"),
                          effective_cost=Decimal("20"), allocated_method_id="gpu_seconds"),
        ]  # fmt: skip
        if day.day == 1:
            purchase = {**cell, "charge_category": "Purchase", "billed_cost": Decimal("1860"),
                        "effective_cost": Decimal("0")}  # fmt: skip
            bills.append(DailyCostFactory.build(**purchase))
            allocated.append(AllocatedCost(**purchase, allocated_method_id="", unallocated_reason="untagged"))
    DailyCost.objects.bulk_create(bills)
    AllocatedCost.objects.bulk_create(allocated)
    for day in (dt.date(2026, 12, 1), dt.date(2026, 12, 2)):
        for deployment, amount in ((direct, "100"), (pool, "40")):
            SpendEstimate.objects.create(
                day=day, deployment=deployment, team=ads, model=deployment.model, currency="USD",
                estimated_cost=Decimal(amount), basis="unit_cost",
            )  # fmt: skip
    spend = scope_spend_daily(
        scope=SpendScope(team_id=ads.pk), start=dt.date(2026, 10, 1), end=dt.date(2026, 12, 4), currency="USD"
    )
    assert {amount for _, amount in spend.series(dt.date(2026, 10, 1), dt.date(2026, 12, 3))} == {
        Decimal("140")
    }
    assert spend.billed_total == Decimal("8540.00") and spend.estimated_total == Decimal("280.00")
    # The organisation's billed spend is still the bill: allocated plus unallocated, per account-day.
    everyone = scope_spend_daily(
        scope=SpendScope(), start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 1), currency="USD"
    )
    assert everyone.billed_total == Decimal("4800.00")  # 30 x (100 + 60): the purchase is amortized

    budget = BudgetFactory(team=ads, amount=Decimal("5000"))
    row = budget_forecast_refresh(budget_id=budget.pk, now=dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))
    assert row.period_start == dt.date(2026, 12, 1) and row.spend_to_date == Decimal("280.00")
    # 31 days at the 140 a day of both the history and the estimated days, to the cent.
    assert (row.point, row.lower, row.upper) == (Decimal("4340.00"),) * 3
    assert row.daily[2] == {"day": "2026-12-03", "forecast": "420.00", "lower": "420.00", "upper": "420.00"}
