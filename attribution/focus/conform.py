"""The FOCUS 1.2 rules every parser's output goes through on its way into the line items.

Applied by the loader (attribution/ingest/loader.py) to both paths, rows and Arrow batches, after
the run's source sums are taken: only descriptive columns change here, never an amount. Rules
that only decide how a stored value is presented (ListCost/ContractedCost when the export has
none, quantities on tax rows, defaults) live in the focus_line_items view instead, so the stored
row stays what the export said.

- ServiceName in ASCII; ServiceCategory and ServiceSubcategory from the provider's table
  (attribution/focus/tables.py), one per ServiceName; a FOCUS export's own ServiceSubcategory is
  kept when it is allowed under that category.
- RegionName from the provider's region table when the export has none.
- PricingUnit and ConsumedUnit in the FOCUS unit format.
- ChargeFrequency spelled as one of the allowed values ("Usage-based" -> "Usage-Based").
- CommitmentDiscountUnit in the FOCUS unit format too.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from attribution.focus.tables import ascii_text, region_name, service_classify_keeping, unit_normalize

# Columns added after the first parsers were written: a parser that does not fill them gets ""
# (text) or null (numbers).
FILLED_HERE = ("service_subcategory", "invoice_id", "commitment_discount_status")
# FOCUS 1.2 conditional columns (migration 0022), filled by the parsers whose exports carry them.
CONDITIONAL_TEXT_COLUMNS = (
    "pricing_currency", "sku_meter", "sku_price_details", "billing_account_type", "sub_account_type",
    "commitment_discount_name", "commitment_discount_category", "commitment_discount_type",
    "commitment_discount_unit", "capacity_reservation_id", "capacity_reservation_status",
)  # fmt: skip
CONDITIONAL_NUMERIC_COLUMNS = (
    "list_unit_price", "contracted_unit_price", "pricing_currency_list_unit_price",
    "pricing_currency_contracted_unit_price", "pricing_currency_effective_cost",
    "commitment_discount_quantity",
)  # fmt: skip
_MONEY_TYPE = pa.decimal128(28, 10)  # = attribution.ingest.batch.MONEY_TYPE

_FREQUENCIES = {"one-time": "One-Time", "onetime": "One-Time", "recurring": "Recurring",
                "usage-based": "Usage-Based", "usagebased": "Usage-Based"}  # fmt: skip


def charge_frequency_normalize(value: str) -> str:
    return _FREQUENCIES.get(value.strip().lower(), value) if value else ""


def row_conform(row: dict[str, Any], *, provider: str) -> dict[str, Any]:
    """The row path: one parsed row (a dict of staging columns), changed in place and returned."""
    name = ascii_text(row.get("service_name") or "")
    row["service_name"] = name
    row["service_category"], row["service_subcategory"] = service_classify_keeping(
        provider, name, row.get("service_category") or "", row.get("service_subcategory") or ""
    )
    if not row.get("region_name"):
        row["region_name"] = region_name(provider, row.get("region_id") or "")
    row["pricing_unit"] = unit_normalize(row.get("pricing_unit") or "")
    row["consumed_unit"] = unit_normalize(row.get("consumed_unit") or "")
    row["commitment_discount_unit"] = unit_normalize(row.get("commitment_discount_unit") or "")
    row["charge_frequency"] = charge_frequency_normalize(row.get("charge_frequency") or "")
    for column in (*FILLED_HERE, *CONDITIONAL_TEXT_COLUMNS):
        row.setdefault(column, "")
    for column in CONDITIONAL_NUMERIC_COLUMNS:
        row.setdefault(column, None)
    return row


def _per_value(values: pa.ChunkedArray | pa.Array, function) -> pa.Array:
    """`function` applied once per distinct value of a string column (billing columns repeat a few
    values millions of times)."""
    encoded = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    mapped = pa.array([function(value or "") for value in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(mapped, encoded.indices)


def table_conform(table: pa.Table, *, provider: str) -> pa.Table:
    """The batch path: the same rules over an Arrow table of staging columns."""
    count = table.num_rows
    for column in (*FILLED_HERE, *CONDITIONAL_TEXT_COLUMNS):
        if column not in table.column_names:
            table = table.append_column(column, pa.repeat(pa.scalar("", pa.string()), count))
    for column in CONDITIONAL_NUMERIC_COLUMNS:
        if column not in table.column_names:
            table = table.append_column(column, pa.nulls(count, _MONEY_TYPE))

    def replace(column: str, values: pa.Array) -> None:
        nonlocal table
        table = table.set_column(table.column_names.index(column), column, values)

    names = _per_value(table.column("service_name"), ascii_text)
    replace("service_name", names)
    given = (
        table.column("service_category").combine_chunks(),
        table.column("service_subcategory").combine_chunks(),
    )
    triples = pc.binary_join_element_wise(names, *given, "\x1f")
    classified = _per_value(
        triples, lambda triple: "\x1f".join(service_classify_keeping(provider, *triple.split("\x1f", 2)))
    )
    split = pc.split_pattern(classified, "\x1f")
    replace("service_category", pc.list_element(split, 0))
    replace("service_subcategory", pc.list_element(split, 1))
    given_region = table.column("region_name").combine_chunks()
    derived = _per_value(table.column("region_id"), lambda region: region_name(provider, region))
    replace("region_name", pc.if_else(pc.equal(given_region, ""), derived, given_region))
    for column in ("pricing_unit", "consumed_unit", "commitment_discount_unit"):
        replace(column, _per_value(table.column(column), unit_normalize))
    replace("charge_frequency", _per_value(table.column("charge_frequency"), charge_frequency_normalize))
    return table
