"""AWS Cost and Usage Report: CUR 2.0 / Data Exports CSV (snake_case columns, `resource_tags` as a
JSON map) and legacy CUR CSV (`lineItem/UnblendedCost`, `resourceTags/user:team`), plain or gzipped.

Legacy names are translated to the CUR 2.0 / Athena names (`lineItem/UsageAccountId` ->
`line_item_usage_account_id`, `savingsPlan/SavingsPlanARN` -> `savings_plan_savings_plan_a_r_n`),
so one parser with one set of rules reads both. Tags come from `resource_tags` (CUR 2.0), from
flattened `resource_tags_*` columns (Athena-style legacy), or from `resourceTags/*` (legacy CSV).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any, ClassVar

from attribution.choices import Provider
from attribution.ingest import mapping
from attribution.ingest.currency import currency_validate
from attribution.ingest.errors import RowError
from attribution.ingest.formats.base import CsvParser, ParseContext, cell, header_of
from attribution.ingest.tags import tag_key_normalize, tags_normalize
from attribution.ingest.values import datetime_parse, decimal_parse, next_month_start, quantity_parse

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
# Two legacy columns fused by a missing comma, as in nise-generated files:
# `pricing/OfferingClasspricing/PurchaseOption` -> `pricing/OfferingClass`, `pricing/PurchaseOption`.
_FUSED = re.compile(r"^([a-z][A-Za-z]*/[^/]+?)([a-z][A-Za-z]*/[^/]+)$")


def legacy_column_name(name: str) -> str:
    """`lineItem/UnblendedCost` -> `line_item_unblended_cost` (the Athena / CUR 2.0 spelling)."""
    category, _, field_name = name.partition("/")
    return f"{_CAMEL.sub('_', category).lower()}_{_CAMEL.sub('_', field_name).lower()}"


class AwsCurParser(CsvParser):
    name: ClassVar[str] = "aws-cur2"
    provider: ClassVar[str] = Provider.AWS
    label: ClassVar[str] = "AWS CUR 2.0"
    required = (
        "bill_billing_period_start_date",
        "line_item_line_item_type",
        "line_item_usage_start_date",
        "line_item_unblended_cost",
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        header = set(header_of(head))
        return "line_item_unblended_cost" in header and "bill_billing_period_start_date" in header

    def columns_map(self, header: list[str]) -> dict[str, int]:
        columns: dict[str, int] = {}
        # Tag columns: index -> the provider's tag key.
        self.tag_columns: dict[int, str] = {}
        for index, raw_name in enumerate(header):
            name = raw_name.strip()
            if name.startswith("resourceTags/"):
                self.tag_columns[index] = name.partition("/")[2]
                continue
            if name.startswith("resource_tags_"):
                self.tag_columns[index] = name
                continue
            if "/" in name:
                name = legacy_column_name(name)
            columns.setdefault(name, index)
        return columns

    def period_of(self, row: list[str], columns: dict[str, int]) -> dt.date:
        return datetime_parse(
            cell(row, columns, "bill_billing_period_start_date"), column="bill_billing_period_start_date"
        ).date()

    def rejected_amounts(self, row: list[str], columns: dict[str, int]) -> dict[str, Decimal]:
        try:
            billed = decimal_parse(cell(row, columns, "line_item_unblended_cost"), column="unblended")
        except RowError:
            return {}
        return {"billed_cost": billed} if billed is not None else {}

    def _tags(self, row: list[str], columns: dict[str, int], context: ParseContext) -> dict[str, str]:
        tags: dict[str, str] = {}
        raw_map = cell(row, columns, "resource_tags")
        if raw_map.strip() and raw_map.strip() not in ("{}", "[]"):
            try:
                decoded = json.loads(raw_map)
            except json.JSONDecodeError:
                raise RowError(f"resource_tags: not a JSON object: {raw_map[:80]!r}") from None
            if isinstance(decoded, dict):
                tags.update({str(k): "" if v is None else str(v) for k, v in decoded.items()})
        for index, key in self.tag_columns.items():
            value = row[index]
            if value:
                tags[key] = value
        for key in tags:
            if key not in context.tag_keys:
                context.tag_keys[key] = tag_key_normalize(key)
        return tags

    def row_parse(
        self, row: list[str], columns: dict[str, int], header: list[str], context: ParseContext
    ) -> dict[str, Any]:
        def text(name: str) -> str:
            index = columns.get(name)
            return row[index].strip() if index is not None else ""

        def money(name: str) -> Decimal:
            return decimal_parse(text(name), column=name)  # type: ignore[return-value]

        line_item_type = text("line_item_line_item_type")
        if not line_item_type:
            raise RowError("line_item_line_item_type is empty")
        period_start_at = datetime_parse(
            text("bill_billing_period_start_date"), column="bill_billing_period_start_date"
        )
        period_end_text = text("bill_billing_period_end_date")
        period_end_at = (
            datetime_parse(period_end_text, column="bill_billing_period_end_date")
            if period_end_text
            else datetime_parse(next_month_start(period_start_at.date()).isoformat(), column="period end")
        )
        start_text = text("line_item_usage_start_date")
        charge_start = (
            datetime_parse(start_text, column="line_item_usage_start_date") if start_text else period_start_at
        )
        end_text = text("line_item_usage_end_date")
        charge_end = (
            datetime_parse(end_text, column="line_item_usage_end_date") if end_text else period_end_at
        )
        if charge_end < charge_start:
            raise RowError("line_item_usage_end_date is before line_item_usage_start_date")

        currency = currency_validate(text("line_item_currency_code") or context.default_currency)
        unblended = money("line_item_unblended_cost")
        # Only the columns the line item type's rule reads are parsed (others may hold junk).
        effective = mapping.aws_effective_cost(
            line_item_type=line_item_type, unblended_cost=unblended, amount=money
        )
        list_cost = decimal_parse(
            text("pricing_public_on_demand_cost"), column="pricing_public_on_demand_cost", default=None
        )
        usage_amount = quantity_parse(text("line_item_usage_amount"), column="line_item_usage_amount")
        tags = self._tags(row, columns, context)

        term = text("pricing_term").lower()
        usage_type = text("line_item_usage_type")
        if "spot" in usage_type.lower():
            pricing_category = "Dynamic"
        elif line_item_type in ("DiscountedUsage", "SavingsPlanCoveredUsage") or term == "reserved":
            pricing_category = "Committed"
        elif term == "ondemand" or line_item_type == "Usage":
            pricing_category = "Standard"
        else:
            pricing_category = ""

        return {
            "billing_period_start": period_start_at.date(),
            "billed_cost": unblended,
            "effective_cost": effective,
            "list_cost": list_cost,
            "contracted_cost": None,
            "billing_currency": currency,
            "charge_period_start": charge_start,
            "charge_period_end": charge_end,
            "billing_period_start_at": period_start_at,
            "billing_period_end_at": period_end_at,
            "charge_category": mapping.aws_charge_category(line_item_type),
            "charge_class": "",
            "charge_description": text("line_item_line_item_description"),
            "charge_frequency": mapping.aws_charge_frequency(line_item_type),
            "provider_name": "AWS",
            "publisher_name": text("line_item_legal_entity") or text("bill_billing_entity"),
            "invoice_issuer_name": text("bill_invoicing_entity") or text("bill_billing_entity") or "AWS",
            "billing_account_id": text("bill_payer_account_id"),
            "billing_account_name": text("bill_payer_account_name"),
            "sub_account_id": text("line_item_usage_account_id"),
            "sub_account_name": text("line_item_usage_account_name"),
            "region_id": text("product_region_code") or text("product_region"),
            "region_name": text("product_location"),
            "availability_zone": text("line_item_availability_zone"),
            "resource_id": text("line_item_resource_id"),
            "resource_name": "",
            "resource_type": text("product_product_family"),
            "service_name": text("product_product_name")
            or text("product_servicecode")
            or text("line_item_product_code"),
            "service_category": "",
            "sku_id": text("product_sku"),
            "sku_price_id": text("pricing_rate_code"),
            "pricing_category": pricing_category,
            "pricing_quantity": usage_amount,
            "pricing_unit": text("pricing_unit"),
            "consumed_quantity": usage_amount if line_item_type in mapping.AWS_USAGE_TYPES else None,
            "consumed_unit": text("pricing_unit") if line_item_type in mapping.AWS_USAGE_TYPES else "",
            "commitment_discount_id": text("savings_plan_savings_plan_a_r_n")
            or text("reservation_reservation_a_r_n"),
            "tags": tags,
            "normalized_tags": tags_normalize(tags),
        }


class AwsCurLegacyParser(AwsCurParser):
    name: ClassVar[str] = "aws-cur-legacy"
    label: ClassVar[str] = "AWS legacy CUR"

    def header_repair(self, header: list[str]) -> list[str]:
        repaired: list[str] = []
        for name in header:
            match = _FUSED.match(name.strip()) if name.count("/") == 2 else None
            repaired.extend(match.groups() if match else (name,))
        return repaired

    @classmethod
    def sniff(cls, head: str) -> bool:
        header = set(header_of(head))
        return "lineItem/UnblendedCost" in header and "bill/BillingPeriodStartDate" in header
