"""Parquet billing exports read in bounded record batches and handed to row-based parsers.

Every Parquet format here (AWS CUR 2.0 / legacy Athena layout, FOCUS) has a CSV twin whose parser
already turns a row of text cells into a staging row. So a Parquet row is turned into the text
cells its CSV twin would hold (timestamps as ISO 8601 in UTC, doubles in their shortest
round-trip form, MAP/STRUCT/LIST columns as JSON), and the CSV parser's hooks (`columns_map`,
`period_of`, `row_parse`, `rejected_amounts`) do the rest: one set of rules per provider.

Memory: `ParquetFile.iter_batches(batch_size=BATCH_ROWS)` holds one batch of decoded columns at a
time. "Line" numbers in errors and RejectedRow are 1-based data row numbers for Parquet files.

A local file that changes while it is read fails the run: its size and mtime are checked after
every batch, and the loader compares the sha256 of the file (computed once the rows are read) with
the checksum taken when the run was planned. A remote file is read through
`Source.open_seekable()` (S3: ranged GETs, each pinned to the planned ETag; else an anonymous
temporary copy, see sources.py), so what is read is the planned version by construction.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from attribution.ingest.errors import IngestError, MissingColumnError, RowError
from attribution.ingest.formats.base import ParseContext, Rejected
from attribution.ingest.sources import SourceLike, as_source, file_sha256, magic_bytes

PARQUET_MAGIC = b"PAR1"
BATCH_ROWS = 16_384


class RowHooks(Protocol):
    """The CsvParser hooks a Parquet reader needs (see formats/base.py)."""

    label: str
    required: tuple[str, ...]

    def columns_map(self, header: list[str]) -> dict[str, int]: ...

    def period_of(self, row: list[str], columns: dict[str, int]) -> Any: ...

    def row_parse(
        self, row: list[str], columns: dict[str, int], header: list[str], context: ParseContext
    ) -> dict[str, Any]: ...

    def rejected_amounts(self, row: list[str], columns: dict[str, int]) -> dict: ...


def is_parquet(source: SourceLike) -> bool:
    try:
        return magic_bytes(source, 4) == PARQUET_MAGIC
    except OSError:
        return False


def _open(source: SourceLike, name: str = "") -> pq.ParquetFile:
    source = as_source(source)
    handle = source.open_seekable()
    try:
        return pq.ParquetFile(handle)
    except (pa.ArrowException, OSError, ValueError) as error:
        handle.close()
        raise IngestError(f"corrupt or truncated Parquet file ({error})", path=name or source.name) from None


def parquet_columns(source: SourceLike, *, name: str = "") -> list[str]:
    """Column names from the footer; raises IngestError when the footer cannot be read."""
    file = _open(source, name)
    try:
        return list(file.schema_arrow.names)
    finally:
        file.close(force=True)  # force: also close the stream we opened


class ParquetProgress:
    """Stands in for sources.CountingReader: `bytes_read` for the progress bar and `sha256` of the
    whole file (hashed once its rows are read) for the loader's "file changed" check."""

    def __init__(self) -> None:
        self.bytes_read = 0
        self.sha256 = hashlib.sha256()


def _text_cells(array: pa.Array | pa.ChunkedArray) -> list[str]:
    """One column of a batch as the text a CSV export would hold ("" for null)."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            array = pc.cast(array, pa.timestamp(kind.unit, "UTC"))
        array = pc.cast(array, pa.string())
    elif pa.types.is_date(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind):
        # Arrow writes doubles in their shortest round-trip form, like Python's repr.
        array = pc.cast(array, pa.string())
    elif pa.types.is_boolean(kind):
        return ["" if v is None else ("true" if v else "false") for v in array.to_pylist()]
    elif pa.types.is_decimal(kind):
        return ["" if v is None else str(v) for v in array.to_pylist()]
    elif pa.types.is_map(kind):
        return [
            "" if v is None else json.dumps(dict(v), ensure_ascii=False, default=str)
            for v in array.to_pylist()
        ]
    elif pa.types.is_nested(kind):
        return [
            "" if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in array.to_pylist()
        ]
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return ["" if v is None else v.decode("utf-8", "replace") for v in array.to_pylist()]
    elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        array = pc.cast(array, pa.string())
    return ["" if v is None else v for v in array.to_pylist()]


def _raw_text(header: Sequence[str], row: Sequence[str]) -> str:
    """A rejected Parquet row as a JSON object of its non-empty cells (there is no text line)."""
    return json.dumps(
        {name: value for name, value in zip(header, row, strict=False) if value}, ensure_ascii=False
    )


class _Reader:
    def __init__(self, context: ParseContext) -> None:
        self.context = context
        self.path = context.path
        self.source = context.source
        self.local = self.source.is_local
        self.stat = os.stat(self.source.path) if self.local else None
        self.size = self.stat.st_size if self.stat else (self.source.size or 0)
        self.file = _open(self.source, self.path)
        self.header = list(self.file.schema_arrow.names)
        self.total_rows = max(self.file.metadata.num_rows, 1)
        self.progress = ParquetProgress()
        context.counter = self.progress  # type: ignore[assignment]

    def _check_unchanged(self, row_number: int) -> None:
        if not self.local:
            return  # every read asked for the planned version (see the module docstring)
        now = os.stat(self.source.path)
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            raise IngestError(
                "the file changed while it was being read; ingest it again once it is complete",
                path=self.path,
                line=row_number,
            )

    def rows(self, columns: list[str] | None = None) -> Iterator[tuple[int, list[str]]]:
        row_number = 0
        batches = self.file.iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=True)
        try:
            yield from self._batches(batches, row_number)
        finally:
            self.file.close(force=True)

    def _batches(self, batches, row_number: int) -> Iterator[tuple[int, list[str]]]:
        while True:
            try:
                batch = next(batches, None)
                if batch is None:
                    break
                cells = [_text_cells(batch.column(i)) for i in range(batch.num_columns)]
            except (pa.ArrowException, OSError, ValueError) as error:
                raise IngestError(
                    f"corrupt Parquet data ({error})", path=self.path, line=row_number + 1
                ) from None
            for row in zip(*cells, strict=True):
                row_number += 1
                yield row_number, list(row)
            self.progress.bytes_read = self.size * row_number // self.total_rows
            self._check_unchanged(row_number)
        self._check_unchanged(row_number)
        self.progress.bytes_read = self.size
        # What was read is what was planned only if the file is byte-for-byte the same.
        digest = file_sha256(self.source.path) if self.local else self.source.checksum
        self.progress.sha256 = _FixedDigest(digest)  # type: ignore[assignment]


class _FixedDigest:
    def __init__(self, digest: str) -> None:
        self._digest = digest

    def hexdigest(self) -> str:
        return self._digest


def _check_required(hooks: RowHooks, columns: dict[str, int], path: str, label: str | None) -> None:
    for column in hooks.required:
        if column not in columns:
            raise MissingColumnError(column, path=path, expected_format=label or hooks.label)


def parquet_scan_periods(
    hooks: RowHooks, context: ParseContext, period_columns: Sequence[str], *, label: str | None = None
) -> Counter:
    """Rows per billing period, reading only the columns the period comes from."""
    reader = _Reader(context)
    _check_required(hooks, hooks.columns_map(reader.header), context.path, label)
    wanted = [name for name in reader.header if name in set(period_columns)]
    index = hooks.columns_map(wanted)
    periods: Counter = Counter()
    for _number, row in reader.rows(columns=wanted):
        try:
            periods[hooks.period_of(row, index)] += 1
        except (RowError, IndexError):
            periods[None] += 1
    return periods


def parquet_parse(
    hooks: RowHooks, context: ParseContext, *, label: str | None = None
) -> Iterator[dict[str, Any] | Rejected]:
    """Staging rows or Rejected, in file order, like CsvParser.parse."""
    reader = _Reader(context)
    header = reader.header
    columns = hooks.columns_map(header)
    _check_required(hooks, columns, context.path, label)
    for number, row in reader.rows():
        try:
            period = hooks.period_of(row, columns)
        except RowError as error:
            yield Rejected(
                number, _raw_text(header, row), str(error), None, hooks.rejected_amounts(row, columns)
            )
            continue
        try:
            parsed = hooks.row_parse(row, columns, header, context)
        except RowError as error:
            yield Rejected(
                number, _raw_text(header, row), str(error), period, hooks.rejected_amounts(row, columns)
            )
            continue
        parsed["source_line"] = number
        yield parsed
