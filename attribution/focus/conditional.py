"""Reading the FOCUS 1.2 conditional columns from the exports: unit prices, SKU price details,
commitment quantities and capacity reservation states (used by the parsers in
attribution/ingest/formats/; the view shows them, migration 0022).

A unit price or commitment quantity describes a charge, it is not an amount that must reconcile:
a cell that does not read as a number leaves the column null instead of rejecting the charge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from attribution.currency.codes import currency_validate
from attribution.ingest.errors import RowError
from attribution.ingest.values import decimal_parse


def number_or_none(text: object, *, column: str, non_negative: bool = False) -> Decimal | None:
    """The cell as a Decimal, or None when empty or unreadable (or negative, for a price)."""
    try:
        value = decimal_parse(text, column=column, default=None)
    except RowError:
        return None
    if value is None or (non_negative and value < 0):
        return None
    return value


def currency_or_empty(text: str) -> str:
    """An ISO 4217 code, or "" when the cell holds none."""
    try:
        return currency_validate(text) if text.strip() else ""
    except (RowError, ValueError):
        return ""


def price_details(properties: Mapping[str, object]) -> str:
    """SkuPriceDetails: a JSON object of the non-empty properties ("" when none). Keys are the
    provider's own, so they carry the `x_` prefix FOCUS requires (SkuPriceDetails-C-017)."""
    kept = {key: value for key, value in properties.items() if value not in (None, "")}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True) if kept else ""


def json_object_text(raw: str) -> str:
    """A FOCUS export's SkuPriceDetails cell, re-serialised; a cell that is not a JSON object is
    kept visible as {"x_Unparsed": text} rather than dropped."""
    text = raw.strip()
    if not text or text.lower() == "null" or text == "{}":
        return ""
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        return json.dumps({"x_Unparsed": raw}, ensure_ascii=False)
    return json.dumps(decoded, ensure_ascii=False, sort_keys=True)


_CAPACITY_STATES = {"used": "Used", "unused": "Unused"}


def capacity_reservation_status(value: str) -> str:
    """FOCUS allows Used and Unused; CUR's Reserved and Cancelled have no FOCUS value ("")."""
    return _CAPACITY_STATES.get(value.strip().lower(), "")
