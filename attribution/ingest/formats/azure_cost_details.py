"""Azure cost details CSV: EA (PascalCase) and MCA (camelCase) exports, the legacy pay-as-you-go
usage export (PreTaxCost), localized headers ("Maßeinheit (UnitOfMeasure)"), UTF-8 BOM, ISO or
M/D/YYYY dates, Tags with or without the surrounding braces. Actual and amortized datasets.

How the actual and amortized datasets of one period are combined
----------------------------------------------------------------
A run covers one (account, billing period). Its files each carry a dataset, `actual` or
`amortized` (from --dataset, the export folder, or "amortized"/"actual" in the file name).

- One dataset only: every row is loaded once with mapping.azure_costs (Microsoft's FOCUS rules:
  BilledCost 0 for commitment usage and unused commitment, EffectiveCost 0 for commitment
  purchases and refunds, otherwise both = cost).
- Both datasets: rows are PAIRED in SQL after COPY. Every actual row is staged with
  BilledCost = cost, EffectiveCost = 0; every amortized row with BilledCost = 0,
  EffectiveCost = cost. Rows that describe the same charge (same day, subscription, resource id,
  meter, charge type, pricing model and quantity; duplicates matched in file order) are merged
  into one line item that takes the actual row's BilledCost and the amortized row's
  EffectiveCost. A row without a twin stays a line item of its own with the other cost 0: a
  commitment purchase (actual only: BilledCost = price, EffectiveCost = 0, as FOCUS wants), the
  amortized share of reservation-covered usage whose actual twin has cost 0, unused commitment
  (amortized only).
  Because merging only moves amounts between staged rows, per period sum(BilledCost) equals the
  actual file's total and sum(EffectiveCost) the amortized file's total, exactly, whether or not
  the two files are consistent. Row counts reconcile as
  rows_in_source = rows_loaded + rows_rejected + merged pairs (recorded as `rows_merged`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any, ClassVar

from attribution.choices import Provider
from attribution.currency.codes import currency_validate
from attribution.focus import conditional
from attribution.ingest import mapping
from attribution.ingest.formats.base import CsvParser, ParseContext, cell, header_of
from attribution.ingest.tags import tag_key_normalize, tags_check, tags_normalize
from attribution.ingest.values import (
    ZERO,
    datetime_parse,
    decimal_parse,
    next_month_start,
    quantity_parse,
    utc_midnight,
)

_PARENTHESIZED = re.compile(r"\(([^()]+)\)\s*$")

# canonical name -> header spellings (lower case) in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "usagedatetime", "usagedate"),
    "cost": ("costinbillingcurrency", "cost", "pretaxcost"),
    "currency": ("billingcurrency", "billingcurrencycode", "currency"),
    "billing_period_start": ("billingperiodstartdate",),
    "billing_period_end": ("billingperiodenddate",),
    "charge_type": ("chargetype",),
    "pricing_model": ("pricingmodel",),
    "frequency": ("frequency",),
    "quantity": ("quantity", "usagequantity"),
    "unit": ("unitofmeasure",),
    "meter_id": ("meterid",),
    "meter_name": ("metername",),
    "meter_category": ("metercategory",),
    "consumed_service": ("consumedservice",),
    "service_family": ("servicefamily",),
    "region": ("resourcelocation", "location", "meterregion"),
    "resource_id": ("resourceid", "instanceid", "instancename"),
    "resource_name": ("resourcename",),
    "resource_type": ("resourcetype",),
    "subscription_id": ("subscriptionid", "subscriptionguid"),
    "subscription_name": ("subscriptionname",),
    "billing_account_id": ("billingaccountid",),
    "billing_account_name": ("billingaccountname",),
    "billing_profile_id": ("billingprofileid",),
    "billing_profile_name": ("billingprofilename",),
    "tags": ("tags",),
    "product": ("productname", "product"),
    "commitment_id": ("benefitid", "reservationid"),
    "payg_cost": ("paygcostinbillingcurrency",),
    "payg_price": ("paygprice",),
    "availability_zone": ("availabilityzone",),
    "publisher_name": ("publishername",),
    "part_number": ("partnumber",),
    "invoice_id": ("invoiceid",),
    # FOCUS 1.2 conditional columns (see _prices).
    "unit_price": ("unitprice",),
    "effective_price": ("effectiveprice",),
    "term": ("term",),
    "pricing_currency": ("pricingcurrency", "pricingcurrencycode"),
    "exchange_rate": ("exchangeratepricingtobilling",),
    "cost_in_pricing_currency": ("costinpricingcurrency",),
    "commitment_name": ("benefitname", "reservationname"),
}


def _canonical_header(name: str) -> str:
    name = name.strip().lstrip("\ufeff")
    match = _PARENTHESIZED.search(name)
    if match:
        name = match.group(1)
    return name.strip().lower()


def tags_parse(raw: str) -> dict[str, str]:
    """Azure Tags: `{"k": "v"}`, or the same without braces (EA exports), or empty."""
    text = raw.strip()
    if not text:
        return {}
    if not text.startswith("{"):
        text = "{" + text + "}"
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError:
        # Keep what the provider wrote rather than drop it; it is visible in Tags.
        return {"_unparsed": raw}
    if not isinstance(decoded, dict):
        return {"_unparsed": raw}
    return {str(key): "" if value is None else str(value) for key, value in decoded.items()}


class AzureCostDetailsParser(CsvParser):
    billed_cost_column: ClassVar[str] = "cost"
    name: ClassVar[str] = "azure-cost-details"
    provider: ClassVar[str] = Provider.AZURE
    label: ClassVar[str] = "Azure cost details"
    required = ("date", "cost")

    @classmethod
    def sniff(cls, head: str) -> bool:
        names = {_canonical_header(name) for name in header_of(head.lstrip("\ufeff"))}
        has_cost = bool(names & set(ALIASES["cost"]))
        has_date = bool(names & set(ALIASES["date"]))
        has_azure = bool(
            names & {"metercategory", "meterid", "chargetype", "subscriptionguid", "subscriptionid"}
        )
        return has_cost and has_date and has_azure

    def columns_map(self, header: list[str]) -> dict[str, int]:
        by_name: dict[str, int] = {}
        for index, name in enumerate(header):
            by_name.setdefault(_canonical_header(name), index)
        columns: dict[str, int] = {}
        for canonical, spellings in ALIASES.items():
            for spelling in spellings:
                if spelling in by_name:
                    columns[canonical] = by_name[spelling]
                    break
        return columns

    def period_of(self, row: list[str], columns: dict[str, int]) -> dt.date:
        start = cell(row, columns, "billing_period_start").strip()
        if start:
            return datetime_parse(start, column="BillingPeriodStartDate").date()
        # Exports without a billing period (legacy pay-as-you-go, some MCA rows) bill by calendar month.
        return datetime_parse(cell(row, columns, "date"), column="Date").date().replace(day=1)

    def row_parse(
        self, row: list[str], columns: dict[str, int], header: list[str], context: ParseContext
    ) -> dict[str, Any]:
        def text(name: str) -> str:
            index = columns.get(name)
            return row[index].strip() if index is not None else ""

        period = self.period_of(row, columns)
        end_text = text("billing_period_end")
        if end_text:
            # Azure gives the last day of the period (inclusive); FOCUS wants the exclusive end.
            period_end = datetime_parse(end_text, column="BillingPeriodEndDate").date()
            if period_end.day != 1 or period_end <= period:
                period_end += dt.timedelta(days=1)
        else:
            period_end = next_month_start(period)
        charge_start = datetime_parse(text("date"), column="Date")
        charge_end = charge_start + dt.timedelta(days=1)

        cost = decimal_parse(text("cost"), column="cost")
        charge_type = text("charge_type") or "Usage"
        pricing_model = text("pricing_model")
        currency = currency_validate(text("currency") or context.default_currency)
        quantity = quantity_parse(text("quantity"), column="Quantity")

        if context.dataset == "actual_paired":
            billed, effective = cost, ZERO
        elif context.dataset == "amortized_paired":
            billed, effective = ZERO, cost
        else:
            billed, effective = mapping.azure_costs(
                cost=cost, charge_type=charge_type, pricing_model=pricing_model
            )  # type: ignore[arg-type]

        list_cost = decimal_parse(text("payg_cost"), column="paygCostInBillingCurrency", default=None)
        if list_cost is None and text("payg_price") and quantity is not None:
            payg_price = decimal_parse(text("payg_price"), column="PayGPrice")
            list_cost = (payg_price * quantity).quantize(ZERO)  # type: ignore[operator]

        tags = tags_check(tags_parse(text("tags")))
        for key in tags:
            if key not in context.tag_keys:
                context.tag_keys[key] = tag_key_normalize(key)

        resource_id = text("resource_id")
        is_mca = bool(text("billing_profile_id")) and text("billing_profile_id") != text("billing_account_id")
        subscription_id = text("subscription_id")
        pair_key = "|".join(
            (
                charge_start.date().isoformat(),
                subscription_id.lower(),
                resource_id.lower(),
                text("meter_id").lower(),
                charge_type.lower(),
                pricing_model.lower(),
                str(quantity) if quantity is not None else "",
                text("commitment_id").lower() if charge_type.lower() != "usage" else "",
            )
        )
        return {
            "billing_period_start": period,
            "dataset": context.dataset,
            "pair_key": pair_key,
            "billed_cost": billed,
            "effective_cost": effective,
            "list_cost": list_cost,
            "billing_currency": currency,
            "charge_period_start": charge_start,
            "charge_period_end": charge_end,
            "billing_period_start_at": utc_midnight(period),
            "billing_period_end_at": utc_midnight(period_end),
            "charge_category": mapping.azure_charge_category(charge_type),
            "charge_class": mapping.azure_charge_class(charge_type),
            "charge_description": text("product") or text("meter_name"),
            "charge_frequency": mapping.azure_charge_frequency(text("frequency")),
            "provider_name": "Microsoft",
            "publisher_name": text("publisher_name") or "Microsoft",
            "invoice_issuer_name": "Microsoft",
            "billing_account_id": text("billing_profile_id") if is_mca else text("billing_account_id"),
            "billing_account_name": text("billing_profile_name") if is_mca else text("billing_account_name"),
            "sub_account_id": subscription_id,
            "sub_account_name": text("subscription_name"),
            "region_id": text("region").lower().replace(" ", ""),
            "region_name": text("region"),
            "availability_zone": text("availability_zone"),
            "resource_id": resource_id,
            "resource_name": text("resource_name") or resource_id.rsplit("/", 1)[-1],
            "resource_type": text("resource_type"),
            "service_name": text("meter_category") or text("consumed_service"),
            "service_category": "",
            "sku_id": text("part_number") or text("meter_id"),
            "sku_price_id": "",
            "pricing_category": "Committed"
            if pricing_model.lower() in ("reservation", "savingsplan")
            else ("Dynamic" if pricing_model.lower() == "spot" else ("Standard" if pricing_model else "")),
            "pricing_quantity": quantity,
            "pricing_unit": text("unit"),
            "consumed_quantity": quantity if charge_type.lower() == "usage" else None,
            "consumed_unit": text("unit") if charge_type.lower() == "usage" else "",
            "commitment_discount_id": text("commitment_id"),
            "commitment_discount_status": "Unused"
            if charge_type.lower() in mapping.AZURE_UNUSED_TYPES
            else "",
            "invoice_id": text("invoice_id"),
            **_prices(
                text,
                billing_currency=currency,
                cost=cost,
                effective_cost=effective,
                list_cost=list_cost,
                quantity=quantity,
                commitment_usage=bool(text("commitment_id"))
                and mapping.azure_is_amortized_commitment(
                    charge_type=charge_type, pricing_model=pricing_model
                ),
            ),
            "sku_meter": text("meter_name"),
            "commitment_discount_name": text("commitment_name") if text("commitment_id") else "",
            **_commitment(
                commitment_id=text("commitment_id"),
                pricing_model=pricing_model,
                cost=cost,
                quantity=mapping.azure_reservation_purchase_hours(
                    quantity=quantity, unit=text("unit"), term=text("term"), frequency=text("frequency")
                )
                if charge_type.lower() == "purchase"
                else quantity,
                unit=text("unit"),
                currency=currency,
            ),
            "tags": tags,
            "normalized_tags": tags_normalize(tags),
        }


def _commitment(
    *,
    commitment_id: str,
    pricing_model: str,
    cost: Decimal,
    quantity: Decimal | None,
    unit: str,
    currency: str,
) -> dict[str, Any]:
    """CommitmentDiscountCategory/Quantity/Unit of a row that names a reservation or savings plan
    (Microsoft's FOCUS conversion: usage commitments are measured in the row's UnitOfMeasure,
    spend commitments in the billing currency). A reservation's quantity is the row's Quantity (hours
    used, left unused, or bought); a savings plan's is the row's cost (the commitment it used, left
    unused, or bought), which an actual-only dataset states as 0 on usage it covered."""
    if not commitment_id:
        return {}
    if pricing_model.lower() == "savingsplan" or "savingsplan" in commitment_id.lower():
        return {
            "commitment_discount_category": "Spend",
            "commitment_discount_quantity": abs(cost),
            "commitment_discount_unit": currency,
        }
    if quantity is None or not unit:
        return {"commitment_discount_category": "Usage"}
    return {
        "commitment_discount_category": "Usage",
        "commitment_discount_quantity": quantity,
        "commitment_discount_unit": unit,
    }


def _prices(
    text,
    *,
    billing_currency: str,
    cost: Decimal,
    effective_cost: Decimal,
    list_cost: Decimal | None,
    quantity: Decimal | None,
    commitment_usage: bool,
) -> dict[str, Any]:
    """Unit prices of a cost details row (Microsoft's FOCUS conversion): PayGPrice is the list
    price, UnitPrice the negotiated (contracted) one. MCA exports state both in pricingCurrency and
    give exchangeRatePricingToBilling: then they are the PricingCurrency* prices, and the billing-
    currency ones are those times the rate. EA exports price in the billing currency.
    costInPricingCurrency is the row's cost; it is the PricingCurrencyEffectiveCost when the row's
    EffectiveCost is its cost, and 0 when the rules zero EffectiveCost (a commitment purchase, the
    actual twin of a paired row).

    The costs decide, the prices describe them (FOCUS: ListUnitPrice x PricingQuantity = ListCost,
    ContractedUnitPrice x PricingQuantity = ContractedCost), so a stated price is kept only when it
    gives its cost back (conditional.unit_price_for_cost):
    - ListCost is paygCostInBillingCurrency (else PayGPrice x Quantity; else, in the view, the row's
      cost): ListUnitPrice is PayGPrice, or the price ListCost implies where the export states
      another (paygCost 0 on unused reservation and reservation purchase rows, which carry the
      meter's PayGPrice) or none (a legacy pay-as-you-go export with PreTaxCost only).
    - ContractedCost of usage covered or left unused by a commitment is UnitPrice x Quantity (the
      negotiated price before the commitment discount); of every other row, its cost (the view's
      rule, the billed cost). ContractedUnitPrice is UnitPrice when it gives that back; else
      EffectivePrice (a spot row states the pay-as-you-go UnitPrice, but is charged, and contracted,
      at its dynamic EffectivePrice); else the price the cost implies."""
    list_price = conditional.number_or_none(text("payg_price"), column="PayGPrice", non_negative=True)
    unit_price = conditional.number_or_none(text("unit_price"), column="UnitPrice", non_negative=True)
    effective_price = conditional.number_or_none(
        text("effective_price"), column="EffectivePrice", non_negative=True
    )
    pricing_currency = conditional.currency_or_empty(text("pricing_currency"))
    prices: dict[str, Any] = {
        "pricing_currency": pricing_currency,
        "pricing_currency_effective_cost": ZERO
        if effective_cost == 0
        else conditional.number_or_none(text("cost_in_pricing_currency"), column="costInPricingCurrency")
        if effective_cost == cost
        else None,
    }
    foreign = bool(pricing_currency) and pricing_currency != billing_currency
    if foreign:
        rate = conditional.number_or_none(
            text("exchange_rate"), column="exchangeRatePricingToBilling", non_negative=True
        )

        def in_billing_currency(price: Decimal | None) -> Decimal | None:
            return None if price is None or rate is None else (price * rate).quantize(ZERO)

        prices |= {
            "pricing_currency_list_unit_price": list_price,
            "pricing_currency_contracted_unit_price": unit_price,
        }
        list_price, unit_price, effective_price = (
            in_billing_currency(price) for price in (list_price, unit_price, effective_price)
        )
    contracted_cost = None
    if commitment_usage and unit_price is not None and quantity is not None:
        contracted_cost = (unit_price * quantity).quantize(ZERO)
    return prices | {
        "contracted_cost": contracted_cost,
        # Without paygCost or PayGPrice the view's ListCost is the row's cost (as for ContractedCost).
        "list_unit_price": conditional.unit_price_for_cost(
            (list_price,), cost=cost if list_cost is None else list_cost, quantity=quantity
        ),
        "contracted_unit_price": conditional.unit_price_for_cost(
            (unit_price, effective_price),
            cost=contracted_cost if contracted_cost is not None else cost,
            quantity=quantity,
        ),
    }
