"""Period-end forecasts of a scope's spend with an 80 % interval.

- 21 days of history or more: ETS (statsmodels Holt-Winters, the last 12 weeks) with additive
  errors, a damped additive trend and additive weekly seasonality; the interval of the period-end
  total comes from simulated paths (the sum of the remaining days, whose errors are correlated,
  not the sum of daily bands).
- 7 to 20 days: the mean of the last 7 days (one whole week, so the weekday mix is right) for each
  remaining day, the interval from the day-to-day spread scaled by the horizon.
- under 7 days: the run rate (mean so far), with the same spread-based interval when there are at
  least 2 days, else none.
A flat series gives a zero-width interval; the total is never below what was already spent.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from governance.periods import Period

CENT = Decimal("0.01")
Z_80 = 1.2815515655446004  # two-sided 80 %: 10th and 90th percentiles
SIMULATIONS = 400
ETS_MIN_DAYS = 21
# Twelve weeks: enough for the weekly pattern and trend, recent enough to follow a level change.
HISTORY_DAYS = 84
WEEK = 7


@dataclass(frozen=True)
class Forecast:
    point: Decimal  # period-end total spend
    lower: Decimal  # 80 % interval
    upper: Decimal
    method: str
    # Cumulative forecast per remaining day: (day, point, lower, upper).
    path: list[tuple[dt.date, Decimal, Decimal, Decimal]] = field(default_factory=list)


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(round(float(value), 2))).quantize(CENT)


def forecast_run_rate(*, actuals: list[Decimal], period: Period) -> Forecast:
    """Spend so far plus the mean daily spend so far for each remaining day (the naive baseline)."""
    spent = sum(actuals, Decimal("0"))
    remaining = period.days - len(actuals)
    daily = spent / len(actuals) if actuals else Decimal("0")
    point = _money(spent + daily * remaining)
    return Forecast(point=point, lower=point, upper=point, method="run_rate")


def _remaining_sums_ets(history: np.ndarray, horizon: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Simulated sums of the next `horizon` days (and the mean path) from an ETS fit: additive
    errors, damped additive trend, additive weekly seasonality (statsmodels' Holt-Winters, which
    fits several times faster than ETSModel and simulates the same state-space paths)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            history, trend="add", damped_trend=True, seasonal="add", seasonal_periods=WEEK,
            initialization_method="estimated",
        )  # fmt: skip
        fitted = model.fit(optimized=True)
        mean_path = np.asarray(fitted.forecast(horizon))
        paths = np.asarray(
            fitted.simulate(
                horizon, repetitions=SIMULATIONS, anchor="end", error="add", rng=np.random.default_rng(seed)
            )
        ).reshape(horizon, -1)
    if not np.all(np.isfinite(mean_path)) or not np.all(np.isfinite(paths)):
        raise ValueError("ETS produced non-finite values")
    # Spend is never negative: clip each simulated day at zero before summing.
    return np.clip(paths, 0, None).sum(axis=0), np.clip(mean_path, 0, None)


def forecast_total(
    *, history: list[float], spent_in_period: float, remaining_days: int, seed: int = 7
) -> tuple[float, float, float, str, list[tuple[float, float, float]]]:
    """Period-end total = spent so far + forecast of the remaining days, with the 80 % interval.

    `history` is the daily series up to the last complete day (period days included). Returns
    (point, lower, upper, method, cumulative path per remaining day)."""
    values = np.asarray(history, dtype=float)
    if remaining_days <= 0:
        return spent_in_period, spent_in_period, spent_in_period, "actual", []
    days = len(values)
    method = "none"
    if days >= ETS_MIN_DAYS and float(values[-ETS_MIN_DAYS:].std()) > 0:
        try:
            sums, mean_path = _remaining_sums_ets(values[-HISTORY_DAYS:], remaining_days, seed)
            point = float(mean_path.sum())
            lower, upper = (float(value) for value in np.percentile(sums, [10, 90]))
            cumulative = np.cumsum(mean_path)
            spread = np.linspace(0, 1, remaining_days + 1)[1:]
            path = [
                (
                    spent_in_period + c,
                    spent_in_period + c - (point - lower) * s,
                    spent_in_period + c + (upper - point) * s,
                )
                for c, s in zip(cumulative, spread, strict=True)
            ]
            return spent_in_period + point, spent_in_period + lower, spent_in_period + upper, "ets", path
        except (ValueError, np.linalg.LinAlgError):
            method = "weekly_mean_fallback"
    if days >= WEEK:
        recent = values[-WEEK:]
        daily, method = float(recent.mean()), method if method != "none" else "weekly_mean"
        spread = float(values[-min(days, 28) :].std(ddof=1)) if days > 1 else 0.0
    elif days > 0:
        daily, method = float(values.mean()), "run_rate"
        spread = float(values.std(ddof=1)) if days > 1 else 0.0
    else:
        return spent_in_period, spent_in_period, spent_in_period, "no_history", []
    point = daily * remaining_days
    half = Z_80 * spread * math.sqrt(remaining_days)
    path = []
    for index in range(1, remaining_days + 1):
        part_half = Z_80 * spread * math.sqrt(index)
        cumulative = daily * index
        path.append(
            (
                spent_in_period + cumulative,
                spent_in_period + max(0.0, cumulative - part_half),
                spent_in_period + cumulative + part_half,
            )
        )
    return (
        spent_in_period + point,
        spent_in_period + max(0.0, point - half),
        spent_in_period + point + half,
        method,
        path,
    )


def forecast_period(*, series: list[tuple[dt.date, Decimal]], period: Period, as_of: dt.date) -> Forecast:
    """Forecast the period-end total from the daily `series` (any days before `as_of`; today is
    partial and left to the forecast)."""
    history = [float(amount) for day, amount in series if day < as_of]
    spent = sum((amount for day, amount in series if period.start <= day < as_of), Decimal("0"))
    remaining = (period.end - max(as_of, period.start)).days
    point, lower, upper, method, path = forecast_total(
        history=history, spent_in_period=float(spent), remaining_days=remaining
    )
    first = max(as_of, period.start)
    return Forecast(
        point=_money(point),
        lower=_money(lower),
        upper=_money(upper),
        method=method,
        path=[
            (first + dt.timedelta(days=index), _money(p), _money(lo), _money(hi))
            for index, (p, lo, hi) in enumerate(path)
        ],
    )


def backtest_mape(
    *, series: list[tuple[dt.date, Decimal]], horizon: int = 14, origins: int = 4
) -> float | None:
    """Mean absolute percentage error of `horizon`-day totals forecast from rolling origins in the
    series' last weeks (one week apart). None when the series is too short or the totals are 0."""
    values = [float(amount) for _, amount in series]
    errors = []
    for index in range(origins):
        cut = len(values) - horizon - index * WEEK
        if cut < WEEK:
            break
        actual = sum(values[cut : cut + horizon])
        if actual <= 0:
            continue
        point, *_ = forecast_total(history=values[:cut], spent_in_period=0.0, remaining_days=horizon)
        errors.append(abs(point - actual) / actual)
    return sum(errors) / len(errors) if errors else None
