"""Period-end forecasts of a budget scope's spend (see forecast_period)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from governance.periods import Period

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Forecast:
    point: Decimal  # period-end total spend
    lower: Decimal  # 80 % interval
    upper: Decimal
    method: str
    # Forecast of each remaining day: (day, point, lower, upper) of the cumulative total.
    path: list[tuple[dt.date, Decimal, Decimal, Decimal]] = field(default_factory=list)


def _money(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def forecast_run_rate(*, actuals: list[Decimal], period: Period) -> Forecast:
    """Spend so far plus the mean daily spend so far for each remaining day."""
    spent = sum(actuals, Decimal("0"))
    remaining = period.days - len(actuals)
    daily = spent / len(actuals) if actuals else Decimal("0")
    point = _money(spent + daily * remaining)
    return Forecast(point=point, lower=point, upper=point, method="run_rate")
