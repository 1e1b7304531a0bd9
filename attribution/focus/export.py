"""focus_line_items (FOCUS 1.2) or focus_line_items_1_3 as typed Parquet, streamed.

The rows leave Postgres with COPY as CSV and are converted by pyarrow with the types the view
declares (numeric -> decimal128(38, 10), timestamptz -> timestamp[us, UTC], jsonb -> JSON text), so
ids that look like numbers stay strings and amounts keep every digit: the FinOps Foundation's
validator (and any BI tool) then sees real types, as it would from a provider's own export.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.db import connection

FOCUS_VIEWS = {"1.2": "focus_line_items", "1.3": "focus_line_items_1_3"}

_ARROW_TYPES = {
    "numeric": pa.decimal128(38, 10),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}


def focus_view_schema(*, view: str) -> pa.Schema:
    """The Arrow schema of a FOCUS view, from the types Postgres declares for its columns."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT column_name, data_type FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position""",
            [view],
        )
        columns = cursor.fetchall()
    if not columns:
        raise ValueError(f"no view named {view}; run `manage.py migrate`")
    return pa.schema([(name, _ARROW_TYPES.get(kind, pa.string())) for name, kind in columns])


def focus_export_parquet(*, path: Path, version: str = "1.2", account_slugs: list[str] | None = None) -> int:
    """Write the view's rows (of the given accounts, or all) to one Parquet file; returns the count.

    Streamed in blocks, so memory does not grow with the table.
    """
    if version not in FOCUS_VIEWS:
        raise ValueError(f"FOCUS version {version!r} is not offered; choose one of {', '.join(FOCUS_VIEWS)}")
    view = FOCUS_VIEWS[version]
    schema = focus_view_schema(view=view)
    names = [field.name for field in schema]
    select = ", ".join(
        f"to_char(\"{f.name}\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        if pa.types.is_timestamp(f.type)
        else f'"{f.name}"'
        for f in schema
    )
    where, params = "", []
    if account_slugs:
        where, params = ' WHERE "x_Account" = ANY(%s)', [account_slugs]
    # Timestamps go out as UTC wall time and are read back as UTC: no zone database on either side.
    convert = pacsv.ConvertOptions(
        column_types={
            f.name: (pa.timestamp("us") if pa.types.is_timestamp(f.type) else f.type) for f in schema
        },
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    read = pacsv.ReadOptions(column_names=names, block_size=1 << 24)
    statement = (
        f'COPY (SELECT {select} FROM {view}{where} ORDER BY "x_Account", "x_IngestRunId", "x_SourceLine") '  # noqa: S608
        "TO STDOUT (FORMAT csv, FORCE_QUOTE *)"
    )
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    # Spooled to an anonymous file first: a CSV row may span COPY chunks, the streaming reader
    # then cuts blocks at row boundaries itself.
    with tempfile.TemporaryFile() as spool:
        with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
            for chunk in copy:
                spool.write(chunk)
        spool.seek(0)
        with pq.ParquetWriter(path, schema) as writer:
            if spool.read(1):
                spool.seek(0)
                reader = pacsv.open_csv(spool, read_options=read, convert_options=convert)
                for batch in reader:
                    table = pa.Table.from_batches([batch]).cast(schema)
                    writer.write_table(table)
                    written += table.num_rows
    return written
