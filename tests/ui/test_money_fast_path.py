"""Money's fast path writes exactly what Babel writes: every table cell goes through it, so a
difference of one space or one rounding would show on every page. Compared byte for byte on
generated amounts (0-6 decimal places, negatives, -0, zero, beyond Decimal's 28 digits, NaN and
infinities) in locales with different symbols, grouping and negative patterns."""

from __future__ import annotations

from decimal import Decimal

import pytest
from babel import numbers as babel_numbers
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution import design

LOCALES = ("en_US", "de_DE", "fr_FR", "en_IN", "ja_JP", "de_CH")
CURRENCIES = ("USD", "EUR", "JPY", "CHF", "INR", "BHD")

_scaled = st.builds(
    lambda units, places: Decimal(units).scaleb(-places),
    st.one_of(st.integers(-(10**9), 10**9), st.integers(-(10**32), 10**32)),
    st.integers(0, 6),
)
_amounts = st.one_of(
    _scaled,
    st.sampled_from([Decimal("0"), Decimal("-0"), Decimal("-0.001"), Decimal("0.005"), Decimal("999.995")]),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(-(10**12), 10**12),
)


def _outcome(function, *args, **kwargs) -> str:
    """The text, or the kind of error (an amount beyond Decimal's precision fails in Babel too)."""
    try:
        return function(*args, **kwargs)
    except (ArithmeticError, ValueError) as error:
        return f"error: {type(error).__name__}"


def _babel(amount, currency: str, locale: str, digits: int) -> str:
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return babel_numbers.format_currency(
        value,
        currency,
        locale=locale,
        format_type="standard",
        decimal_quantization=True,
        currency_digits=digits == 2,
    )


@pytest.mark.parametrize("locale", LOCALES)
@settings(max_examples=150, deadline=None)
@given(amount=_amounts)
def test_it_writes_what_babel_writes(locale, amount):
    with override_settings(INFERENSYS_LOCALE=locale):
        for currency in CURRENCIES:
            for digits in (2, 4):
                fast = _outcome(design.money_format, amount, currency, digits=digits)
                assert fast == _outcome(_babel, amount, currency, locale, digits), (currency, digits)


def test_it_takes_the_fast_path_for_plain_patterns_and_babel_for_indian_grouping():
    # Without this the comparison above would also pass if nothing ever took the fast path.
    assert design._money_fast_path("en_US", "USD", True) is not None
    assert design._money_fast_path("de_DE", "EUR", True) is not None
    assert design._money_fast_path("ja_JP", "JPY", True) is not None
    assert design._money_fast_path("en_IN", "INR", True) is None  # 12,34,567.00


def test_it_keeps_the_locales_signs_digits_and_symbols():
    with override_settings(INFERENSYS_LOCALE="fr_FR"):
        assert design.money_format(Decimal("-1234567.125"), "EUR") == "-1\u202f234\u202f567,12\xa0€"
    with override_settings(INFERENSYS_LOCALE="ja_JP"):
        assert design.money_format(Decimal("1234.5"), "JPY") == "￥1,234"  # yen have no fraction digits
    assert design.money_format(Decimal("-0.001"), "BHD") == "-BHD0.001"  # dinars have three
    assert design.money_format(Decimal("-0.004"), "USD") == "-$0.00"
