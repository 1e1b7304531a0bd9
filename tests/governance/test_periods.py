"""Budget periods at their boundaries: month end in a non-UTC zone, leap day, fiscal years, custom."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from governance.periods import period_containing

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_month_end_in_a_zone_ahead_of_utc_belongs_to_the_next_local_month():
    # 23:30 UTC on 31 October is already 1 November in Berlin (UTC+1 after the DST change).
    period = period_containing(period="month", at=at("2026-10-31T23:30:00+00:00"), timezone="Europe/Berlin")
    assert (period.start, period.end) == (dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    assert period.start_at == dt.datetime(2026, 11, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert period.start_at.astimezone(UTC) == dt.datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    # The same instant is still October in UTC and in New York.
    assert period_containing(period="month", at=at("2026-10-31T23:30:00+00:00")).start == dt.date(2026, 10, 1)
    new_york = period_containing(
        period="month", at=at("2026-11-01T03:30:00+00:00"), timezone="America/New_York"
    )
    assert new_york.start == dt.date(2026, 10, 1)


def test_leap_day_is_in_february_and_february_has_29_days():
    period = period_containing(period="month", at=at("2028-02-29T12:00:00+00:00"))
    assert (period.start, period.end, period.days) == (dt.date(2028, 2, 1), dt.date(2028, 3, 1), 29)
    assert period_containing(period="month", at=at("2027-02-28T12:00:00+00:00")).days == 28


@pytest.mark.parametrize(
    ("moment", "fiscal_start", "year", "quarter"),
    [
        # Fiscal year starting in April: January 2027 is in FY Apr 2026 - Mar 2027, Q4 Jan-Mar.
        ("2027-01-15T00:00:00+00:00", 4, (dt.date(2026, 4, 1), dt.date(2027, 4, 1)), dt.date(2027, 1, 1)),
        ("2026-04-01T00:00:00+00:00", 4, (dt.date(2026, 4, 1), dt.date(2027, 4, 1)), dt.date(2026, 4, 1)),
        ("2026-03-31T23:59:00+00:00", 4, (dt.date(2025, 4, 1), dt.date(2026, 4, 1)), dt.date(2026, 1, 1)),
        # Calendar year: quarters Jan, Apr, Jul, Oct.
        ("2026-08-20T00:00:00+00:00", 1, (dt.date(2026, 1, 1), dt.date(2027, 1, 1)), dt.date(2026, 7, 1)),
        # Fiscal year starting in October (US federal): November is Q1.
        ("2026-11-02T00:00:00+00:00", 10, (dt.date(2026, 10, 1), dt.date(2027, 10, 1)), dt.date(2026, 10, 1)),
    ],
)
def test_fiscal_years_and_quarters(moment, fiscal_start, year, quarter):
    fiscal_year = period_containing(period="year", at=at(moment), fiscal_year_start_month=fiscal_start)
    assert (fiscal_year.start, fiscal_year.end) == year
    fiscal_quarter = period_containing(period="quarter", at=at(moment), fiscal_year_start_month=fiscal_start)
    assert fiscal_quarter.start == quarter
    assert fiscal_quarter.end.month == (quarter.month + 2) % 12 + 1


def test_fiscal_year_start_is_local_midnight():
    tokyo = "Asia/Tokyo"
    # 16:00 UTC on 31 March is 01:00 on 1 April in Tokyo: the new fiscal year there.
    period = period_containing(
        period="year", at=at("2026-03-31T16:00:00+00:00"), timezone=tokyo, fiscal_year_start_month=4
    )
    assert period.start == dt.date(2026, 4, 1)


def test_custom_range_includes_its_last_day_and_nothing_outside():
    kwargs = {"period": "custom", "custom_start": dt.date(2026, 11, 10), "custom_end": dt.date(2026, 11, 20)}
    inside = period_containing(at=at("2026-11-20T23:59:00+00:00"), **kwargs)
    assert (inside.start, inside.end, inside.days) == (dt.date(2026, 11, 10), dt.date(2026, 11, 21), 11)
    assert period_containing(at=at("2026-11-21T00:00:00+00:00"), **kwargs) is None
    assert period_containing(at=at("2026-11-09T23:59:00+00:00"), **kwargs) is None


def test_elapsed_days_counts_the_local_day_in_progress():
    period = period_containing(period="month", at=at("2026-11-05T10:00:00+00:00"), timezone="Europe/Berlin")
    assert period.elapsed_days(at("2026-11-05T10:00:00+00:00")) == 5
    assert period.elapsed_days(at("2026-12-25T10:00:00+00:00")) == 30
