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
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from attribution.choices import ChargeCategory, Provider
from attribution.currency.codes import currency_validate
from attribution.focus import conditional
from attribution.ingest import batch as vec
from attribution.ingest import mapping
from attribution.ingest.errors import MissingColumnError, RowError
from attribution.ingest.formats.base import Batch, CsvParser, ParseContext, cell, header_of
from attribution.ingest.tags import tag_key_normalize, tags_check, tags_normalize
from attribution.ingest.values import (
    datetime_parse,
    decimal_parse,
    next_month_start,
    quantity_parse,
    utc_midnight,
)

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
# Two legacy columns fused by a missing comma, as in nise-generated files:
# `pricing/OfferingClasspricing/PurchaseOption` -> `pricing/OfferingClass`, `pricing/PurchaseOption`.
_FUSED = re.compile(r"^([a-z][A-Za-z]*/[^/]+?)([a-z][A-Za-z]*/[^/]+)$")


def legacy_column_name(name: str) -> str:
    """`lineItem/UnblendedCost` -> `line_item_unblended_cost` (the Athena / CUR 2.0 spelling)."""
    category, _, field_name = name.partition("/")
    return f"{_CAMEL.sub('_', category).lower()}_{_CAMEL.sub('_', field_name).lower()}"


class AwsCurParser(CsvParser):
    billed_cost_column: ClassVar[str] = "line_item_unblended_cost"
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
        tags_check(tags)
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
        commitment_arn = text("savings_plan_savings_plan_a_r_n") or text("reservation_reservation_a_r_n")
        effective = mapping.aws_effective_cost(
            line_item_type=line_item_type,
            unblended_cost=unblended,
            amount=money,
            commitment_arn=commitment_arn,
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

        charge_category = mapping.aws_charge_category(line_item_type)
        unused_commitment = mapping.aws_is_unused_commitment(
            line_item_type=line_item_type, effective_cost=effective
        )
        if unused_commitment:
            charge_category = ChargeCategory.USAGE
        # Prices: the public on-demand rate is in pricing/currency when CUR names one (else the
        # billing currency); the unblended rate, in the billing currency, is the price before
        # commitment discounts only on usage that is not commitment-discounted (mapping.py).
        pricing_currency = conditional.currency_or_empty(text("pricing_currency"))
        public_rate = conditional.number_or_none(
            text("pricing_public_on_demand_rate"), column="pricing_public_on_demand_rate", non_negative=True
        )
        foreign_pricing = bool(pricing_currency) and pricing_currency != currency
        unblended_rate = conditional.number_or_none(
            text("line_item_unblended_rate"), column="line_item_unblended_rate", non_negative=True
        )
        contracted_rate = unblended_rate if line_item_type in mapping.AWS_CONTRACTED_RATE_TYPES else None
        list_unit_price, contracted_rate, contracted_cost = mapping.aws_derived_prices(
            line_item_type=line_item_type,
            list_unit_price=None if foreign_pricing else public_rate,
            contracted_unit_price=contracted_rate,
            list_cost=list_cost,
            unblended_cost=unblended,
            unblended_rate=unblended_rate,
            usage_amount=usage_amount,
        )
        quantity_column = mapping.aws_commitment_quantity_column(
            line_item_type=line_item_type, unused=unused_commitment
        )
        commitment_unit = mapping.AWS_RESERVATION_UNIT
        if quantity_column:
            commitment_quantity = conditional.number_or_none(text(quantity_column), column=quantity_column)
        elif line_item_type in mapping.AWS_SAVINGS_PLAN_TYPES:
            commitment_unit = currency
            commitment_quantity = mapping.aws_savings_plan_quantity(
                line_item_type=line_item_type,
                unused=unused_commitment,
                effective_cost=effective,
                unblended_cost=unblended,
                commitment=conditional.number_or_none(
                    text("savings_plan_total_commitment_to_date"),
                    column="savings_plan_total_commitment_to_date",
                ),
            )
        else:
            commitment_quantity = None
        return {
            "billing_period_start": period_start_at.date(),
            "billed_cost": unblended,
            "effective_cost": effective,
            "list_cost": list_cost,
            "contracted_cost": contracted_cost,
            "billing_currency": currency,
            "charge_period_start": charge_start,
            "charge_period_end": charge_end,
            "billing_period_start_at": period_start_at,
            "billing_period_end_at": period_end_at,
            "charge_category": charge_category,
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
            "commitment_discount_id": commitment_arn,
            "commitment_discount_status": "Unused" if unused_commitment else "",
            "invoice_id": mapping.aws_invoice_id(text("bill_invoice_id")),
            "list_unit_price": list_unit_price,
            "contracted_unit_price": contracted_rate,
            "pricing_currency": pricing_currency,
            "pricing_currency_list_unit_price": public_rate if foreign_pricing else None,
            "sku_meter": text("line_item_usage_type"),
            "sku_price_details": mapping.aws_sku_price_details(text),
            "commitment_discount_quantity": commitment_quantity,
            "commitment_discount_unit": commitment_unit if commitment_quantity is not None else "",
            "capacity_reservation_id": text("capacity_reservation_capacity_reservation_arn"),
            "capacity_reservation_status": conditional.capacity_reservation_status(
                text("capacity_reservation_capacity_reservation_status")
            ),
            "tags": tags,
            "normalized_tags": tags_normalize(tags),
        }

    # --- The batch path (see attribution/ingest/batch.py); same rules as row_parse, by columns ---

    batch_capable: ClassVar[bool] = True
    _BATCH_COLUMNS: ClassVar[tuple[str, ...]] = (
        "bill_billing_period_start_date", "bill_billing_period_end_date", "line_item_line_item_type",
        "line_item_usage_start_date", "line_item_usage_end_date", "line_item_currency_code",
        "line_item_unblended_cost", "pricing_public_on_demand_cost", "line_item_usage_amount",
        "line_item_line_item_description", "line_item_legal_entity", "bill_billing_entity",
        "bill_invoicing_entity", "bill_payer_account_id", "bill_payer_account_name",
        "line_item_usage_account_id", "line_item_usage_account_name", "product_region_code",
        "product_region", "product_location", "line_item_availability_zone", "line_item_resource_id",
        "product_product_family", "product_product_name", "product_servicecode", "line_item_product_code",
        "product_sku", "pricing_rate_code", "pricing_term", "line_item_usage_type", "pricing_unit",
        "savings_plan_savings_plan_a_r_n", "reservation_reservation_a_r_n", "resource_tags",
        "bill_invoice_id", "pricing_currency", "pricing_public_on_demand_rate", "line_item_unblended_rate",
        "savings_plan_total_commitment_to_date",
        *mapping.AWS_SKU_PRICE_DETAIL_COLUMNS.values(), *mapping.AWS_COMMITMENT_QUANTITY_COLUMNS.values(),
        "capacity_reservation_capacity_reservation_arn", "capacity_reservation_capacity_reservation_status",
        *{column for terms in mapping.AWS_EFFECTIVE_COST_TERMS.values() for _sign, column in terms},
    )  # fmt: skip

    def _batch_plan(self, context: ParseContext) -> tuple[dict[str, str], list[str]] | None:
        """canonical column -> header name, and the tag columns' header names; None for an empty file."""
        header = vec.csv_header(context.source, name=context.path)
        if not header:
            return None
        if len(set(header)) != len(header) or self.header_repair(header) != header:
            raise vec.RowPathNeeded("duplicate or fused header cells")
        columns = self.columns_map(header)
        for column in self.required:
            if column not in columns:
                raise MissingColumnError(column, path=context.path, expected_format=self.label)
        names = {canonical: header[index] for canonical, index in columns.items()}
        return {c: names[c] for c in self._BATCH_COLUMNS if c in names}, [
            header[index] for index in self.tag_columns
        ]

    def head_periods(self, context: ParseContext) -> Counter | None:
        plan = self._batch_plan(context)
        if plan is None:
            return Counter()
        names, _tags = plan
        reader = vec.CsvBatches(
            path=context.path, source=context.source, columns=[names["bill_billing_period_start_date"]]
        )
        periods: Counter = Counter()
        for batch, _lines in reader:
            if reader.invalid_lines:
                return None  # Malformed rows: which period rejects them is decided by a full scan.
            values = pc.utf8_trim_whitespace(batch.column(0))
            for value, count in zip(*_value_counts(values), strict=True):
                try:
                    periods[datetime_parse(value, column="period").date()] += count
                except RowError:
                    return None
            if periods:
                break  # The first rows only: the loader finds any other period (services.py).
        return periods

    def parse_batches(self, context: ParseContext) -> Iterator[Batch]:
        plan = self._batch_plan(context)
        if plan is None:
            return
        names, tag_names = plan
        reader = vec.CsvBatches(
            path=context.path, source=context.source, columns=[*names.values(), *tag_names]
        )
        tag_cache: dict[str, tuple[str, str] | None] = {}
        handed = 0  # malformed rows (wrong field count) already handed to the row path
        for record_batch, lines in reader:
            context.counter = reader.counter
            mapped = self._batch_map(record_batch, lines, names, tag_names, tag_cache, context)
            if len(reader.invalid_lines) > handed:
                malformed = np.asarray(reader.invalid_lines[handed:], dtype=np.int64)
                mapped.reparse_lines = np.concatenate([mapped.reparse_lines, malformed])
                handed = len(reader.invalid_lines)
            yield mapped
        if len(reader.invalid_lines) > handed:
            yield Batch(table=None, reparse_lines=np.asarray(reader.invalid_lines[handed:], dtype=np.int64))

    def _batch_tags(self, raw: str, tag_names: list[str], context: ParseContext) -> tuple[str, str] | None:
        """(tags JSON, normalised tags JSON) of one distinct tag cell combination; None if unreadable."""
        raw_map, *values = raw.split("\x1f") if tag_names else (raw,)
        row = [raw_map, *values]
        columns = {"resource_tags": 0}
        saved = self.tag_columns
        self.tag_columns = {index + 1: self._tag_key(name) for index, name in enumerate(tag_names)}
        try:
            tags = self._tags(row, columns, context)
        except RowError:
            return None
        finally:
            self.tag_columns = saved
        return json.dumps(tags, ensure_ascii=False), json.dumps(tags_normalize(tags), ensure_ascii=False)

    @staticmethod
    def _tag_key(header_name: str) -> str:
        name = header_name.strip()
        return name.partition("/")[2] if name.startswith("resourceTags/") else name

    def _batch_map(
        self,
        batch: pa.RecordBatch,
        lines: np.ndarray,
        names: dict[str, str],
        tag_names: list[str],
        tag_cache: dict[str, tuple[str, str] | None],
        context: ParseContext,
    ) -> Batch:
        count = batch.num_rows

        def text(column: str) -> pa.Array:
            return vec.text(batch, names.get(column))

        unreadable: list[pa.Array] = []
        line_item_type = text("line_item_line_item_type")
        unreadable.append(pc.equal(line_item_type, ""))
        period_start_at, bad = vec.timestamp(text("bill_billing_period_start_date"))
        unreadable.append(bad)
        period_start = pc.cast(period_start_at, pa.date32())
        next_month = vec.lookup_typed(
            period_start, lambda day: utc_midnight(next_month_start(day)) if day else None, vec.TIMESTAMP_TYPE
        )

        def timestamp_or(column: str, default: pa.Array) -> pa.Array:
            values = text(column)
            parsed, bad = vec.timestamp(values)
            empty = pc.equal(values, "")
            unreadable.append(pc.and_(bad, pc.invert(empty)))
            return pc.if_else(empty, default, parsed)

        period_end_at = timestamp_or("bill_billing_period_end_date", next_month)
        charge_start = timestamp_or("line_item_usage_start_date", period_start_at)
        charge_end = timestamp_or("line_item_usage_end_date", period_end_at)
        unreadable.append(pc.fill_null(pc.less(charge_end, charge_start), False))

        currency, bad = vec.currency(text("line_item_currency_code"), context.default_currency)
        unreadable.append(bad)
        unblended, bad = vec.money(text("line_item_unblended_cost"))
        unreadable.append(bad)
        first = vec.first_nonempty
        commitment_arn = first(text("savings_plan_savings_plan_a_r_n"), text("reservation_reservation_a_r_n"))
        effective, bad = mapping.aws_effective_cost_batch(
            line_item_type=line_item_type,
            unblended_cost=unblended,
            amount=lambda c: vec.money(text(c)),
            commitment_arn=commitment_arn,
        )
        unreadable.append(bad)
        list_cost, bad = vec.money(text("pricing_public_on_demand_cost"), empty_is_null=True)
        unreadable.append(bad)
        usage_amount, bad = vec.quantity(text("line_item_usage_amount"))
        unreadable.append(bad)

        tag_key = batch.column(names["resource_tags"]) if "resource_tags" in names else None
        if tag_names:
            parts = [tag_key if tag_key is not None else pa.repeat("", count)]
            parts += [batch.column(name) for name in tag_names]
            tag_key = pc.binary_join_element_wise(*parts, "\x1f")
        if tag_key is None:
            tags = normalized = pa.repeat(pa.scalar("{}"), count)
        else:
            encoded = pc.dictionary_encode(tag_key)
            decoded = []
            for raw in encoded.dictionary.to_pylist():
                if raw not in tag_cache:
                    tag_cache[raw] = self._batch_tags(raw, tag_names, context)
                decoded.append(tag_cache[raw])
            if len(tag_cache) > 100_000:
                tag_cache.clear()  # Bounded memory for files whose tags are unique per row.
            ok = pa.array([value is not None for value in decoded])
            unreadable.append(pc.invert(pc.take(ok, encoded.indices)))
            tags = pc.take(pa.array([v[0] if v else "{}" for v in decoded], pa.string()), encoded.indices)
            normalized = pc.take(
                pa.array([v[1] if v else "{}" for v in decoded], pa.string()), encoded.indices
            )

        term = pc.utf8_lower(text("pricing_term"))
        usage_types = pa.array(sorted(mapping.AWS_USAGE_TYPES))
        is_usage = pc.is_in(line_item_type, value_set=usage_types)
        committed = pc.or_(
            pc.is_in(line_item_type, value_set=pa.array(["DiscountedUsage", "SavingsPlanCoveredUsage"])),
            pc.equal(term, "reserved"),
        )
        standard = pc.or_(pc.equal(term, "ondemand"), pc.equal(line_item_type, "Usage"))
        spot = pc.match_substring(pc.utf8_lower(text("line_item_usage_type")), "spot")
        pricing_category = pc.case_when(
            pc.make_struct(spot, committed, standard), "Dynamic", "Committed", "Standard", ""
        )
        pricing_unit = text("pricing_unit")
        unused_commitment = pc.and_(
            pc.is_in(line_item_type, value_set=pa.array(sorted(mapping.AWS_RECURRING_COMMITMENT_FEES))),
            pc.fill_null(pc.not_equal(effective, pa.scalar(0, effective.type)), False),
        )
        charge_category = pc.if_else(
            unused_commitment,
            ChargeCategory.USAGE.value,
            vec.lookup(line_item_type, mapping.aws_charge_category),
        )

        # The FOCUS 1.2 conditional columns, as row_parse reads them.
        null_number = pa.scalar(None, vec.MONEY_TYPE)

        def price(column: str) -> pa.Array:
            values, bad = vec.money(text(column), empty_is_null=True)
            unreadable.append(bad)  # the row path reads it, or leaves the price null
            return pc.if_else(
                pc.fill_null(pc.less(values, pa.scalar(0, values.type)), False), null_number, values
            )

        pricing_currency = vec.lookup(text("pricing_currency"), conditional.currency_or_empty)
        foreign_pricing = pc.and_(
            pc.not_equal(pricing_currency, ""), pc.not_equal(pricing_currency, currency)
        )
        public_rate = price("pricing_public_on_demand_rate")
        unblended_rate = price("line_item_unblended_rate")
        contracted_rate = pc.if_else(
            pc.is_in(line_item_type, value_set=pa.array(sorted(mapping.AWS_CONTRACTED_RATE_TYPES))),
            unblended_rate,
            null_number,
        )
        list_unit_price = pc.if_else(foreign_pricing, null_number, public_rate)
        list_unit_price, contracted_rate, contracted_cost = _derived_prices(
            line_item_type=line_item_type,
            list_unit_price=list_unit_price,
            contracted_unit_price=contracted_rate,
            list_cost=list_cost,
            unblended_cost=unblended,
            unblended_rate=unblended_rate,
            usage_amount=usage_amount,
        )
        quantities = {}
        for kind, column in mapping.AWS_COMMITMENT_QUANTITY_COLUMNS.items():
            quantities[kind], bad = vec.quantity(text(column))
            unreadable.append(bad)
        commitment_to_date, bad = vec.money(text("savings_plan_total_commitment_to_date"), empty_is_null=True)
        is_ri_fee = pc.equal(line_item_type, "RIFee")
        is_sp_fee = pc.equal(line_item_type, "SavingsPlanRecurringFee")
        unreadable.append(pc.and_(is_sp_fee, bad))
        zero = pa.scalar(0, vec.MONEY_TYPE)
        commitment_quantity = pc.case_when(
            pc.make_struct(
                pc.equal(line_item_type, "DiscountedUsage"),
                pc.and_(is_ri_fee, unused_commitment),
                is_ri_fee,
                # Savings plans (mapping.aws_savings_plan_quantity), in the billing currency.
                pc.or_(
                    pc.equal(line_item_type, "SavingsPlanCoveredUsage"), pc.and_(is_sp_fee, unused_commitment)
                ),
                is_sp_fee,
                pc.equal(line_item_type, "SavingsPlanNegation"),
                pc.equal(line_item_type, "SavingsPlanUpfrontFee"),
            ),
            quantities["DiscountedUsage"],
            quantities["RIFee unused"],
            quantities["RIFee"],
            pc.cast(effective, vec.MONEY_TYPE),
            commitment_to_date,
            pa.repeat(zero, count),
            unblended,
        )
        savings_plan = pc.is_in(line_item_type, value_set=pa.array(sorted(mapping.AWS_SAVINGS_PLAN_TYPES)))
        commitment_unit = pc.if_else(
            pc.is_null(commitment_quantity),
            "",
            pc.if_else(savings_plan, currency, mapping.AWS_RESERVATION_UNIT),
        )
        detail_columns = list(mapping.AWS_SKU_PRICE_DETAIL_COLUMNS.values())
        details = vec.lookup(
            pc.binary_join_element_wise(*(text(column) for column in detail_columns), "\x1f"),
            lambda joined: mapping.aws_sku_price_details(
                dict(zip(detail_columns, joined.split("\x1f"), strict=True)).__getitem__
            ),
        )

        bad_rows = unreadable[0]
        for mask in unreadable[1:]:
            bad_rows = pc.or_(bad_rows, mask)
        bad_rows = pc.fill_null(bad_rows, True)
        table = pa.table(
            {
                "source_line": pa.array(lines, pa.int64()),
                "billing_period_start": period_start,
                "billed_cost": unblended,
                "effective_cost": effective,
                "list_cost": list_cost,
                "contracted_cost": contracted_cost,
                "billing_currency": currency,
                "charge_period_start": charge_start,
                "charge_period_end": charge_end,
                "billing_period_start_at": period_start_at,
                "billing_period_end_at": period_end_at,
                "charge_category": charge_category,
                "charge_class": pa.repeat(pa.scalar(""), count),
                "charge_description": text("line_item_line_item_description"),
                "charge_frequency": vec.lookup(line_item_type, mapping.aws_charge_frequency),
                "provider_name": pa.repeat(pa.scalar("AWS"), count),
                "publisher_name": first(text("line_item_legal_entity"), text("bill_billing_entity")),
                "invoice_issuer_name": first(
                    text("bill_invoicing_entity"), text("bill_billing_entity"), default="AWS"
                ),
                "billing_account_id": text("bill_payer_account_id"),
                "billing_account_name": text("bill_payer_account_name"),
                "sub_account_id": text("line_item_usage_account_id"),
                "sub_account_name": text("line_item_usage_account_name"),
                "region_id": first(text("product_region_code"), text("product_region")),
                "region_name": text("product_location"),
                "availability_zone": text("line_item_availability_zone"),
                "resource_id": text("line_item_resource_id"),
                "resource_name": pa.repeat(pa.scalar(""), count),
                "resource_type": text("product_product_family"),
                "service_name": first(
                    text("product_product_name"), text("product_servicecode"), text("line_item_product_code")
                ),
                "service_category": pa.repeat(pa.scalar(""), count),
                "sku_id": text("product_sku"),
                "sku_price_id": text("pricing_rate_code"),
                "pricing_category": pricing_category,
                "pricing_quantity": usage_amount,
                "pricing_unit": pricing_unit,
                "consumed_quantity": pc.if_else(is_usage, usage_amount, pa.scalar(None, vec.MONEY_TYPE)),
                "consumed_unit": pc.if_else(is_usage, pricing_unit, ""),
                "commitment_discount_id": commitment_arn,
                "commitment_discount_status": pc.if_else(unused_commitment, "Unused", ""),
                "invoice_id": vec.lookup(text("bill_invoice_id"), mapping.aws_invoice_id),
                "list_unit_price": list_unit_price,
                "contracted_unit_price": contracted_rate,
                "pricing_currency": pricing_currency,
                "pricing_currency_list_unit_price": pc.if_else(foreign_pricing, public_rate, null_number),
                "sku_meter": text("line_item_usage_type"),
                "sku_price_details": details,
                "commitment_discount_quantity": commitment_quantity,
                "commitment_discount_unit": commitment_unit,
                "capacity_reservation_id": text("capacity_reservation_capacity_reservation_arn"),
                "capacity_reservation_status": vec.lookup(
                    text("capacity_reservation_capacity_reservation_status"),
                    conditional.capacity_reservation_status,
                ),
                "tags": tags,
                "normalized_tags": normalized,
            }
        )
        if pc.any(bad_rows).as_py():
            reparse = lines[np.asarray(bad_rows.to_numpy(zero_copy_only=False), dtype=bool)]
            table = table.filter(pc.invert(bad_rows))
        else:
            reparse = np.empty(0, dtype=np.int64)  # not lines[:0]: a view would keep `lines` alive
        return Batch(table=table, reparse_lines=reparse)


def _derived_prices(
    *,
    line_item_type: pa.Array,
    list_unit_price: pa.Array,
    contracted_unit_price: pa.Array,
    list_cost: pa.Array,
    unblended_cost: pa.Array,
    unblended_rate: pa.Array,
    usage_amount: pa.Array,
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """mapping.aws_derived_prices over a batch: (ListUnitPrice, ContractedUnitPrice, ContractedCost).
    Rates are checked against their costs in Arrow (vec.unit_price_for_cost, the same exact rule);
    commitment fees, reservation-covered usage and savings plan negations go through the rule itself."""
    count = len(line_item_type)
    list_unit_price = pc.if_else(
        pc.is_valid(list_cost),
        vec.unit_price_for_cost(list_unit_price, list_cost, usage_amount),
        pc.cast(list_unit_price, vec.MONEY_TYPE),
    )
    rated = pc.is_in(line_item_type, value_set=pa.array(sorted(mapping.AWS_CONTRACTED_RATE_TYPES)))
    contracted_unit_price = pc.if_else(
        rated,
        vec.unit_price_for_cost(contracted_unit_price, unblended_cost, usage_amount),
        pc.cast(contracted_unit_price, vec.MONEY_TYPE),
    )
    derived_types = pa.array(sorted(mapping.AWS_DERIVED_PRICE_TYPES))
    needed = pc.is_in(line_item_type, value_set=derived_types)
    contracted_cost = pa.nulls(count, vec.MONEY_TYPE)
    if not pc.any(needed).as_py():
        return list_unit_price, contracted_unit_price, contracted_cost
    rows = pc.indices_nonzero(needed)
    columns = [
        pc.take(column, rows).to_pylist()
        for column in (
            line_item_type, list_unit_price, contracted_unit_price, list_cost, unblended_cost, unblended_rate,
            usage_amount,
        )
    ]  # fmt: skip
    results = [
        mapping.aws_derived_prices(
            line_item_type=kind, list_unit_price=list_price, contracted_unit_price=contracted_price,
            list_cost=cost, unblended_cost=unblended, unblended_rate=rate, usage_amount=amount,
        )
        for kind, list_price, contracted_price, cost, unblended, rate, amount in zip(*columns, strict=True)
    ]  # fmt: skip

    def replaced(values: pa.Array, position: int) -> pa.Array:
        replacements = pa.array([result[position] for result in results], vec.MONEY_TYPE)
        return pc.replace_with_mask(pc.cast(values, vec.MONEY_TYPE), needed, replacements)

    return replaced(list_unit_price, 0), replaced(contracted_unit_price, 1), replaced(contracted_cost, 2)


def _value_counts(values: pa.Array) -> tuple[list[str], list[int]]:
    counts = pc.value_counts(values)
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


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
