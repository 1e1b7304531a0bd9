"""The design system's formatting: money and numbers by the organisation's locale, days and times in
its time zone, provider chips with the provider's colour class."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.template import Context, Template
from django.test import override_settings
from django.utils import timezone

from attribution import design


def _render(source: str, **context) -> str:
    return Template("{% load ui %}" + source).render(Context(context)).strip()


def test_it_formats_money_for_the_locale_and_keeps_the_currency():
    assert design.money_format(Decimal("1234.5"), "USD") == "$1,234.50"
    assert design.money_format(Decimal("1234.5"), "EUR") == "€1,234.50"
    with override_settings(INFERENSYS_LOCALE="de_DE"):
        assert design.money_format(Decimal("1234.5"), "EUR") == "1.234,50\xa0€"
        assert design.number_format(Decimal("1234567")) == "1.234.567"
    assert design.money_format(None, "USD") == "—"


def test_it_rounds_money_half_even_to_the_cent_not_through_float():
    # 0.125 is not representable as a float; as Decimal it rounds to the even cent.
    assert design.money_format(Decimal("0.125"), "USD") == "$0.12"
    assert design.money_format(Decimal("0.135"), "USD") == "$0.14"


def test_money_text_for_alerts_and_audit_rounds_groups_and_names_the_currency_code():
    # numeric(24, 10) as stored: text people read shows the cents, grouped, with the ISO code.
    assert design.money_text(Decimal("63841.8900000000"), "USD") == "63,841.89 USD"
    assert design.money_text(Decimal("0.125"), "USD") == "0.12 USD"  # half even, as the UI
    assert design.money_text(Decimal("1234567.5"), "JPY") == "1,234,568 JPY"  # the currency's digits
    assert design.money_text(-5, "EUR") == "-5.00 EUR"
    with override_settings(INFERENSYS_LOCALE="de_DE"):
        assert design.money_text(Decimal("1234.5"), "EUR") == "1.234,50 EUR"
    assert design.money_text(None, "USD") == "—"


def test_it_shows_days_and_times_in_the_organisations_time_zone():
    moment = dt.datetime(2026, 10, 31, 23, 30, tzinfo=dt.UTC)
    with override_settings(TIME_ZONE="Asia/Tokyo"), timezone.override("Asia/Tokyo"):
        # 23:30 UTC on the 31st is already November 1st in Tokyo.
        assert design.org_date_format(moment) == "Nov 1, 2026"
        assert design.org_datetime_format(moment).endswith("JST")
        assert "8:30:00" in design.org_datetime_format(moment)
    assert design.org_date_format(moment) == "Oct 31, 2026"


def test_the_filters_and_components_render():
    assert _render("{{ amount|money:'USD' }}", amount=Decimal("99.9")) == "$99.90"
    assert _render("{{ value|number }}", value=12345) == "12,345"
    assert _render("{{ ratio|percent }}", ratio=Decimal("0.125")) == "12.5%"
    chip = _render("{% provider_chip 'gcp' %}")
    assert "provider-chip--gcp" in chip and "Google Cloud" in chip
    empty = _render("{% empty_state 'No budgets yet' 'Create one for a team.' '/x' 'New budget' %}")
    assert "No budgets yet" in empty and 'href="/x"' in empty and "New budget" in empty


def test_provider_colours_are_the_same_in_css_and_charts():
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()
    for provider, colour in design.PROVIDER_COLORS.items():
        assert f"--provider-{provider}: {colour};" in css


def test_json_data_writes_the_same_bytes_as_json_script():
    from django.utils.html import json_script

    from attribution.templatetags.ui import json_data

    value = {
        "title": "</script><script>alert('x') & more",
        "when": dt.date(2026, 12, 3),
        "amount": Decimal("12.30"),
        "names": ["Café", "a>b", "<&>"],
        "nested": [{"x": [1.5, None, True]}],
    }
    assert str(json_data(value, "figures")) == str(json_script(value, "figures"))
    assert "</script><script>" not in str(json_data(value, "figures"))
    context = Context({"value": value, "element_id": "fig<ures"})
    ours = Template("{% load ui %}{{ value|json_data:element_id }}").render(context)
    assert ours == Template("{{ value|json_script:element_id }}").render(context)
    assert 'id="fig&lt;ures"' in ours


def _floatformat_inputs() -> list:
    """Numbers of every shape the pages format, plus what floatformat handles on its own path."""
    import random

    rng = random.Random(13)
    values: list = [None, "", "abc", "1.5", True, Decimal("NaN"), Decimal("-Infinity"), float("inf")]
    values += [Decimal("-0"), Decimal("0E-10"), Decimal("-0.004"), Decimal("0.005"), Decimal("-0.005")]
    values += [Decimal("2.5"), Decimal("-2.5"), Decimal("999.995"), Decimal("1E+5"), Decimal("1E+300")]
    values += [0, -0.0, 1e20, 1e-7, 0.125, 10**30, -1234567]
    for _ in range(3000):
        digits = tuple(rng.randrange(10) for _ in range(rng.randint(1, 30)))
        values.append(Decimal((rng.randint(0, 1), digits, rng.randint(-15, 12))))
        values.append(rng.uniform(-1e7, 1e7))
        values.append(rng.randint(-(10**9), 10**9))
    return values


def test_floatfmt_writes_what_floatformat_writes():
    from django.template.defaultfilters import floatformat
    from django.utils import translation

    from attribution.templatetags.ui import floatfmt, floatfmt_in_current_language

    arguments = ["2g", 1, 3, "4g", "-2", "0g", -1, 0, "2", "g", "2u", "2gu", "abc", "-3g"]
    values = _floatformat_inputs()
    for language in ("en-us", "de", "fr"):  # "." and ","; "," and "."; "," and a space
        with translation.override(language):
            different = [
                (value, argument, str(floatfmt(value, argument)), str(floatformat(value, argument)))
                for value in values
                for argument in arguments
                if str(floatfmt(value, argument)) != str(floatformat(value, argument))
            ]
            assert not different, different[:5]
            # The same text with the language looked up once (tables built in Python).
            in_language = floatfmt_in_current_language()
            assert all(str(in_language(v, a)) == str(floatfmt(v, a)) for v in values for a in arguments)
    assert str(floatfmt(Decimal("-1234567.005"), "2g")) == "-1,234,567.01"  # half up, not half even
    assert str(floatfmt(Decimal("-0.001"), 2)) == "0.00"
    with override_settings(USE_THOUSAND_SEPARATOR=True):
        assert str(floatfmt(Decimal("1234.5"), 1)) == str(floatformat(Decimal("1234.5"), 1)) == "1,234.5"
    assert _render("{{ value|floatfmt:'2g' }}", value=Decimal("1234.5")) == "1,234.50"


def test_audit_changes_read_as_pairs_with_amounts_exact_but_without_the_rollups_trailing_zeros():
    changes = {
        "limit": "8948.38",
        "spend": "11444.0700000000",
        "unit_cost": "0.083172",
        "percent": "80.00",
        "thresholds": [{"percent": "80.00", "amount": None}],
        "model_id": None,
        "enforcement": 3,
    }
    assert _render("{{ changes|audit_changes }}", changes=changes) == (
        "limit: 8948.38 · spend: 11444.07 · unit_cost: 0.083172 · percent: 80.00 · "
        "thresholds: [{&quot;percent&quot;: &quot;80.00&quot;, &quot;amount&quot;: null}] · model_id: — · "
        "enforcement: 3"
    )
    # A digit that counts is never dropped.
    assert _render("{{ changes|audit_changes }}", changes={"spend": "10.0050000000"}) == "spend: 10.005"
