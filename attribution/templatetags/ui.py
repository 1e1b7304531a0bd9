"""Template side of the design system (`{% load ui %}`): formatting filters and small components.

Every page formats money, numbers and dates through these, so the locale and time zone are decided in
one place (attribution/design.py) and the components in templates/components/ look the same everywhere.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_UP, Context, Decimal

from django import template
from django.conf import settings
from django.core.paginator import Page
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import QueryDict
from django.template.defaultfilters import floatformat
from django.utils import formats, translation
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from attribution import design

register = template.Library()


@register.filter
def money(amount, currency: str = "USD") -> str:
    """`{{ row.cost|money:row.currency }}`."""
    return design.money_format(amount, currency)


@register.filter
def number(value, digits: int = 0) -> str:
    return design.number_format(value, digits=int(digits))


@register.filter
def percent(ratio, digits: int = 1) -> str:
    return design.percent_format(ratio, digits=int(digits))


_WIDE = Context(prec=1000)
_QUANTUM = {places: Decimal(1).scaleb(-abs(places)) for places in range(-6, 7)}
# Per language: whether it writes numbers as Python's format() does ("." and "," every 3 digits).
_PYTHON_NUMBER_FORMAT: dict[str | None, bool] = {}


@receiver(setting_changed)
def _forget_number_formats(*, setting: str, **kwargs) -> None:
    if setting in {"FORMAT_MODULE_PATH", "DECIMAL_SEPARATOR", "THOUSAND_SEPARATOR", "NUMBER_GROUPING"}:
        _PYTHON_NUMBER_FORMAT.clear()


def _language_formats_like_python() -> bool:
    language = translation.get_language()
    like_python = _PYTHON_NUMBER_FORMAT.get(language)
    if like_python is None:
        like_python = _PYTHON_NUMBER_FORMAT[language] = (
            formats.get_format("DECIMAL_SEPARATOR", language, use_l10n=True),
            formats.get_format("THOUSAND_SEPARATOR", language, use_l10n=True),
            formats.get_format("NUMBER_GROUPING", language, use_l10n=True),
        ) == (".", ",", 3)
    return like_python


@register.filter(is_safe=True)
def floatfmt(value, arg=-1):
    """Django's `floatformat`, the same text, for a fraction of its cost on numbers.

    `floatformat` looks up three locale formats and walks the digits in Python on every call (some
    50 us; the overview calls it about 300 times). For a Decimal, int or float, in a language that
    writes numbers as Python does (en: "." and "," every three digits), this rounds the same way
    (half up, at the same precision) and lets format() write the digits; anything else (other
    types, NaN, unlocalized "u", other separators) goes to `floatformat` itself.
    """
    return _floatfmt(value, arg, _language_formats_like_python)


def floatfmt_in_current_language():
    """`floatfmt` for many numbers in a row (a table built in Python): the same text, with the
    language looked up once instead of per number (get_language() costs some 20 us a call)."""
    like_python = _language_formats_like_python()
    return lambda value, arg=-1: _floatfmt(value, arg, lambda: like_python)


def _floatfmt(value, arg, language_formats_like_python):
    kind = type(value)
    if kind is Decimal:
        number = value
    elif kind is int:
        number = Decimal(value)
    elif kind is float:
        number = Decimal(repr(value))  # what floatformat reads: str() of the float
    else:
        return floatformat(value, arg)
    places, grouping = arg, False
    if isinstance(arg, str):
        if "u" in arg:
            return floatformat(value, arg)
        if arg.endswith("g"):
            places, grouping = arg[:-1] or -1, True
    try:
        places = int(places)
    except ValueError:
        return floatformat(value, arg)
    if not number.is_finite() or not language_formats_like_python():
        return floatformat(value, arg)
    _, digits, exponent = number.as_tuple()
    if len(digits) + abs(exponent) > 200 or abs(places) > 200:
        return floatformat(value, arg)
    spec = ",f" if grouping or settings.USE_THOUSAND_SEPARATOR else "f"
    fraction = int(number) - number
    if not fraction and places <= 0:
        return mark_safe(format(int(number), spec.replace("f", "d")))
    # Half up, as floatformat rounds; the context is wide enough for any number that gets here, and
    # quantize's result does not depend on its precision when it fits.
    rounded = number.quantize(_QUANTUM.get(places) or Decimal(1).scaleb(-abs(places)), ROUND_HALF_UP, _WIDE)
    if not rounded:
        rounded = rounded.copy_abs()  # never "-0.00"
    return mark_safe(format(rounded, spec))


@register.filter
def org_date(value) -> str:
    return design.org_date_format(value)


@register.filter
def org_datetime(value) -> str:
    return design.org_datetime_format(value)


@register.inclusion_tag("components/provider_chip.html")
def provider_chip(provider: str) -> dict:
    return {"provider": provider or "unknown", "label": design.provider_label(provider or "")}


@register.inclusion_tag("components/empty_state.html")
def empty_state(title: str, next_step: str = "", action_url: str = "", action_label: str = "") -> dict:
    """What is missing and what to do next: an empty page must never just say "No data"."""
    return {
        "title": title,
        "next_step": next_step,
        "action_url": action_url,
        "action_label": action_label,
    }


@register.inclusion_tag("components/error_state.html")
def error_state(title: str, detail: str = "") -> dict:
    return {"title": title, "detail": detail}


@register.inclusion_tag("components/pagination.html", takes_context=True)
def pagination(context, page: Page, label: str = "Pages") -> dict:
    """Previous/next links that keep every other query parameter (filters, sort) of the page."""
    request = context.get("request")
    query = request.GET.copy() if request is not None else QueryDict(mutable=True)

    def link(number: int) -> str:
        query["page"] = str(number)
        return "?" + query.urlencode()

    return {
        "page": page,
        "label": label,
        "previous_url": link(page.previous_page_number()) if page.has_previous() else "",
        "next_url": link(page.next_page_number()) if page.has_next() else "",
    }


@register.filter
def decimal_plain(value) -> str:
    """A Decimal without trailing zeros and never in exponent form (60.0000 -> "60", not "6E+1")."""
    if value is None or value == "":
        return "—"
    return format(Decimal(str(value)).normalize(), "f")


# A decimal string with more than two places: amounts stored exactly (rollups keep ten places).
_LONG_DECIMAL = re.compile(r"^-?\d+\.\d{3,}$")


def _audit_value(value) -> str:
    if isinstance(value, str) and _LONG_DECIMAL.match(value):
        # Trailing zeros only, never a digit that counts: "11444.0700000000" -> "11444.07", exact.
        whole, places = value.split(".")
        return f"{whole}.{places.rstrip('0').ljust(2, '0')}"
    if isinstance(value, dict | list):
        return json.dumps(value, cls=DjangoJSONEncoder, separators=(", ", ": "))
    return "—" if value is None else str(value)


@register.filter
def audit_changes(changes) -> str:
    """An audit event's changes for people: `key: value` pairs, amounts without the rollups' trailing
    zeros (the stored record and its CSV keep the exact strings)."""
    if not isinstance(changes, dict):
        return "" if changes is None else str(changes)
    return " · ".join(f"{key}: {_audit_value(value)}" for key, value in changes.items())


@register.filter(is_safe=True)
def json_data(value, element_id: str) -> SafeString:
    """Django's `json_script`, the same bytes, for large payloads such as a page's figures.

    `json_script` escapes `<`, `>` and `&` with `str.translate` and a mapping, which walks the JSON
    one character at a time in Python (6 ms of CPU for the overview's 64 KB of figures); three
    `str.replace` calls do the same in C.
    """
    json_str = (
        json.dumps(value, cls=DjangoJSONEncoder)
        .replace(">", "\\u003E")
        .replace("<", "\\u003C")
        .replace("&", "\\u0026")
    )
    return format_html('<script id="{}" type="application/json">{}</script>', element_id, mark_safe(json_str))
