"""Parsing of the scalar values every format shares: money, quantities, timestamps, dates."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from attribution.ingest.errors import RowError

# Line item money and quantity columns are numeric(24|28, 10): values are rounded to what the
# database stores before they are summed, so source and database sums compare exactly.
SCALE = Decimal("1e-10")
ZERO = Decimal("0.0000000000")
# numeric(24, 10) holds money below 1e14, numeric(28, 10) quantities below 1e18.
MONEY_LIMIT = Decimal("1e14")
QUANTITY_LIMIT = Decimal("1e18")
_WIDE = Context(prec=80)

_MDY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AP]M)?)?$", re.I)
_FRACTION = re.compile(r"\.(\d{7,})")


def decimal_parse(
    value: str | float | int | None,
    *,
    column: str,
    default: Decimal | None = ZERO,
    nan_is_empty: bool = False,
) -> Decimal | None:
    """Exact decimal from a cell; empty -> `default`. Raises RowError naming the column.

    NaN is not a cost: it is rejected like Infinity (loading it as 0 would hide a broken row).
    `nan_is_empty` is for quantity-like columns only, where exporters write NaN for "none"."""
    if value is None:
        return default
    if isinstance(value, float):
        # JSON numbers arrive as floats; repr gives the shortest string that round-trips.
        value = repr(value)
    text = str(value).strip()
    if text == "" or text.lower() in {"null", "none"}:
        return default
    if nan_is_empty and text.lower().lstrip("+-") == "nan":
        return default
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowError(f"{column}: {text!r} is not a number") from None
    if not number.is_finite():
        raise RowError(f"{column}: {text!r} is not a finite number")
    # copy_abs, not abs(): abs() rounds in the default context, whose exponent limit a cell such
    # as 1E+1000000 exceeds (decimal.Overflow would end the whole file instead of this row).
    if number.copy_abs() >= MONEY_LIMIT:
        raise RowError(f"{column}: {text!r} is out of range for a cost")
    return number.quantize(SCALE, rounding=ROUND_HALF_EVEN, context=_WIDE)


def quantity_parse(value: str | float | int | None, *, column: str) -> Decimal | None:
    """A usage quantity, or None when empty or too large for the column (e.g. byte-seconds of a
    month): quantities are informational, so an oversized one must not reject the row's cost."""
    if value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    text = str(value).strip()
    if text == "" or text.lower() in {"null", "none", "nan"}:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowError(f"{column}: {text!r} is not a number") from None
    if not number.is_finite() or number.copy_abs() >= QUANTITY_LIMIT:
        return None
    return number.quantize(SCALE, rounding=ROUND_HALF_EVEN, context=_WIDE)


# Charge dates outside these years are typos or garbage; refusing them here also keeps month
# arithmetic (the period's end) clear of datetime's year-9999 limit.
FIRST_YEAR, LAST_YEAR = 1970, 2999


def datetime_parse(value: str | None, *, column: str) -> dt.datetime:
    """A UTC datetime from ISO 8601 (with or without zone, `Z`, ` UTC`), or M/D/YYYY."""
    parsed = _datetime_parse(value, column=column)
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise RowError(f"{column}: {value!r} is out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return parsed


def _datetime_parse(value: str | None, *, column: str) -> dt.datetime:
    if value is not None and not isinstance(value, str):  # JSON exports: a list, a number, an object
        raise RowError(f"{column}: {value!r} is not a date")
    text = (value or "").strip()
    if not text:
        raise RowError(f"{column}: empty date")
    if text.endswith(" UTC"):
        text = text[:-4]
    match = _MDY.match(text)
    if match:
        month, day, year, hour, minute, second, meridiem = match.groups()
        hour_value = int(hour or 0)
        if meridiem:
            hour_value = hour_value % 12 + (12 if meridiem.upper() == "PM" else 0)
        try:
            return dt.datetime(
                int(year), int(month), int(day), hour_value, int(minute or 0), int(second or 0), tzinfo=dt.UTC
            )
        except ValueError as error:
            raise RowError(f"{column}: {value!r} is not a date ({error})") from None
    # Azure writes 7 fractional digits; Python accepts at most 6.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"{column}: {value!r} is not a date") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise RowError(f"{column}: {value!r} is out of range") from None


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month_start(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
