"""Google Cloud Billing export (standard or detailed usage cost) rows as BigQuery returns them,
dumped as newline-delimited JSON: one object per line with nested `service`, `sku`, `project`,
`location`, `invoice`, `usage`, repeated `credits` and `labels` ([{key, value}]).

Timestamps may be "2026-09-01 00:00:00 UTC", ISO 8601, or epoch seconds; numbers may be JSON
numbers or strings (the BigQuery REST API sends every scalar as a string). A dump may span several
invoice months: the pipeline splits it into one run per month.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Context, Decimal
from typing import Any, ClassVar

from attribution.choices import Provider
from attribution.currency.codes import currency_validate
from attribution.focus import conditional
from attribution.ingest import mapping
from attribution.ingest.errors import IngestError, MissingColumnError, RowError
from attribution.ingest.formats.base import ParseContext, Parser, Rejected
from attribution.ingest.sources import open_text
from attribution.ingest.tags import tag_key_normalize, tags_check, tags_normalize
from attribution.ingest.values import (
    datetime_parse,
    decimal_parse,
    next_month_start,
    quantity_parse,
    utc_midnight,
)

_WIDE = Context(prec=60)
_INVOICE_MONTH = re.compile(r'"invoice"\s*:\s*\{[^{}]*?"month"\s*:\s*"?(\d{6})"?')


def _get(record: dict[str, Any], dotted: str) -> Any:
    """`project.id` from nested records, or from a flattened key of that name."""
    if dotted in record:
        return record[dotted]
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _text(record: dict[str, Any], dotted: str) -> str:
    value = _get(record, dotted)
    return "" if value is None else str(value).strip()


def _timestamp(value: Any, column: str) -> dt.datetime:
    if isinstance(value, int | float | Decimal) or (
        isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?(E\d+)?", value)
    ):
        try:
            moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise RowError(f"{column}: {value!r} is not a timestamp in range") from None
        return datetime_parse(moment.isoformat(), column=column)  # the same year range check
    return datetime_parse(value, column=column)


def _period_from_month(month: str) -> dt.date:
    if not re.fullmatch(r"\d{6}", month or ""):
        raise RowError(f"invoice.month: {month!r} is not YYYYMM")
    try:
        return dt.date(int(month[:4]), int(month[4:]), 1)
    except ValueError:
        raise RowError(f"invoice.month: {month!r} is not a month") from None


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return {
            str(item.get("key")): "" if item.get("value") is None else str(item.get("value"))
            for item in value
            if isinstance(item, dict)
        }
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    return {}


class GcpBigQueryParser(Parser):
    name: ClassVar[str] = "gcp-bigquery"
    provider: ClassVar[str] = Provider.GCP
    label: ClassVar[str] = "Google Cloud billing export (NDJSON)"
    required: ClassVar[tuple[str, ...]] = (
        "billing_account_id",
        "cost",
        "currency",
        "usage_start_time",
        "invoice.month",
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        first = head.lstrip().split("\n", 1)[0]
        if not first.startswith("{"):
            return False
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            return False
        return isinstance(record, dict) and "billing_account_id" in record and "cost" in record

    def _lines(self, context: ParseContext) -> Iterator[tuple[int, str]]:
        with open_text(context.source) as (text, counter):
            context.counter = counter
            line_number = 0
            try:
                for line in text:
                    line_number += 1
                    if line.strip():
                        yield line_number, line.rstrip("\r\n")
            except (EOFError, OSError) as error:
                raise IngestError(
                    f"file is truncated or corrupt ({error})", path=context.path, line=line_number + 1
                ) from None

    def scan_periods(self, context: ParseContext) -> Counter:
        periods: Counter = Counter()
        for _number, line in self._lines(context):
            match = _INVOICE_MONTH.search(line)
            try:
                if match:
                    periods[_period_from_month(match.group(1))] += 1
                else:
                    periods[_period_from_month(_text(json.loads(line), "invoice.month"))] += 1
            except (RowError, json.JSONDecodeError, AttributeError, TypeError):
                # TypeError: a line that is JSON but not an object (`0`, `[]`); parse rejects it.
                periods[None] += 1
        return periods

    def parse(self, context: ParseContext) -> Iterator[dict[str, Any] | Rejected]:
        checked_columns = False
        for number, line in self._lines(context):
            try:
                record = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as error:
                yield Rejected(number, line, f"not a JSON object ({error.msg})", None)
                continue
            if not isinstance(record, dict):
                yield Rejected(number, line, "not a JSON object", None)
                continue
            if not checked_columns:
                # The first record stands for the export's schema: a missing column is a file error.
                for column in self.required:
                    if _get(record, column) is None and column not in record:
                        raise MissingColumnError(column, path=context.path, expected_format=self.label)
                checked_columns = True
            try:
                period = _period_from_month(_text(record, "invoice.month"))
            except RowError as error:
                yield Rejected(number, line, str(error), None)
                continue
            try:
                parsed = self._row(record, period, context)
            except RowError as error:
                amounts: dict[str, Decimal] = {}
                try:
                    amounts["billed_cost"] = decimal_parse(record.get("cost"), column="cost")  # type: ignore[assignment]
                except RowError:
                    pass
                yield Rejected(number, line, str(error), period, amounts)
                continue
            parsed["source_line"] = number
            yield parsed

    def _row(self, record: dict[str, Any], period: dt.date, context: ParseContext) -> dict[str, Any]:
        cost = decimal_parse(record.get("cost"), column="cost")
        credits = _get(record, "credits") or []
        if not isinstance(credits, list):
            raise RowError("credits: not a list")
        credit_amounts = [
            decimal_parse(credit.get("amount"), column="credits.amount")
            for credit in credits
            if isinstance(credit, dict)
        ]
        commitment = mapping.gcp_commitment_credit(
            [credit for credit in credits if isinstance(credit, dict)], amounts=credit_amounts
        )
        billed = mapping.gcp_billed_cost(cost=cost, credit_amounts=credit_amounts)  # type: ignore[arg-type]
        cost_at_list = decimal_parse(_get(record, "cost_at_list"), column="cost_at_list", default=None)
        currency = currency_validate(_text(record, "currency") or context.default_currency)
        charge_start = _timestamp(_get(record, "usage_start_time"), "usage_start_time")
        end_value = _get(record, "usage_end_time")
        charge_end = _timestamp(end_value, "usage_end_time") if end_value not in (None, "") else charge_start
        if charge_end < charge_start:
            raise RowError("usage_end_time is before usage_start_time")

        tags: dict[str, str] = {}
        tags.update(_labels(_get(record, "system_labels")))
        tags.update(_labels(_get(record, "project.labels")))
        tags.update(_labels(_get(record, "labels")))
        tags_check(tags)
        for key in tags:
            if key not in context.tag_keys:
                context.tag_keys[key] = tag_key_normalize(key)

        usage_amount = quantity_parse(_get(record, "usage.amount"), column="usage.amount")
        pricing_amount = decimal_parse(
            _get(record, "usage.amount_in_pricing_units"),
            column="usage.amount_in_pricing_units",
            default=None,
            nan_is_empty=True,  # a quantity
        )
        cost_type = _text(record, "cost_type") or "regular"
        pricing_unit = _text(record, "usage.pricing_unit")
        sku_id = _text(record, "sku.id")
        sku_description = _text(record, "sku.description")
        subscription_id = _text(record, "subscription.instance_id")
        region = _text(record, "location.region") or _text(record, "location.location")
        fee = mapping.gcp_is_commitment_fee(
            cost_type=cost_type, sku_description=sku_description, subscription_id=subscription_id
        )
        prices = self._prices(
            record,
            cost=cost,
            cost_at_list=cost_at_list,
            # As written (the parsed amount is rounded to 10 places): its last place says how far
            # the export rounded it.
            quantity=_as_written(_get(record, "usage.amount_in_pricing_units"), pricing_amount),
        )
        return {
            "billing_period_start": period,
            "billed_cost": billed,
            "effective_cost": billed,
            "list_cost": prices["list_cost"],
            # `cost` is the usage at the account's negotiated (contract) prices, before credits:
            # FOCUS ContractedCost (the credits, CUDs included, reach EffectiveCost only).
            "contracted_cost": prices["contracted_cost"],
            "billing_currency": currency,
            "charge_period_start": charge_start,
            "charge_period_end": charge_end,
            "billing_period_start_at": utc_midnight(period),
            "billing_period_end_at": utc_midnight(next_month_start(period)),
            "charge_category": mapping.gcp_charge_category(cost_type),
            "charge_class": "Correction" if _is_correction(record) else "",
            "charge_description": sku_description,
            "charge_frequency": ("Recurring" if fee else "Usage-Based") if cost_type == "regular" else "",
            "provider_name": "Google Cloud",
            "publisher_name": "Google Cloud",
            "invoice_issuer_name": "Google Cloud",
            "billing_account_id": _text(record, "billing_account_id"),
            "billing_account_name": "",
            "sub_account_id": _text(record, "project.id"),
            "sub_account_name": _text(record, "project.name"),
            "region_id": region,
            "region_name": _text(record, "location.location"),
            "availability_zone": _text(record, "location.zone"),
            "resource_id": _text(record, "resource.global_name") or _text(record, "resource.name"),
            "resource_name": _text(record, "resource.name"),
            "resource_type": "",
            "service_name": _text(record, "service.description"),
            "service_category": "",
            "sku_id": sku_id,
            "sku_price_id": mapping.gcp_sku_price_id(
                sku_id=sku_id,
                tier_start_amount=conditional.number_or_none(
                    _get(record, "price.tier_start_amount"), column="price.tier_start_amount"
                ),
            )
            if cost_type == "regular"
            else "",
            "pricing_category": mapping.gcp_pricing_category(
                cost_type=cost_type, sku_description=sku_description, covered=commitment is not None, fee=fee
            ),
            "pricing_quantity": pricing_amount,
            "pricing_unit": pricing_unit,
            "consumed_quantity": usage_amount,
            "consumed_unit": _text(record, "usage.unit"),
            **(
                mapping.gcp_commitment_fee_columns(
                    subscription_id=subscription_id,
                    sku_id=sku_id,
                    sku_description=sku_description,
                    project_id=_text(record, "project.id"),
                    region=region,
                    pricing_unit=pricing_unit,
                    currency=currency,
                )
                if fee
                else mapping.gcp_commitment_columns(
                    commitment,
                    cost=cost,
                    pricing_quantity=pricing_amount,
                    pricing_unit=pricing_unit,
                    currency=currency,
                )
            ),
            "list_unit_price": prices["list_unit_price"],
            "contracted_unit_price": prices["contracted_unit_price"],
            "sku_meter": sku_description,
            "sku_price_details": conditional.price_details(
                {
                    "x_TierStartAmount": _text(record, "price.tier_start_amount"),
                    "x_PricingUnit": _text(record, "price.unit"),
                    "x_PricingUnitQuantity": _text(record, "price.pricing_unit_quantity"),
                }
            ),
            "tags": tags,
            "normalized_tags": tags_normalize(tags),
        }

    @staticmethod
    def _prices(
        record: dict[str, Any], *, cost: Decimal, cost_at_list: Decimal | None, quantity: Decimal | None
    ) -> dict[str, Decimal | None]:
        """ContractedUnitPrice/ContractedCost and ListUnitPrice/ListCost (mapping.gcp_unit_price).

        `cost` is the usage at the account's contract prices, before credits, and
        `price.effective_price` its price; `cost_at_list` (exports since June 2023) the usage at list
        prices and `price.list_price` (since July 2025) its price. Without cost_at_list, the list
        cost is `cost` (an account without negotiated prices pays list prices; the credits reach
        BilledCost and EffectiveCost only), and the contracted price is the list price when the
        export states no other."""
        unit_quantity = conditional.number_or_none(
            _get(record, "price.pricing_unit_quantity"),
            column="price.pricing_unit_quantity",
            non_negative=True,
        )
        effective = conditional.number_or_none(
            _get(record, "price.effective_price"), column="price.effective_price", non_negative=True
        )
        listed = conditional.number_or_none(
            _get(record, "price.list_price"), column="price.list_price", non_negative=True
        )
        at_list = cost if cost_at_list is None else cost_at_list
        contracted_price, contracted_cost = mapping.gcp_unit_price(
            cost=cost, quantity=quantity, stated=[effective], unit_quantity=unit_quantity
        )
        # When the list cost is the contract cost, the contract price is the list price too.
        list_price, list_cost = mapping.gcp_unit_price(
            cost=at_list,
            quantity=quantity,
            stated=[listed, effective] if at_list == cost else [listed],
            unit_quantity=unit_quantity,
        )
        return {
            "contracted_unit_price": contracted_price,
            "contracted_cost": contracted_cost,
            "list_unit_price": list_price,
            "list_cost": list_cost,
        }


def _as_written(value: Any, parsed: Decimal | None) -> Decimal | None:
    """A number cell with the places the export wrote (the parsed value when there is none)."""
    if parsed is None or value is None:
        return parsed
    try:
        written = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except ArithmeticError:
        return parsed
    if not written.is_finite() or written.quantize(Decimal("1e-10"), context=_WIDE) != parsed:
        return parsed
    return written


def _is_correction(record: dict[str, Any]) -> bool:
    """`adjustment_info` is present only on rows Google issued to correct or modify earlier ones."""
    return any(_text(record, f"adjustment_info.{field}") for field in ("id", "type", "mode", "description"))
