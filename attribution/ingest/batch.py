"""The vectorised (pyarrow) path for CSV exports: read a bounded block of rows at a time, validate
and map whole columns, and leave only the odd rows to the row-by-row parser.

Exactness rules, so that the batch path and the row path give the same line items:
- A cell the vectorised code is not sure about (a number with an exponent or more than 18
  decimals, a date that is not plain ISO 8601, an unknown currency...) is not guessed: the row is
  marked and re-read by the parser's row path in a second pass over the file, which either loads
  it or rejects it with the usual reason. Rows with a wrong number of fields go the same way.
- Line numbers: the header is line 1 and every row takes one physical line; the reader counts
  the newlines it decompresses and, when the file breaks that rule (blank lines, quoted values
  spanning lines), raises RowPathNeeded so the run is redone by the row path.
- Money is decimal128(28, 10) rounded half-to-even from up to 18 decimals, as `decimal_parse`.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from attribution.currency.codes import ISO_4217_CODES
from attribution.ingest.errors import IngestError
from attribution.ingest.sources import (
    CountingReader,
    Source,
    SourceLike,
    as_source,
    open_decompressed,
    open_text,
)

MONEY_TYPE = pa.decimal128(28, 10)  # + and - stay within 38 digits
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
BLOCK_SIZE = 4 << 20  # bytes of CSV text per block: bounds memory (pyarrow holds a few blocks)

# Plain decimals the vectorised cast handles exactly; anything else takes the row path.
_MONEY_RE = r"^-?\d{1,14}(\.\d{1,18})?$"
_QUANTITY_RE = r"^-?\d{1,17}(\.\d{1,18})?$"
_ZONED_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_NAIVE_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_CURRENCIES = pa.array(sorted(ISO_4217_CODES))


class RowPathNeeded(Exception):
    """The file does not fit the batch path's assumptions; redo the run with the row path."""


class _ReadaheadGate:
    """Bounds how far pyarrow reads ahead of the batches we take.

    pyarrow's streaming CSV reader pulls blocks from the input in a background generator that
    queues up to dozens of blocks: on a stream it would read a 100 MB export whole before we use
    the first batch. Every block is one `read()` of the input, so the reader thread waits here while
    it has read more than `AHEAD_BLOCKS` blocks beyond the batches taken (one more while our thread
    waits for a batch). Counting reads, not bytes: a batch ends at a line boundary, so batches
    cover a little less than a block each and a byte budget drifts further ahead with every batch
    (it did: 26 blocks, 100 MB, were held by the middle of a 1M-row file). `release()` lets
    everything through once we stop reading (error or end)."""

    AHEAD_BLOCKS = 1
    STALL_SECONDS = 0.25  # the consumer waited this long for a batch: let a further block through

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._taken = 0
        self._waiting_since: float | None = None
        self._released = False

    def admit(self, reads: int) -> None:
        with self._condition:
            while not self._released:
                allowed = self._taken + self.AHEAD_BLOCKS
                if self._waiting_since is not None:
                    # A batch normally needs one block; one that needs more (a very long line)
                    # gets them, one stall at a time: never a deadlock.
                    stalls = int((time.monotonic() - self._waiting_since) / self.STALL_SECONDS)
                    allowed += 1 + stalls
                if reads <= allowed:
                    return
                self._condition.wait(timeout=self.STALL_SECONDS / 2)

    def waiting(self, waiting: bool) -> None:
        with self._condition:
            self._waiting_since = time.monotonic() if waiting else None
            if not waiting:
                self._taken += 1
            self._condition.notify_all()

    def release(self) -> None:
        with self._condition:
            self._released = True
            self._condition.notify_all()


class _LineCountingReader(io.RawIOBase):
    """The file object pyarrow reads: whole blocks of the decompressed text (short reads of a
    network stream are joined up), with newlines counted (one row per line is checked at the end),
    a UTF-8 BOM dropped, and pyarrow's read-ahead held back by the _ReadaheadGate."""

    def __init__(self, source, gate: _ReadaheadGate | None = None) -> None:
        self._source = source
        self.newlines = 0
        self.last_byte = b""
        self._first = True
        self._gate = gate
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._gate is not None:
            self._gate.admit(self.reads)
        self.reads += 1
        data = self._source.read(size)
        if size > 0 and data and len(data) < size:
            parts = [data]
            wanted = size - len(data)
            while wanted > 0 and (more := self._source.read(wanted)):
                parts.append(more)
                wanted -= len(more)
            data = b"".join(parts)
        if self._first and data:
            self._first = False
            if data.startswith(b"\xef\xbb\xbf"):
                data = data[3:] + self._source.read(3)
        if data:
            self.newlines += data.count(b"\n")
            self.last_byte = data[-1:]
        return data

    def physical_lines(self) -> int:
        return self.newlines + (1 if self.last_byte not in (b"", b"\n") else 0)


@dataclass
class CsvBatches:
    """Iterates record batches (all columns as strings) with each row's physical line number."""

    path: str  # names the input in errors
    columns: list[str]  # header names to read
    source: Source | None = None  # what is read; a LocalSource of `path` when not given
    counter: CountingReader | None = None
    invalid_lines: list[int] = field(default_factory=list)
    rows_read: int = 0

    def _invalid_row(self, row) -> str:
        if row.number is None:
            raise RowPathNeeded("a malformed row without a line number")
        self.invalid_lines.append(row.number)
        return "skip"

    @contextmanager
    def _stream(self):
        with open_decompressed(self.source or as_source(self.path)) as (binary, counter):
            self.counter = counter
            gate = _ReadaheadGate()
            lines = _LineCountingReader(binary, gate)
            try:
                yield lines, gate
            finally:
                gate.release()  # never leave pyarrow's reader thread waiting

    def __iter__(self) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        with self._stream() as (lines, gate):
            gate.waiting(True)
            try:
                reader = pacsv.open_csv(
                    lines,
                    read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE, use_threads=False),
                    parse_options=pacsv.ParseOptions(invalid_row_handler=self._invalid_row),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=self.columns,
                        column_types={name: pa.string() for name in self.columns},
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
            except pa.ArrowInvalid as error:
                if "Empty CSV file" in str(error):
                    return
                raise RowPathNeeded(str(error)) from None
            except (EOFError, OSError) as error:
                raise IngestError(
                    f"file is truncated or corrupt ({error})", path=self.path, line=lines.newlines + 1
                ) from None
            finally:
                gate.waiting(False)
            next_line = 2
            while True:
                gate.waiting(True)
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (EOFError, OSError) as error:
                    raise IngestError(
                        f"file is truncated or corrupt ({error})", path=self.path, line=next_line
                    ) from None
                except pa.ArrowInvalid as error:
                    raise RowPathNeeded(str(error)) from None
                finally:
                    gate.waiting(False)
                count = batch.num_rows
                self.rows_read += count
                if self.invalid_lines:
                    invalid = np.asarray(self.invalid_lines, dtype=np.int64)
                    candidates = np.arange(next_line, next_line + count + len(invalid), dtype=np.int64)
                    line_numbers = np.setdiff1d(candidates, invalid, assume_unique=True)[:count]
                else:
                    line_numbers = np.arange(next_line, next_line + count, dtype=np.int64)
                if count:
                    next_line = int(line_numbers[-1]) + 1
                yield batch, line_numbers
            expected = 1 + self.rows_read + len(self.invalid_lines)
            if lines.physical_lines() != expected:
                raise RowPathNeeded(
                    f"{lines.physical_lines()} lines for {expected} rows (blank lines or multi-line values)"
                )


def csv_header(source: SourceLike, *, name: str = "") -> list[str]:
    """The header row (BOM dropped); [] for an empty file. Reads the head of the stream only."""
    with open_text(source) as (stream, _counter):
        try:
            return next(csv.reader(stream), [])
        except csv.Error as error:
            raise IngestError(
                f"cannot read the CSV header ({error})", path=name or str(source), line=1
            ) from None


# --- Vectorised cells -----------------------------------------------------------------------------


def text(batch: pa.RecordBatch, name: str | None) -> pa.Array:
    """A stripped string column, or empty strings when the file lacks it."""
    if name is None:
        return pa.repeat(pa.scalar("", pa.string()), batch.num_rows)
    return pc.utf8_trim_whitespace(batch.column(name))


def first_nonempty(*arrays: pa.Array, default: str = "") -> pa.Array:
    result = arrays[-1]
    if default:
        result = pc.if_else(pc.equal(result, ""), default, result)
    for array in reversed(arrays[:-1]):
        result = pc.if_else(pc.equal(array, ""), result, array)
    return result


def money(values: pa.Array, *, empty_is_null: bool = False) -> tuple[pa.Array, pa.Array]:
    """(decimal128(38, 10), row-path mask). Empty cells give 0, or null with `empty_is_null`.
    Anything else that is not a plain decimal (NaN, Infinity, 1e5...) takes the row path, where
    `decimal_parse` reads it or rejects the row (a NaN cost is rejected, never loaded as 0)."""
    empty = pc.equal(values, "")
    plain = pc.match_substring_regex(values, _MONEY_RE)
    numbers = _decimal(values, plain)
    empty_value = pa.scalar(None, MONEY_TYPE) if empty_is_null else pa.scalar(0, MONEY_TYPE)
    return pc.if_else(empty, empty_value, numbers), pc.invert(pc.or_(plain, empty))


def quantity(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    empty = pc.equal(values, "")
    plain = pc.match_substring_regex(values, _QUANTITY_RE)
    numbers = _decimal(values, plain)
    return pc.if_else(empty, pa.scalar(None, MONEY_TYPE), numbers), pc.invert(pc.or_(plain, empty))


def _decimal(values: pa.Array, plain: pa.Array) -> pa.Array:
    wide = pc.cast(pc.if_else(plain, values, "0"), pa.decimal128(38, 18))
    return pc.cast(pc.round(wide, ndigits=10, round_mode="half_to_even"), MONEY_TYPE)


def timestamp(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(timestamp[us, UTC], row-path mask) from ISO 8601; naive values are UTC, as datetime_parse.

    Billing rows repeat a few hundred distinct hours, so each distinct text is parsed once."""
    encoded = pc.dictionary_encode(values)
    parsed, bad = _timestamp_distinct(encoded.dictionary)
    return pc.take(parsed, encoded.indices), pc.take(bad, encoded.indices)


def _timestamp_distinct(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    zoned = pc.match_substring_regex(values, _ZONED_RE)
    naive = pc.match_substring_regex(values, _NAIVE_RE)
    date = pc.match_substring_regex(values, _DATE_RE)
    normalized = pc.case_when(
        pc.make_struct(zoned, naive, date),
        values,
        pc.binary_join_element_wise(values, "Z", ""),
        pc.binary_join_element_wise(values, "T00:00:00Z", ""),
        "1970-01-01T00:00:00Z",
    )
    ok = pc.or_(pc.or_(zoned, naive), date)
    try:
        parsed = pc.cast(normalized, TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        # An impossible date (2026-02-30) somewhere: the row path finds which and says why.
        return pa.nulls(len(values), TIMESTAMP_TYPE), pa.array(np.ones(len(values), dtype=bool))
    return parsed, pc.invert(ok)


def currency(values: pa.Array, default: str) -> tuple[pa.Array, pa.Array]:
    upper = pc.utf8_upper(pc.if_else(pc.equal(values, ""), default, values))
    return upper, pc.invert(pc.is_in(upper, value_set=_CURRENCIES))


def lookup(values: pa.Array, function) -> pa.Array:
    """`function` applied once per distinct value (dictionary encoding), then spread back."""
    encoded = pc.dictionary_encode(values)
    mapped = pa.array([function(value) for value in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(mapped, encoded.indices)


def lookup_typed(values: pa.Array, function, result_type: pa.DataType) -> pa.Array:
    encoded = pc.dictionary_encode(values)
    mapped = pa.array([function(value) for value in encoded.dictionary.to_pylist()], result_type)
    return pc.take(mapped, encoded.indices)


_WIDE_MONEY = pa.decimal256(28, 10)
_PRICE_LIMIT = pa.scalar(Decimal("1E17"), pa.decimal256(40, 10))


def unit_price_from_cost(cost: pa.Array, quantity: pa.Array) -> pa.Array:
    """attribution.focus.conditional.unit_price_from_cost over arrays (MONEY_TYPE), exactly: the
    quotient in decimal256, rounded half-even to 10 places, kept where it gives the cost back within
    1e-9 x max(|cost|, 1); null elsewhere (a missing, negative or zero operand, or no such price)."""
    zero, one = pa.scalar(0, MONEY_TYPE), pa.scalar(1, MONEY_TYPE)
    valid = pc.fill_null(pc.and_(pc.greater(quantity, zero), pc.greater_equal(cost, zero)), False)
    wide_cost = pc.cast(pc.if_else(valid, cost, zero), _WIDE_MONEY)
    wide_quantity = pc.cast(pc.if_else(valid, quantity, one), _WIDE_MONEY)
    quotient = pc.round(pc.divide(wide_cost, wide_quantity), ndigits=10, round_mode="half_to_even")
    price = pc.cast(quotient, pa.decimal256(40, 10))
    in_range = pc.less(price, _PRICE_LIMIT)
    price = pc.if_else(in_range, price, pa.scalar(0, pa.decimal256(40, 10)))
    difference = pc.abs(pc.subtract(pc.multiply(price, wide_quantity), wide_cost))
    tolerance = pc.multiply(
        pc.max_element_wise(pc.abs(wide_cost), pa.scalar(1, _WIDE_MONEY)),
        pa.scalar(Decimal("1E-9"), pa.decimal256(10, 9)),
    )
    kept = pc.and_(pc.and_(valid, in_range), pc.less_equal(difference, tolerance))
    return pc.if_else(kept, pc.cast(price, MONEY_TYPE), pa.scalar(None, MONEY_TYPE))


def price_gives_cost(price: pa.Array, quantity: pa.Array, cost: pa.Array) -> pa.Array:
    """attribution.focus.conditional.product_matches over arrays, exactly (null where any is null)."""
    wide = [pc.cast(values, _WIDE_MONEY) for values in (price, quantity, cost)]
    difference = pc.abs(pc.subtract(pc.multiply(wide[0], wide[1]), wide[2]))
    tolerance = pc.multiply(
        pc.max_element_wise(pc.abs(wide[2]), pa.scalar(1, _WIDE_MONEY)),
        pa.scalar(Decimal("1E-9"), pa.decimal256(10, 9)),
    )
    return pc.less_equal(difference, tolerance)


def unit_price_for_cost(stated: pa.Array, cost: pa.Array, quantity: pa.Array) -> pa.Array:
    """attribution.focus.conditional.unit_price_for_cost over arrays, for one stated price: the stated
    price where it gives the cost back (or there is no cost or quantity to check it against), else
    the price the cost implies (unit_price_from_cost)."""
    stated = pc.cast(stated, MONEY_TYPE)
    checkable = pc.and_(pc.is_valid(cost), pc.is_valid(quantity))
    kept = pc.or_(pc.invert(checkable), pc.fill_null(price_gives_cost(stated, quantity, cost), False))
    if pc.all(kept).as_py():
        return stated
    # The implied price only for the rows whose stated price does not hold (the quotient in
    # decimal256 is the costly part; most rows state a price that gives their cost back).
    replaced = pc.invert(kept)
    implied = unit_price_from_cost(pc.filter(cost, replaced), pc.filter(quantity, replaced))
    return pc.replace_with_mask(stated, replaced, implied)
