"""AWS Cost and Usage Report as Parquet: the legacy CUR Parquet / Athena layout (snake_case
`line_item_unblended_cost`, tags flattened into `resource_tags_user_*` columns, a column set that
drifts from month to month) and CUR 2.0 / Data Exports Parquet (the CUR 2.0 CSV columns, with
`resource_tags`, `cost_category`, `product` and `discount` as MAP columns).

Both layouts use the column names of the CUR 2.0 CSV, so each Parquet row is handed, as text
cells, to the CSV parser's row rules (formats/aws_cur.py, which calls mapping.py): one set of AWS
rules for CSV and Parquet. A MAP column becomes the JSON object the CSV holds (`resource_tags`).

Detection: magic bytes `PAR1` and a schema with `line_item_unblended_cost` and
`bill_billing_period_start_date`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

from attribution.choices import Provider
from attribution.ingest.formats.aws_cur import AwsCurParser
from attribution.ingest.formats.base import ParseContext, Parser, Rejected
from attribution.ingest.formats.parquet import parquet_parse, parquet_scan_periods

_SIGNATURE = frozenset({"line_item_unblended_cost", "bill_billing_period_start_date"})


class AwsCurParquetParser(Parser):
    name: ClassVar[str] = "aws-cur-parquet"
    provider: ClassVar[str] = Provider.AWS
    label: ClassVar[str] = "AWS CUR Parquet"

    @classmethod
    def sniff(cls, head: str) -> bool:
        return False  # A binary format: see sniff_parquet.

    @classmethod
    def sniff_parquet(cls, names: list[str]) -> bool:
        return _SIGNATURE <= set(names)

    def __init__(self) -> None:
        # Composition, not inheritance: the row rules are shared, the CSV reading is not.
        self.rows = AwsCurParser()

    def scan_periods(self, context: ParseContext) -> Counter:
        return parquet_scan_periods(self.rows, context, ("bill_billing_period_start_date",), label=self.label)

    def parse(self, context: ParseContext) -> Iterator[dict[str, Any] | Rejected]:
        return parquet_parse(self.rows, context, label=self.label)
