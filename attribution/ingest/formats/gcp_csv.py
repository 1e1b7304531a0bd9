"""Google Cloud billing export rows (standard or detailed) flattened to CSV: one column per leaf
field named by its path (`service.description`, `project.id`, `invoice.month`, `resource.name`),
with the repeated / nested fields (`credits`, `labels`, `system_labels`, `project.labels`) in one
cell each, as JSON (`TO_JSON_STRING` in a query) or as a Python literal (what pandas-based tools
such as koku write: single quotes, `None`).

BigQuery cannot export nested and repeated fields to CSV itself, so such files come from a query
or a tool; this parser accepts both spellings of the nested cells. Each row is rebuilt into the
record BigQuery returns and handed to the NDJSON parser's row rules (formats/gcp_bigquery.py,
which calls mapping.py): BilledCost = cost + sum(credits.amount), one set of GCP rules.

Detection: a CSV header with `billing_account_id`, `cost`, `usage_start_time` and `invoice.month`.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any, ClassVar

from attribution.choices import Provider
from attribution.ingest.errors import RowError
from attribution.ingest.formats.base import CsvParser, ParseContext, cell, header_of
from attribution.ingest.formats.gcp_bigquery import GcpBigQueryParser

_NESTED = frozenset({"credits", "labels", "system_labels", "project.labels", "tags"})
_SIGNATURE = frozenset({"billing_account_id", "cost", "usage_start_time", "invoice.month"})
_MONTH = re.compile(r"^\d{6}$")
# A nested cell larger than this is not a billing export cell (labels are at most 64 x 63 chars).
NESTED_CELL_LIMIT = 1 << 20


def nested_cell_parse(column: str, text: str) -> Any:
    """A repeated/nested field written as JSON or as a Python literal; empty -> []."""
    stripped = text.strip()
    if not stripped or stripped.lower() in ("null", "none"):
        return []
    if len(stripped) > NESTED_CELL_LIMIT:
        raise RowError(f"{column}: {len(stripped):,} characters is too long for a billing export field")
    try:
        return json.loads(stripped, parse_float=Decimal)
    except json.JSONDecodeError:
        pass
    try:
        # literal_eval only builds literals (no names, calls or attributes): safe on untrusted text.
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise RowError(f"{column}: {stripped[:80]!r} is neither JSON nor a Python literal") from None


def _period_from_month(month: str) -> dt.date:
    text = month.strip()
    if not _MONTH.match(text):
        raise RowError(f"invoice.month: {month!r} is not YYYYMM")
    try:
        return dt.date(int(text[:4]), int(text[4:]), 1)
    except ValueError:
        raise RowError(f"invoice.month: {month!r} is not a month") from None


class GcpCsvParser(CsvParser):
    billed_cost_column: ClassVar[str] = "cost"
    name: ClassVar[str] = "gcp-csv"
    provider: ClassVar[str] = Provider.GCP
    label: ClassVar[str] = "Google Cloud billing export (CSV)"
    required = ("billing_account_id", "cost", "currency", "usage_start_time", "invoice.month")

    @classmethod
    def sniff(cls, head: str) -> bool:
        return _SIGNATURE <= {name.strip() for name in header_of(head.lstrip("\ufeff"))}

    def __init__(self) -> None:
        self.records = GcpBigQueryParser()

    def columns_map(self, header: list[str]) -> dict[str, int]:
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            columns.setdefault(name.strip().lstrip("\ufeff"), index)
        return columns

    def period_of(self, row: list[str], columns: dict[str, int]) -> dt.date:
        return _period_from_month(cell(row, columns, "invoice.month"))

    def row_parse(
        self, row: list[str], columns: dict[str, int], header: list[str], context: ParseContext
    ) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for name, index in columns.items():
            value = row[index]
            if name in _NESTED:
                record[name] = nested_cell_parse(name, value)
            else:
                record[name] = value if value.strip() != "" else None
        if record.get("cost") is not None and record["cost"].strip().lower() == "nan":
            raise RowError(f"cost: {record['cost']!r} is not a finite number")
        return self.records._row(record, self.period_of(row, columns), context)
