"""Stored forecasts per budget period (BudgetForecast), refreshed when spend lands and hourly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from governance.forecasting import backtest_mape, forecast_period
from governance.models import Budget, BudgetForecast
from governance.periods import budget_period
from governance.spend import SpendScope, scope_spend_daily

HISTORY_DAYS = 120


def budget_forecast_refresh(*, budget_id: int, now: dt.datetime | None = None) -> BudgetForecast | None:
    now = now or timezone.now()
    budget = Budget.objects.filter(pk=budget_id, is_active=True).first()
    if budget is None:
        return None
    period = budget_period(budget=budget, at=now)
    if period is None:
        return None
    today = now.astimezone(ZoneInfo(budget.timezone)).date()
    start = min(period.start, today) - dt.timedelta(days=HISTORY_DAYS)
    spend = scope_spend_daily(
        scope=SpendScope.of_budget(budget), start=start, end=max(today, period.start) + dt.timedelta(days=1),
        currency=budget.currency,
    )  # fmt: skip
    series = spend.series(start, today + dt.timedelta(days=1))
    # Leading days before the scope's first spend are not history, just absence.
    first_spend = next((index for index, (_, amount) in enumerate(series) if amount), len(series))
    series = series[first_spend:]
    forecast = forecast_period(series=series, period=period, as_of=today)
    # The backtest the interval was calibrated on (same horizon as this forecast); on the last day
    # of a period nothing is forecast, so the 14-day backtest is shown instead.
    error = forecast.backtest_mape
    if error is None:
        error = backtest_mape(series=[item for item in series if item[0] < today])
    actual = {day: amount for day, amount in series if period.start <= day}
    daily = [
        {"day": day.isoformat(), "actual": str(amount)}
        for day, amount in sorted(actual.items())
        if day < today
    ] + [
        {"day": day.isoformat(), "forecast": str(point), "lower": str(lower), "upper": str(upper)}
        for day, point, lower, upper in forecast.path
    ]
    spent = sum((amount for day, amount in actual.items() if day < today), Decimal("0"))
    # What is already spent (today's partial day included) bounds the period-end total from below.
    spent_with_today = sum(actual.values(), Decimal("0"))
    row, _ = BudgetForecast.objects.update_or_create(
        budget=budget,
        period_start=period.start,
        defaults={
            "period_end": period.end,
            "currency": budget.currency,
            "method": forecast.method,
            "point": max(forecast.point, spent_with_today),
            "lower": forecast.lower,
            "upper": forecast.upper,
            "spend_to_date": spent,
            "backtest_mape": None if error is None else Decimal(str(round(error, 6))),
            "daily": daily,
            "computed_at": now,
        },
    )
    return row


def budgets_forecast_refresh(
    *, older_than: dt.timedelta | None = None, now: dt.datetime | None = None
) -> int:
    """Refresh every active budget's forecast (or only those computed longer ago than `older_than`)."""
    now = now or timezone.now()
    refreshed = 0
    for budget_id in Budget.objects.filter(is_active=True).values_list("pk", flat=True):
        if older_than is not None:
            recent = BudgetForecast.objects.filter(budget_id=budget_id, computed_at__gte=now - older_than)
            if recent.exists():
                continue
        refreshed += budget_forecast_refresh(budget_id=budget_id, now=now) is not None
    return refreshed
