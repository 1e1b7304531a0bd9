"""FOCUS 1.0 to 1.3 exports from any provider (AWS FOCUS export, Google's FOCUS table/view, Azure
FOCUS export, OCI), as CSV (plain or gzipped) or Parquet.

The file is already in FOCUS semantics, so the columns are taken as they are: BilledCost and
EffectiveCost are what the provider computed (no provider rule from mapping.py applies).

Reading rules
- Column names are matched case-insensitively (`SkuPriceid` in the spec's own examples); a BOM is
  dropped. `x_*` provider extension columns are ignored.
- Required columns: BilledCost, EffectiveCost, ChargePeriodStart, BillingPeriodStart. Without a
  BillingCurrency column the account's currency is used (the spec's scenario files omit it).
- Nulls are an empty cell or the literal `NULL` (any case).
- Timestamps are ISO 8601, naive (= UTC) or zoned; the billing period is the calendar date
  written in BillingPeriodStart (not shifted by its zone).
- BilledCost, EffectiveCost and (when present) BillingCurrency must not be null; ChargeCategory
  must be one of the FOCUS values (any case). A row breaking these is rejected with its line.
- FOCUS 1.3 renamed ProviderName to ServiceProviderName: either is read.
- Tags is a JSON object; a value that is not one is kept as {"_unparsed": text} so the cost still
  loads and the problem is visible. A tag key over 512 or a value over 64 KiB characters rejects
  the row (no provider allows tags that long; such a cell is corrupt).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

from attribution.choices import ChargeCategory
from attribution.currency.codes import currency_validate
from attribution.focus import conditional
from attribution.ingest.errors import RowError
from attribution.ingest.formats.base import CsvParser, ParseContext, Rejected, header_of
from attribution.ingest.formats.parquet import (
    is_parquet,
    parquet_columns,
    parquet_parse,
    parquet_scan_periods,
)
from attribution.ingest.tags import tag_key_normalize, tags_check, tags_normalize
from attribution.ingest.values import datetime_parse, decimal_parse, next_month_start, quantity_parse

# The `provider` of a parser whose files may come from any cloud (FOCUS): the provider is in the
# rows (ProviderName), not in the format. services.ingest_runs_create accepts it for every account.
ANY_PROVIDER = "*"

_CATEGORIES = {value.lower(): value for value in ChargeCategory.values}
_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_NULLS = frozenset({"", "null"})


def focus_header_name(name: str) -> str:
    return name.strip().lstrip("\ufeff").lower()


def _is_null(text: str) -> bool:
    return text.strip().lower() in _NULLS


def tags_parse(raw: str) -> dict[str, str]:
    if _is_null(raw) or raw.strip() == "{}":
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        return {"_unparsed": raw}
    tags: dict[str, str] = {}
    for key, value in decoded.items():
        tags[str(key)] = "" if value is None else (value if isinstance(value, str) else json.dumps(value))
    return tags_check(tags)


class FocusParser(CsvParser):
    name: ClassVar[str] = "focus"
    provider: ClassVar[str] = ANY_PROVIDER
    label: ClassVar[str] = "FOCUS"
    # Canonical (lower-case) names.
    required = ("billedcost", "effectivecost", "chargeperiodstart", "billingperiodstart")
    PERIOD_COLUMNS: ClassVar[tuple[str, ...]] = ("BillingPeriodStart",)

    @classmethod
    def sniff(cls, head: str) -> bool:
        names = {focus_header_name(name) for name in header_of(head.lstrip("\ufeff"))}
        return {"billedcost", "chargeperiodstart", "billingperiodstart"} <= names

    @classmethod
    def sniff_parquet(cls, names: list[str]) -> bool:
        return {"billedcost", "chargeperiodstart", "billingperiodstart"} <= {
            focus_header_name(n) for n in names
        }

    # --- reading: CSV through CsvParser, Parquet through formats/parquet.py ----------------------

    def scan_periods(self, context: ParseContext) -> Counter:
        if is_parquet(context.source):
            names = [
                n
                for n in parquet_columns(context.source, name=context.path)
                if focus_header_name(n) == "billingperiodstart"
            ]
            return parquet_scan_periods(self, context, names)
        return super().scan_periods(context)

    def parse(self, context: ParseContext) -> Iterator[dict[str, Any] | Rejected]:
        if is_parquet(context.source):
            return parquet_parse(self, context)
        return super().parse(context)

    # --- CsvParser hooks ------------------------------------------------------------------------

    def columns_map(self, header: list[str]) -> dict[str, int]:
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            canonical = focus_header_name(name)
            if canonical.startswith("x_"):
                continue
            columns.setdefault(canonical, index)
        return columns

    def period_of(self, row: list[str], columns: dict[str, int]) -> dt.date:
        text = _cell(row, columns, "billingperiodstart")
        if _is_null(text):
            raise RowError("BillingPeriodStart is null")
        match = _DATE_PREFIX.match(text.strip())
        if match:
            try:
                return dt.date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                raise RowError(f"BillingPeriodStart: {text!r} is not a date") from None
        return datetime_parse(text, column="BillingPeriodStart").date()

    def rejected_amounts(self, row: list[str], columns: dict[str, int]) -> dict[str, Decimal]:
        amounts: dict[str, Decimal] = {}
        for column, name in (
            ("billed_cost", "billedcost"),
            ("effective_cost", "effectivecost"),
            ("list_cost", "listcost"),
            ("contracted_cost", "contractedcost"),
        ):
            try:
                value = _money(row, columns, name, required=False)
            except RowError:
                continue
            if value is not None:
                amounts[column] = value
        return amounts

    def row_parse(
        self, row: list[str], columns: dict[str, int], header: list[str], context: ParseContext
    ) -> dict[str, Any]:
        def text(name: str) -> str:
            value = _cell(row, columns, name).strip()
            return "" if value.lower() == "null" else value

        period = self.period_of(row, columns)
        period_start_at = _timestamp(row, columns, "billingperiodstart", "BillingPeriodStart")
        period_end_at = (
            _timestamp(row, columns, "billingperiodend", "BillingPeriodEnd")
            if text("billingperiodend")
            else dt.datetime.combine(next_month_start(period), dt.time(), tzinfo=dt.UTC)
        )
        charge_start = _timestamp(row, columns, "chargeperiodstart", "ChargePeriodStart")
        charge_end = (
            _timestamp(row, columns, "chargeperiodend", "ChargePeriodEnd")
            if text("chargeperiodend")
            else charge_start
        )
        if charge_end < charge_start:
            raise RowError("ChargePeriodEnd is before ChargePeriodStart")

        billed = _money(row, columns, "billedcost", required=True)
        effective = _money(row, columns, "effectivecost", required=True)
        list_cost = _money(row, columns, "listcost", required=False)
        contracted = _money(row, columns, "contractedcost", required=False)

        if "billingcurrency" in columns:
            if not text("billingcurrency"):
                raise RowError("BillingCurrency is null")
            currency = currency_validate(text("billingcurrency"))
        else:
            currency = currency_validate(context.default_currency)

        category_text = text("chargecategory")
        category = _CATEGORIES.get(category_text.lower())
        if category is None:
            raise RowError(
                f"ChargeCategory: {category_text!r} is not one of {', '.join(ChargeCategory.values)}"
                if category_text
                else "ChargeCategory is null"
            )

        tags = tags_parse(_cell(row, columns, "tags"))
        for key in tags:
            if key not in context.tag_keys:
                context.tag_keys[key] = tag_key_normalize(key)

        return {
            "billing_period_start": period,
            "billed_cost": billed,
            "effective_cost": effective,
            "list_cost": list_cost,
            "contracted_cost": contracted,
            "billing_currency": currency,
            "charge_period_start": charge_start,
            "charge_period_end": charge_end,
            "billing_period_start_at": period_start_at,
            "billing_period_end_at": period_end_at,
            "charge_category": category,
            "charge_class": text("chargeclass"),
            "charge_description": text("chargedescription"),
            "charge_frequency": text("chargefrequency"),
            "provider_name": text("serviceprovidername") or text("providername"),
            "publisher_name": text("publishername") or text("hostprovidername"),
            "invoice_issuer_name": text("invoiceissuername"),
            "billing_account_id": text("billingaccountid"),
            "billing_account_name": text("billingaccountname"),
            "sub_account_id": text("subaccountid"),
            "sub_account_name": text("subaccountname"),
            "region_id": text("regionid"),
            "region_name": text("regionname"),
            "availability_zone": text("availabilityzone"),
            "resource_id": text("resourceid"),
            "resource_name": text("resourcename"),
            "resource_type": text("resourcetype"),
            "service_name": text("servicename"),
            "service_category": text("servicecategory"),
            "service_subcategory": text("servicesubcategory"),
            "sku_id": text("skuid"),
            "sku_price_id": text("skupriceid"),
            "pricing_category": text("pricingcategory"),
            "pricing_quantity": _quantity(text("pricingquantity"), "PricingQuantity"),
            "pricing_unit": text("pricingunit"),
            "consumed_quantity": _quantity(text("consumedquantity"), "ConsumedQuantity"),
            "consumed_unit": text("consumedunit"),
            "commitment_discount_id": text("commitmentdiscountid"),
            "commitment_discount_status": text("commitmentdiscountstatus"),
            "invoice_id": text("invoiceid"),
            # FOCUS 1.2 conditional columns, as the export states them.
            "list_unit_price": _number(text("listunitprice"), "ListUnitPrice"),
            "contracted_unit_price": _number(text("contractedunitprice"), "ContractedUnitPrice"),
            "pricing_currency": conditional.currency_or_empty(text("pricingcurrency")),
            "pricing_currency_list_unit_price": _number(
                text("pricingcurrencylistunitprice"), "PricingCurrencyListUnitPrice"
            ),
            "pricing_currency_contracted_unit_price": _number(
                text("pricingcurrencycontractedunitprice"), "PricingCurrencyContractedUnitPrice"
            ),
            "pricing_currency_effective_cost": _number(
                text("pricingcurrencyeffectivecost"), "PricingCurrencyEffectiveCost", prices=False
            ),
            "sku_meter": text("skumeter"),
            "sku_price_details": conditional.json_object_text(text("skupricedetails")),
            "billing_account_type": text("billingaccounttype"),
            "sub_account_type": text("subaccounttype"),
            "commitment_discount_name": text("commitmentdiscountname"),
            "commitment_discount_category": text("commitmentdiscountcategory"),
            "commitment_discount_type": text("commitmentdiscounttype"),
            "commitment_discount_quantity": _number(
                text("commitmentdiscountquantity"), "CommitmentDiscountQuantity", prices=False
            ),
            "commitment_discount_unit": text("commitmentdiscountunit"),
            "capacity_reservation_id": text("capacityreservationid"),
            "capacity_reservation_status": conditional.capacity_reservation_status(
                text("capacityreservationstatus")
            ),
            "tags": tags,
            "normalized_tags": tags_normalize(tags),
        }


def _cell(row: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return row[index] if index is not None else ""


_SPELLING = {
    "billedcost": "BilledCost",
    "effectivecost": "EffectiveCost",
    "listcost": "ListCost",
    "contractedcost": "ContractedCost",
}


def _money(row: list[str], columns: dict[str, int], name: str, *, required: bool) -> Decimal | None:
    text = _cell(row, columns, name).strip()
    label = _SPELLING.get(name, name)
    if _is_null(text):
        if required:
            raise RowError(f"{label} is null")
        return None
    return decimal_parse(text, column=label, default=None)


def _number(text: str, label: str, *, prices: bool = True) -> Decimal | None:
    """A descriptive number (a unit price, a commitment quantity): null when unreadable."""
    return conditional.number_or_none(text, column=label, non_negative=prices)


def _quantity(text: str, label: str) -> Decimal | None:
    return quantity_parse(text, column=label) if text else None


def _timestamp(row: list[str], columns: dict[str, int], name: str, label: str) -> dt.datetime:
    text = _cell(row, columns, name)
    if _is_null(text):
        raise RowError(f"{label} is null")
    return datetime_parse(text, column=label)
