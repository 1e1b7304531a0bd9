"""Reading the FOCUS 1.2 conditional columns from the exports: unit prices, SKU price details,
commitment quantities and capacity reservation states (used by the parsers in
attribution/ingest/formats/; the view shows them, migration 0022).

A unit price or commitment quantity describes a charge, it is not an amount that must reconcile:
a cell that does not read as a number leaves the column null instead of rejecting the charge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

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


# Unit prices are stored with 10 decimals (numeric(28, 10)). The FinOps Foundation's validator checks
# ListUnitPrice x PricingQuantity = ListCost (ListCost-C-009, ContractedUnitPrice-C-011 likewise) with
# a relative tolerance of 1e-9 x max(|cost|, 1) (focus-validator 2.2.1,
# ColumnByColumnEqualsColumnValueGenerator): a price derived from a cost is only kept when its
# 10-decimal value reproduces the cost within that tolerance.
UNIT_PRICE_PLACES = Decimal("0.0000000001")
PRODUCT_TOLERANCE = Decimal("1e-9")


def product_matches(*, unit_price: Decimal, quantity: Decimal, cost: Decimal) -> bool:
    """unit_price x quantity = cost within the validator's tolerance."""
    return abs(unit_price * quantity - cost) <= PRODUCT_TOLERANCE * max(abs(cost), Decimal(1))


def unit_price_from_cost(cost: Decimal | None, quantity: Decimal | None) -> Decimal | None:
    """The unit price a cost and its pricing quantity imply (cost / quantity, 10 decimals), or None
    when either is missing, the quantity is 0, the cost is negative, or no 10-decimal price
    reproduces the cost (a cost the export rounded, e.g. to micro-dollars, over a large quantity):
    then the export does not carry the price, and none is invented."""
    if cost is None or quantity is None or quantity == 0 or cost < 0 or quantity < 0:
        return None
    price = (cost / quantity).quantize(UNIT_PRICE_PLACES, rounding=ROUND_HALF_EVEN)
    return price if product_matches(unit_price=price, quantity=quantity, cost=cost) else None


def unit_price_for_cost(
    stated: tuple[Decimal | None, ...], *, cost: Decimal | None, quantity: Decimal | None
) -> Decimal | None:
    """The unit price of a cost: the first price the export states that gives the cost back (x
    quantity, within the validator's tolerance), else the price the cost implies
    (unit_price_from_cost), else None. Without a cost or a quantity there is nothing to check a
    stated price against: the first stated one is kept."""
    if cost is None or quantity is None:
        return next((price for price in stated if price is not None), None)
    for price in stated:
        if price is not None and product_matches(unit_price=price, quantity=quantity, cost=cost):
            return price
    return unit_price_from_cost(cost, quantity)


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
