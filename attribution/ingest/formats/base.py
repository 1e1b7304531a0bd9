"""What every format parser provides, and the CSV machinery most of them share."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from attribution.ingest.errors import IngestError, MissingColumnError, RowError
from attribution.ingest.sources import CountingReader, LocalSource, Source, open_text
from attribution.ingest.values import decimal_parse

# Billing exports carry long JSON cells (tags, additional info).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(slots=True)
class Rejected:
    line: int
    raw_text: str
    reason: str
    billing_period_start: dt.date | None
    # Amounts that could still be read from the rejected row, so the gap between source and
    # database sums is explained by the rejected rows themselves.
    amounts: dict[str, Decimal] = field(default_factory=dict)


@dataclass(slots=True)
class ParseContext:
    """`path` names the input in errors (a path or a uri); `source` is what is read (a LocalSource
    of `path` when not given)."""

    path: str
    dataset: str = ""
    default_currency: str = "USD"
    counter: CountingReader | None = None
    # original tag key -> normalised key, for the TagKey table (bounded by distinct keys).
    tag_keys: dict[str, str] = field(default_factory=dict)
    source: Source | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = LocalSource(self.path)


@dataclass(slots=True)
class Batch:
    """A block of parsed rows as columns (the batch path): `table` has the staging row columns
    (see loader.ROW_COLUMNS) with `billing_period_start` as date32, money as decimal128, times as
    timestamp[us, UTC], `tags` / `normalized_tags` as JSON text. `reparse_lines` are the lines of
    the block the vectorised code left to the row path (see `Parser.parse_lines`)."""

    table: Any  # pyarrow.Table, or None for a block of malformed rows only
    reparse_lines: Any  # numpy int64 array


class Parser:
    """One native format. Subclasses set `name`, `provider`, and implement the three methods.

    A parser may also offer the batch path: set `batch_capable`, implement `parse_batches` (and
    `head_periods` to plan from the first rows instead of a full scan). The loader then uses it
    and falls back to `parse` when `parse_batches` raises `batch.RowPathNeeded`.
    """

    name: ClassVar[str]
    provider: ClassVar[str]
    label: ClassVar[str]
    batch_capable: ClassVar[bool] = False

    def parse_batches(self, context: ParseContext) -> Iterator[Batch]:
        raise NotImplementedError

    def parse_lines(self, context: ParseContext, lines: set[int]) -> Iterator[dict[str, Any] | Rejected]:
        """What `parse` yields, for the given source lines only (rows the batch path left)."""
        for item in self.parse(context):
            line = item.line if isinstance(item, Rejected) else item["source_line"]
            if line in lines:
                yield item

    def head_periods(self, context: ParseContext) -> Counter | None:
        """Billing periods of the file's first rows, or None when the whole file must be scanned."""
        return None

    @classmethod
    def sniff(cls, head: str) -> bool:
        """True when the first characters of a (decompressed) file are in this format."""
        raise NotImplementedError

    def scan_periods(self, context: ParseContext) -> Counter:
        """Rows per billing period start (None for rows whose period cannot be read)."""
        raise NotImplementedError

    def parse(self, context: ParseContext) -> Iterator[dict[str, Any] | Rejected]:
        """Staging rows (dicts keyed by staging column) or Rejected, in file order."""
        raise NotImplementedError


def header_of(head: str) -> list[str]:
    first_line = head.splitlines()[0] if head else ""
    try:
        return next(csv.reader([first_line]))
    except (StopIteration, csv.Error):
        return []


class CsvParser(Parser):
    """Streams a CSV with the csv module: one row in memory at a time."""

    required: ClassVar[tuple[str, ...]] = ()

    def header_repair(self, header: list[str]) -> list[str]:
        """A fix for a known header bug of real exports, tried when rows do not fit the header."""
        return header

    def columns_map(self, header: list[str]) -> dict[str, int]:
        """Canonical column name -> index. Subclasses translate header variants."""
        return {name.strip(): index for index, name in enumerate(header)}

    def period_of(self, row: list[str], columns: dict[str, int]) -> dt.date | None:
        raise NotImplementedError

    def row_parse(
        self, row: list[str], columns: dict[str, int], header: list[str], context: ParseContext
    ) -> dict[str, Any]:
        raise NotImplementedError

    # The column holding BilledCost, read from a rejected row when it still parses, so the gap between
    # source and database sums is explained by the rejected rows themselves.
    billed_cost_column: ClassVar[str] = ""

    def rejected_amounts(self, row: list[str], columns: dict[str, int]) -> dict[str, Decimal]:
        if not self.billed_cost_column:
            return {}
        try:
            billed = decimal_parse(
                cell(row, columns, self.billed_cost_column), column=self.billed_cost_column
            )
        except RowError:
            return {}
        return {"billed_cost": billed} if billed is not None else {}

    def _open(self, context: ParseContext):
        return open_text(context.source)

    def _rows(self, context: ParseContext) -> Iterator[tuple[int, list[str], list[str], dict[str, int]]]:
        with self._open(context) as (text, counter):
            context.counter = counter
            reader = csv.reader(text)
            try:
                header = next(reader, None)
            except csv.Error as error:
                raise IngestError(
                    f"cannot read the CSV header ({error})", path=context.path, line=1
                ) from None
            if header is None:
                return  # An empty file: no header, no rows.
            columns = self.columns_map(header)
            for column in self.required:
                if column not in columns:
                    raise MissingColumnError(column, path=context.path, expected_format=self.label)
            previous_line = reader.line_num
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as error:
                    raise IngestError(
                        f"malformed CSV ({error})", path=context.path, line=previous_line + 1
                    ) from None
                except (EOFError, OSError) as error:
                    # A truncated or corrupt gzip member surfaces here.
                    raise IngestError(
                        f"file is truncated or corrupt ({error})", path=context.path, line=previous_line + 1
                    ) from None
                line = previous_line + 1
                previous_line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # A blank line is not a row.
                if len(row) != len(header):
                    # Some exports fuse two header cells; the rows tell whether they really do.
                    repaired = self.header_repair(header)
                    if len(repaired) == len(row) and repaired != header:
                        header, columns = repaired, self.columns_map(repaired)
                yield line, row, header, columns

    def scan_periods(self, context: ParseContext) -> Counter:
        periods: Counter = Counter()
        for _line, row, _header, columns in self._rows(context):
            periods[self._period_or_none(row, columns)] += 1
        return periods

    def _period_or_none(self, row: list[str], columns: dict[str, int]) -> dt.date | None:
        # Best effort, also for rows that do not fit the header: the period column comes early
        # in every format, so such a row is still rejected by the run of its own period.
        try:
            return self.period_of(row, columns)
        except (RowError, IndexError):
            return None

    def parse(self, context: ParseContext) -> Iterator[dict[str, Any] | Rejected]:
        for line, row, header, columns in self._rows(context):
            yield self._row_item(line, row, header, columns, context)

    def parse_lines(self, context: ParseContext, lines: set[int]) -> Iterator[dict[str, Any] | Rejected]:
        for line, row, header, columns in self._rows(context):
            if line in lines:
                yield self._row_item(line, row, header, columns, context)

    def _row_item(
        self, line: int, row: list[str], header: list[str], columns: dict[str, int], context: ParseContext
    ) -> dict[str, Any] | Rejected:
        if len(row) != len(header):
            return Rejected(line, csv_line(row), f"expected {len(header)} fields, found {len(row)}", None)
        try:
            period = self.period_of(row, columns)
        except RowError as error:
            return Rejected(line, csv_line(row), str(error), None, self.rejected_amounts(row, columns))
        try:
            parsed = self.row_parse(row, columns, header, context)
        except RowError as error:
            return Rejected(line, csv_line(row), str(error), period, self.rejected_amounts(row, columns))
        parsed["source_line"] = line
        return parsed


def csv_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


def cell(row: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return row[index] if index is not None else ""
