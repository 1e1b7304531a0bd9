"""The design system's values shared by templates (CSS classes) and server-built Plotly figures.

One colour per provider everywhere: a chip in a table, a bar in a chart and a legend entry must agree,
so both `static/css/app.css` (`--provider-*`) and the figure builders read these.
Numbers, money and dates are formatted for the organisation's locale and time zone
(`INFERENSYS_LOCALE`, `INFERENSYS_TIME_ZONE`) with Babel, not by hand, so a finance team in Berlin sees
`1.234,50 €` and a team in New York sees `$1,234.50`.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from decimal import Decimal

import plotly.graph_objects as plotly_go
from babel import Locale
from babel import numbers as babel_numbers
from babel.dates import format_date, format_datetime
from django.conf import settings
from django.utils import timezone

from attribution.choices import Provider

PROVIDER_COLORS: dict[str, str] = {
    Provider.AWS: "#f59e0b",
    Provider.GCP: "#2563eb",
    Provider.AZURE: "#0891b2",
    Provider.OCI: "#dc2626",
}
PROVIDER_FALLBACK_COLOR = "#64748b"
# Series that are not providers (teams, models, ...), in order of size.
SERIES_COLORS = [
    "#4f46e5",
    "#0d9488",
    "#d97706",
    "#db2777",
    "#2563eb",
    "#65a30d",
    "#7c3aed",
    "#0891b2",
    "#ea580c",
    "#475569",
]


class _GraphObjects:
    """`plotly.graph_objects` for the pages' figure builders (`from attribution.design import go`).

    Figures, traces and layouts are built checked or unchecked as settings.PLOTLY_VALIDATE says:
    checked in tests, so a misspelt property or a bad value fails there; unchecked when serving,
    where Plotly's per-value checks cost more than the rest of a chart-heavy page. Either way the
    same objects serialise to the same JSON (tests/ui/test_figures.py compares the two)."""

    _CHECKED = ("Figure", "Bar", "Scatter", "Heatmap", "Pie", "Box", "Histogram", "Layout")

    def __getattr__(self, name: str):
        made = getattr(plotly_go, name)
        if name not in self._CHECKED:
            return made

        def build(*args, **kwargs):
            kwargs.setdefault("_validate", bool(getattr(settings, "PLOTLY_VALIDATE", True)))
            return made(*args, **kwargs)

        return build


go = _GraphObjects()


def figure_json(*, data: list[dict], layout: dict) -> dict:
    """A figure's JSON from plain trace dicts (each with its `type`) and a plain layout dict.

    Checked by Plotly when settings.PLOTLY_VALIDATE (tests): built into a `go.Figure` and
    serialised by it. Otherwise handed over as they are: the same JSON without building Plotly's
    objects, which cost a chart-heavy page more than its queries (the tests compare both ways)."""
    if getattr(settings, "PLOTLY_VALIDATE", True):
        return plotly_go.Figure(data=data, layout=layout).to_plotly_json()
    return {"data": data, "layout": layout}


def trace(trace_type: str, **properties) -> dict:
    """A trace as a plain dict for figure_json, its keys in the order Plotly's objects serialise
    them (the properties alphabetically, then `type`), so the page's JSON keeps the same bytes."""
    return {**dict(sorted(properties.items())), "type": trace_type}


@functools.cache
def _plotly_default_template_json() -> dict:
    import plotly.io as pio

    return pio.templates[pio.templates.default].to_plotly_json()


def plotly_default_template() -> dict:
    """The template Plotly gives a figure built without one, as JSON (a fresh copy: pages may add to
    a figure), for charts built as plain dicts that must look as they did when built by Plotly."""
    return copy.deepcopy(_plotly_default_template_json())


def provider_color(provider: str) -> str:
    return PROVIDER_COLORS.get(provider, PROVIDER_FALLBACK_COLOR)


def provider_label(provider: str) -> str:
    try:
        return str(Provider(provider).label)
    except ValueError:
        return provider.upper() if provider else "Unknown"


def org_locale() -> str:
    return getattr(settings, "INFERENSYS_LOCALE", "en_US")


# Babel parses a locale name and a number pattern on every call (a table of 100 amounts spent 10-25
# ms of a page's CPU on it); both are immutable once parsed, so each is parsed once per process.
# Keyed by the name and pattern, so a changed INFERENSYS_LOCALE (tests) takes effect at once.
@functools.lru_cache(maxsize=16)
def _babel_locale(name: str) -> Locale:
    return Locale.parse(name)


@functools.lru_cache(maxsize=64)
def _number_pattern(pattern: str) -> babel_numbers.NumberPattern:
    return babel_numbers.parse_pattern(pattern)


def _money_decimal(amount: Decimal | int | float | str | None) -> Decimal | None:
    """An amount as Decimal (floats through their text, so 0.1 stays 0.1); None for no amount."""
    if amount is None or amount == "":
        return None
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))


@functools.lru_cache(maxsize=64)
def _money_fast_path(locale_name: str, currency: str, currency_digits: bool) -> tuple | None:
    """What Babel's currency pattern writes for this locale and currency, taken from the pattern and
    symbols themselves: (positive prefix, positive suffix, negative prefix, negative suffix, quantum,
    the translation of Python's "," and "." into the locale's group and decimal symbols). None where
    the pattern does more than "affix, digits grouped by 3, fixed fraction digits, affix" (Indian
    grouping, significant digits, scientific or percent patterns, quoted text, the plural currency
    name), so those amounts keep going through Babel."""
    locale = _babel_locale(locale_name)
    pattern = locale.currency_formats["standard"]
    symbols = locale.number_symbols.get("latn", {})
    if currency_digits:
        fraction_digits = babel_numbers.get_currency_precision(currency)
    elif pattern.frac_prec[0] == pattern.frac_prec[1]:
        fraction_digits = pattern.frac_prec[0]
    else:
        return None
    symbol = babel_numbers.get_currency_symbol(currency, locale)
    affixes = (*pattern.prefix, *pattern.suffix)
    texts = (*affixes, symbol, symbols.get("decimal", ""), symbols.get("group", ""))
    if (
        pattern.grouping != (3, 3)
        or pattern.int_prec[0] != 1
        or pattern.scale
        or pattern.exp_prec
        or "@" in pattern.pattern
        or not pattern.number_pattern
        or any("'" in text or "¤¤" in text for text in texts)
        or not symbols.get("decimal")
        or not symbols.get("group")
    ):
        return None
    positive_prefix, negative_prefix = (affix.replace("¤", symbol) for affix in pattern.prefix)
    positive_suffix, negative_suffix = (affix.replace("¤", symbol) for affix in pattern.suffix)
    return (
        positive_prefix,
        positive_suffix,
        negative_prefix,
        negative_suffix,
        babel_numbers.get_decimal_quantum(fraction_digits),
        str.maketrans({",": symbols["group"], ".": symbols["decimal"]}),
    )


def money_format(amount: Decimal | int | float | None, currency: str, *, digits: int = 2) -> str:
    """`amount` in `currency` for the organisation's locale; the currency is always shown, because
    figures in different billing currencies sit side by side.

    Every table cell comes here, and Babel's format_currency looks up the locale's pattern and
    symbols on each call (~6 % of a cold Overview's CPU), so the common patterns take a fast path
    that writes the same text with Python's own grouping (tests/ui/test_money_fast_path.py compares
    the two on thousands of amounts); anything else goes through Babel."""
    if (value := _money_decimal(amount)) is None:
        return "—"
    currency = currency or "USD"
    locale_name = org_locale()
    fast = _money_fast_path(locale_name, currency, digits == 2) if value.is_finite() else None
    if fast is None:
        return babel_numbers.format_currency(
            value,
            currency,
            locale=_babel_locale(locale_name),
            format_type="standard",
            decimal_quantization=True,
            currency_digits=digits == 2,
        )
    positive_prefix, positive_suffix, negative_prefix, negative_suffix, quantum, symbols = fast
    # The same Decimal operations as Babel's NumberPattern.apply, in the same context, so rounding
    # (half-even), -0 and the precision limit behave exactly as there.
    value = value.scaleb(0)
    negative = value.is_signed()
    figure = format(abs(value).normalize().quantize(quantum), ",f").translate(symbols)
    if negative:
        return negative_prefix + figure + negative_suffix
    return positive_prefix + figure + positive_suffix


def money_text(amount: Decimal | int | float | None, currency: str) -> str:
    """`amount` in `currency` for text that leaves the page (alert messages, emails, Slack and webhook
    text, audit summaries): the currency's digits (2 for USD), grouped as the organisation's locale
    groups them, and the ISO code after the figure ("63,841.89 USD"), which reads the same in any
    mail client or chat. Machine fields (JSON amounts) stay exact Decimal strings, never this."""
    if (value := _money_decimal(amount)) is None:
        return "—"
    return babel_numbers.format_currency(
        value,
        currency or "USD",
        format=_number_pattern("#,##0.00 \u00a4\u00a4"),
        locale=_babel_locale(org_locale()),
        currency_digits=True,
    )


def number_format(value: Decimal | int | float | None, *, digits: int = 0) -> str:
    if value is None or value == "":
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return babel_numbers.format_decimal(
        value, format=_number_pattern(pattern), locale=_babel_locale(org_locale())
    )


def percent_format(ratio: Decimal | float | None, *, digits: int = 1) -> str:
    """A ratio (0.125) as a signed-free percentage ("12.5%")."""
    if ratio is None or ratio == "":
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return babel_numbers.format_percent(
        ratio, format=_number_pattern(pattern), locale=_babel_locale(org_locale())
    )


def org_date_format(value: dt.date | dt.datetime | None) -> str:
    """A day in the organisation's time zone (a datetime is converted first: 23:30 UTC is already
    tomorrow in Tokyo)."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return format_date(value, format="medium", locale=_babel_locale(org_locale()))


def org_datetime_format(value: dt.datetime | None) -> str:
    """A moment in the organisation's time zone, with the zone named so nobody guesses."""
    if value is None:
        return "—"
    zone = timezone.get_current_timezone()
    local = timezone.localtime(value, zone) if timezone.is_aware(value) else value
    return format_datetime(local, format="medium", tzinfo=zone, locale=_babel_locale(org_locale())) + (
        " " + local.tzname() if local.tzname() else ""
    )
