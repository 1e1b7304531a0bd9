"""Budget periods: calendar-aligned months, fiscal quarters and years in the budget's time zone, or a
custom range. Pure functions over dates, so they are tested with frozen time and no database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@dataclass(frozen=True)
class Period:
    start: dt.date  # first local day
    end: dt.date  # first local day after the period (exclusive)
    timezone: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=ZoneInfo(self.timezone))

    @property
    def end_at(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time.min, tzinfo=ZoneInfo(self.timezone))

    def elapsed_days(self, at: dt.datetime) -> int:
        """Local days started so far (today counts), between 0 and the period's length."""
        today = at.astimezone(ZoneInfo(self.timezone)).date()
        return max(0, min(self.days, (today - self.start).days + 1))


def timezone_is_valid(name: str) -> bool:
    if name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_containing(
    *,
    period: str,
    at: dt.datetime,
    timezone: str = "UTC",
    fiscal_year_start_month: int = 1,
    custom_start: dt.date | None = None,
    custom_end: dt.date | None = None,
) -> Period | None:
    """The period of this kind that contains the instant `at`, or None outside a custom range.

    `custom_end` is the last day of a custom range (inclusive)."""
    local = at.astimezone(ZoneInfo(timezone)).date()
    if period == "custom":
        if custom_start is None or custom_end is None or not (custom_start <= local <= custom_end):
            return None
        return Period(custom_start, custom_end + dt.timedelta(days=1), timezone)
    month_start = local.replace(day=1)
    if period == "month":
        return Period(month_start, _add_months(month_start, 1), timezone)
    # Months since the fiscal year began (0..11).
    into_year = (local.month - fiscal_year_start_month) % 12
    year_start = _add_months(month_start, -into_year)
    if period == "quarter":
        quarter_start = _add_months(year_start, (into_year // 3) * 3)
        return Period(quarter_start, _add_months(quarter_start, 3), timezone)
    if period == "year":
        return Period(year_start, _add_months(year_start, 12), timezone)
    raise ValueError(f"Unknown budget period {period!r}")


def budget_period(*, budget, at: dt.datetime) -> Period | None:
    return period_containing(
        period=budget.period,
        at=at,
        timezone=budget.timezone,
        fiscal_year_start_month=budget.fiscal_year_start_month,
        custom_start=budget.custom_start,
        custom_end=budget.custom_end,
    )
