"""Period-end forecasts of a scope's spend with an 80 % interval.

Three parts, each from the scope's own daily series:

1. **Calendar charges.** Recurring charges that land on one calendar day of each month (monthly
   fees, commitments and credits on the 1st, month-close rows on the last day) are not daily usage:
   a weekly-seasonal model smears them over the week and mistakes them for noise. Each month's 1st
   and last day is compared with the same weekday one and two weeks around it; when at least two
   of them (and at least half of those measurable) depart from it in the same direction by more
   than four robust standard deviations of the ordinary days (and 2 % of a day's spend), the
   median of those departures is that day's recurring charge (a month whose charge has not landed
   is left as it is). It is taken out of the history before the
   usage model is fitted and added back on each such day of the forecast horizon.
2. **Daily usage.** 21 days of history or more: ETS (statsmodels Holt-Winters, the last 12 weeks)
   with additive errors, a damped additive trend and additive weekly seasonality; the interval of
   the remaining total comes from simulated paths (the sum of the remaining days, whose errors are
   correlated, not the sum of daily bands). 7 to 20 days: the mean of the last 7 days (one whole
   week, so the weekday mix is right) per remaining day, the interval from the day-to-day spread
   scaled by the horizon. Under 7 days: the run rate, with the same spread-based interval when
   there are at least 2 days, else none.
3. **Interval calibrated on the scope's own backtest.** A model's interval assumes the model is
   right; a regular series gives a narrow one even when its level drifts and late rows move the
   totals more than the model's noise says. The same forecaster (parts 1 and 2) is run from four
   rolling origins a week apart at the same horizon, the latest ending yesterday; the relative
   errors of those totals (actual / point - 1) say how far this scope's forecasts really land.
   Split conformal: the 80 % interval of the remaining total is point x (1 -/+ q), q the
   ceil((n + 1) x 0.8)-th smallest absolute error of the n backtests (with four, the largest), so
   it is as wide as this scope's own recent misses, wider or narrower than the model's. With fewer
   than four backtests (short history) the model's interval stands.

A flat series gives a zero-width interval; the total is never below what was already spent.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from calendar import monthrange
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
BACKTEST_ORIGINS = 4
COVERAGE = 0.8
# Calendar charges are looked for in about the last six months.
CALENDAR_DAYS = 190
CALENDAR_SIGMAS = 4.0
CALENDAR_MIN_SHARE = 0.02


@dataclass(frozen=True)
class Forecast:
    point: Decimal  # period-end total spend
    lower: Decimal  # 80 % interval
    upper: Decimal
    method: str
    # Cumulative forecast per remaining day: (day, point, lower, upper).
    path: list[tuple[dt.date, Decimal, Decimal, Decimal]] = field(default_factory=list)
    # Relative errors (actual / point - 1) of the backtest totals the interval was calibrated on.
    backtest_errors: list[float] = field(default_factory=list)

    @property
    def backtest_mape(self) -> float | None:
        if not self.backtest_errors:
            return None
        return sum(abs(error) for error in self.backtest_errors) / len(self.backtest_errors)


@dataclass(frozen=True)
class Remaining:
    """The forecast of the remaining days' total (not yet added to what was spent)."""

    daily: np.ndarray  # point forecast per remaining day
    lower: float
    upper: float
    method: str
    band_growth: str  # how the band opens along the path: "linear" (simulated) or "sqrt"
    backtest_errors: list[float] = field(default_factory=list)

    @property
    def point(self) -> float:
        return float(self.daily.sum())


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(round(float(value), 2))).quantize(CENT)


def forecast_run_rate(*, actuals: list[Decimal], period: Period) -> Forecast:
    """Spend so far plus the mean daily spend so far for each remaining day (the naive baseline)."""
    spent = sum(actuals, Decimal("0"))
    remaining = period.days - len(actuals)
    daily = spent / len(actuals) if actuals else Decimal("0")
    point = _money(spent + daily * remaining)
    return Forecast(point=point, lower=point, upper=point, method="run_rate")


# --- 1. calendar charges -------------------------------------------------------------------------


def _calendar_kind(day: dt.date) -> str | None:
    if day.day == 1:
        return "month_start"
    if day.day == monthrange(day.year, day.month)[1]:
        return "month_end"
    return None


def _same_weekday_baseline(values: np.ndarray, index: int, skip: set[int]) -> float | None:
    """Median of the same weekday one and two weeks either side (other calendar days left out)."""
    around = [
        values[other]
        for other in (index - 14, index - 7, index + 7, index + 14)
        if 0 <= other < len(values) and other not in skip
    ]
    return float(np.median(around)) if len(around) >= 2 else None


@dataclass(frozen=True)
class CalendarCharges:
    """Recurring charges per calendar kind, and the history with the charges taken out."""

    amounts: dict[str, float]
    adjusted: np.ndarray

    def on(self, day: dt.date) -> float:
        kind = _calendar_kind(day)
        return self.amounts.get(kind, 0.0) if kind else 0.0


def calendar_charges(*, values: np.ndarray, first_day: dt.date | None) -> CalendarCharges:
    values = np.asarray(values, dtype=float)
    if first_day is None or len(values) < 2 * WEEK:
        return CalendarCharges(amounts={}, adjusted=values)
    offset = max(0, len(values) - CALENDAR_DAYS)
    window = values[offset:]
    days = [first_day + dt.timedelta(days=offset + index) for index in range(len(window))]
    kinds = {index: _calendar_kind(day) for index, day in enumerate(days)}
    special = {index for index, kind in kinds.items() if kind}
    ordinary = []
    for index in range(len(window)):
        if index in special:
            continue
        baseline = _same_weekday_baseline(window, index, special)
        if baseline is not None:
            ordinary.append(window[index] - baseline)
    if not ordinary:
        return CalendarCharges(amounts={}, adjusted=values)
    sigma = 1.4826 * float(np.median(np.abs(ordinary)))
    typical = float(np.median(np.abs(window)))
    threshold = max(CALENDAR_SIGMAS * sigma, CALENDAR_MIN_SHARE * typical)
    adjusted = values.copy()
    amounts: dict[str, float] = {}
    for kind in ("month_start", "month_end"):
        measured: dict[int, float] = {}
        for index in sorted(index for index, found in kinds.items() if found == kind):
            baseline = _same_weekday_baseline(window, index, special)
            if baseline is not None:
                measured[index] = float(window[index] - baseline)
        # The charges that depart in the direction most of them take (a fee, or a credit); a month
        # whose charge has not landed yet departs the other way or not at all and is left as is.
        raised = {index: excess for index, excess in measured.items() if excess > threshold}
        lowered = {index: excess for index, excess in measured.items() if excess < -threshold}
        charged = max(raised, lowered, key=len)
        if len(charged) < 2 or len(charged) * 2 < len(measured) or len(raised) == len(lowered):
            continue
        amounts[kind] = float(np.median(list(charged.values())))
        for index, excess in charged.items():
            adjusted[offset + index] -= excess
    return CalendarCharges(amounts=amounts, adjusted=adjusted)


# --- 2. daily usage ------------------------------------------------------------------------------


def _remaining_sums_ets(
    history: np.ndarray, horizon: int, seed: int, simulate: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """Simulated sums of the next `horizon` days (None unless `simulate`) and the mean path from
    an ETS fit: additive errors, damped additive trend, additive weekly seasonality (statsmodels'
    Holt-Winters, which fits several times faster than ETSModel and simulates the same state-space
    paths)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            history, trend="add", damped_trend=True, seasonal="add", seasonal_periods=WEEK,
            initialization_method="estimated",
        )  # fmt: skip
        fitted = model.fit(optimized=True)
        mean_path = np.asarray(fitted.forecast(horizon))
        paths = None
        if simulate:
            paths = np.asarray(
                fitted.simulate(
                    horizon,
                    repetitions=SIMULATIONS,
                    anchor="end",
                    error="add",
                    rng=np.random.default_rng(seed),
                )
            ).reshape(horizon, -1)
    if not np.all(np.isfinite(mean_path)) or (paths is not None and not np.all(np.isfinite(paths))):
        raise ValueError("ETS produced non-finite values")
    # Spend is never negative: clip each simulated day at zero before summing.
    sums = None if paths is None else np.clip(paths, 0, None).sum(axis=0)
    return sums, np.clip(mean_path, 0, None)


def _usage_forecast(values: np.ndarray, horizon: int, seed: int, simulate: bool) -> Remaining:
    days = len(values)
    method = "none"
    if days >= ETS_MIN_DAYS and float(values[-ETS_MIN_DAYS:].std()) > 0:
        try:
            sums, mean_path = _remaining_sums_ets(values[-HISTORY_DAYS:], horizon, seed, simulate)
            point = float(mean_path.sum())
            lower, upper = (point, point) if sums is None else np.percentile(sums, [10, 90])
            return Remaining(
                daily=mean_path, lower=float(lower), upper=float(upper), method="ets", band_growth="linear"
            )
        except (ValueError, np.linalg.LinAlgError):
            method = "weekly_mean_fallback"
    if days >= WEEK:
        daily, method = float(values[-WEEK:].mean()), method if method != "none" else "weekly_mean"
        spread = float(values[-min(days, 28) :].std(ddof=1)) if days > 1 else 0.0
    elif days > 0:
        daily, method = float(values.mean()), "run_rate"
        spread = float(values.std(ddof=1)) if days > 1 else 0.0
    else:
        return Remaining(
            daily=np.zeros(horizon), lower=0.0, upper=0.0, method="no_history", band_growth="sqrt"
        )
    point = daily * horizon
    half = Z_80 * spread * math.sqrt(horizon)
    return Remaining(
        daily=np.full(horizon, daily), lower=max(0.0, point - half), upper=point + half, method=method,
        band_growth="sqrt",
    )  # fmt: skip


def _remaining_forecast(
    values: np.ndarray, first_day: dt.date | None, horizon: int, seed: int, simulate: bool = True
) -> Remaining:
    """Parts 1 and 2: calendar charges added back to the usage forecast of the adjusted history."""
    charges = calendar_charges(values=values, first_day=first_day)
    usage = _usage_forecast(charges.adjusted, horizon, seed, simulate)
    if not charges.amounts or first_day is None:
        return usage
    start = first_day + dt.timedelta(days=len(values))
    extra = np.array([charges.on(start + dt.timedelta(days=index)) for index in range(horizon)])
    total = float(extra.sum())
    return Remaining(
        daily=usage.daily + extra,
        lower=max(0.0, usage.lower + total),
        upper=usage.upper + total,
        method=usage.method,
        band_growth=usage.band_growth,
    )


# --- 3. interval calibrated on the backtest ------------------------------------------------------


def _backtests(*, values: np.ndarray, first_day: dt.date | None, horizon: int, origins: int):
    """(actual, point) `horizon`-day totals from rolling origins a week apart, the latest ending at
    the end of `values`: the point forecast made by the same forecaster from the days before."""
    for index in range(origins):
        cut = len(values) - horizon - index * WEEK
        if cut < WEEK:
            return
        actual = float(values[cut : cut + horizon].sum())
        yield actual, _remaining_forecast(values[:cut], first_day, horizon, seed=index, simulate=False).point


def backtest_errors(
    *, values: np.ndarray, first_day: dt.date | None, horizon: int, origins: int = BACKTEST_ORIGINS
) -> list[float]:
    """Relative errors (actual / point - 1) of `horizon`-day totals forecast by the same forecaster
    from rolling origins a week apart, the latest ending at the end of `values`."""
    errors = []
    for actual, point in _backtests(values=values, first_day=first_day, horizon=horizon, origins=origins):
        if point <= 0 or actual <= 0:
            continue
        errors.append(actual / point - 1)
    return errors


def interval_calibrated(*, remaining: Remaining, errors: list[float]) -> Remaining:
    """Part 3 (split conformal): the interval is point x (1 -/+ q), q the ceil((n + 1) x 0.8)-th
    smallest absolute relative error of the n backtest totals; with four that is the largest. With
    fewer than four (the rank would be past n) the model's own interval stands."""
    rank = math.ceil((len(errors) + 1) * COVERAGE - 1e-9)
    if rank > len(errors):
        return Remaining(**{**remaining.__dict__, "backtest_errors": errors})
    point = remaining.point
    half = point * sorted(abs(error) for error in errors)[rank - 1]
    return Remaining(
        daily=remaining.daily,
        lower=max(0.0, point - half),
        upper=point + half,
        method=remaining.method,
        band_growth=remaining.band_growth,
        backtest_errors=errors,
    )


def forecast_remaining(
    *, history: list[float], remaining_days: int, first_day: dt.date | None = None, seed: int = 7,
    calibrate: bool = True,
) -> Remaining:  # fmt: skip
    """The remaining days' total with its 80 % interval; `first_day` is the date of history[0]
    (without it, no calendar charges are looked for)."""
    values = np.asarray(history, dtype=float)
    remaining = _remaining_forecast(values, first_day, remaining_days, seed)
    if not calibrate or remaining.method == "no_history":
        return remaining
    errors = backtest_errors(values=values, first_day=first_day, horizon=remaining_days)
    return interval_calibrated(remaining=remaining, errors=errors)


def forecast_total(
    *, history: list[float], spent_in_period: float, remaining_days: int, seed: int = 7,
    first_day: dt.date | None = None,
) -> tuple[float, float, float, str, list[tuple[float, float, float]]]:  # fmt: skip
    """Period-end total = spent so far + forecast of the remaining days, with the 80 % interval.

    `history` is the daily series up to the last complete day (period days included), starting on
    `first_day` when known. Returns (point, lower, upper, method, cumulative path per remaining
    day)."""
    if remaining_days <= 0:
        return spent_in_period, spent_in_period, spent_in_period, "actual", []
    if not history:
        return spent_in_period, spent_in_period, spent_in_period, "no_history", []
    remaining = forecast_remaining(
        history=history, remaining_days=remaining_days, first_day=first_day, seed=seed
    )
    return _total(remaining, spent_in_period)


def _total(
    remaining: Remaining, spent: float
) -> tuple[float, float, float, str, list[tuple[float, float, float]]]:
    point, horizon = remaining.point, len(remaining.daily)
    below, above = point - remaining.lower, remaining.upper - point
    cumulative = np.cumsum(remaining.daily)
    path = []
    for index, value in enumerate(cumulative, start=1):
        share = index / horizon if remaining.band_growth == "linear" else math.sqrt(index / horizon)
        path.append((spent + value, spent + max(0.0, value - below * share), spent + value + above * share))
    return spent + point, spent + remaining.lower, spent + remaining.upper, remaining.method, path


def forecast_period(*, series: list[tuple[dt.date, Decimal]], period: Period, as_of: dt.date) -> Forecast:
    """Forecast the period-end total from the daily `series` (consecutive days before `as_of`;
    today is partial and left to the forecast)."""
    past = [(day, amount) for day, amount in series if day < as_of]
    history = [float(amount) for _, amount in past]
    spent = sum((amount for day, amount in past if period.start <= day), Decimal("0"))
    remaining_days = (period.end - max(as_of, period.start)).days
    errors: list[float] = []
    if remaining_days <= 0 or not history:
        point = lower = upper = float(spent)
        method, path = ("actual" if remaining_days <= 0 else "no_history"), []
    else:
        remaining = forecast_remaining(history=history, remaining_days=remaining_days, first_day=past[0][0])
        point, lower, upper, method, path = _total(remaining, float(spent))
        errors = remaining.backtest_errors
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
        backtest_errors=errors,
    )


def backtest_mape(
    *, series: list[tuple[dt.date, Decimal]], horizon: int = 14, origins: int = BACKTEST_ORIGINS
) -> float | None:
    """Mean absolute percentage error of `horizon`-day totals forecast from rolling origins in the
    series' last weeks (one week apart). None when the series is too short or the totals are 0."""
    if not series:
        return None
    values = np.asarray([float(amount) for _, amount in series])
    backtests = _backtests(values=values, first_day=series[0][0], horizon=horizon, origins=origins)
    errors = [abs(point - actual) / actual for actual, point in backtests if actual > 0]
    return sum(errors) / len(errors) if errors else None
