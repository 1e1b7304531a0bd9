"""The binary COPY rows of the batch path (attribution/ingest/pgcopy.py) load exactly what the CSV
text of the same arrow table loads: every type the line items use, NULLs, one-value columns,
numerics on both sides of the 64-bit fast path, rounding of longer decimals."""

from __future__ import annotations

import datetime as dt
import io
import random
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from django.db import connection

from attribution.ingest import pgcopy

pytestmark = pytest.mark.django_db

COLUMNS = """(line bigint, name text, code varchar(3), cost numeric(24, 10), quantity numeric(28, 10),
              precise numeric(28, 10), empty_numeric numeric(28, 10), charged timestamptz, period date)"""


def _decimal(rng: random.Random, integer_digits: int) -> Decimal | None:
    if rng.random() < 0.1:
        return None
    digits = rng.randint(0, 10**integer_digits - 1)
    fraction = rng.randint(0, 10**10 - 1)
    sign = "-" if rng.random() < 0.3 else ""
    return Decimal(f"{sign}{digits}.{fraction:010d}")


def _table(rows: int, seed: int, *, large: bool) -> pa.Table:
    rng = random.Random(seed)
    start = dt.datetime(1999, 12, 31, 23, tzinfo=dt.UTC)
    names = ["", "gpu-a", "é ü 東京", 'quote " comma , newline \n tab \t backslash \\', None]
    return pa.table(
        {
            "line": pa.array(
                [rng.choice([None, -(2**63), 2**63 - 1, rng.randint(-9, 10**12)]) for _ in range(rows)]
            ),
            "name": pa.array([rng.choice(names) for _ in range(rows)], pa.string()),
            "code": pa.array(["USD"] * rows),
            "cost": pa.array([_decimal(rng, 14 if large else 8) for _ in range(rows)], pa.decimal128(28, 10)),
            "quantity": pa.array(
                [_decimal(rng, 17 if large else 3) for _ in range(rows)], pa.decimal128(28, 10)
            ),
            "precise": pa.array(
                [
                    Decimal(f"{rng.choice(['-', ''])}0.{rng.randint(0, 10**18 - 1):018d}")
                    for _ in range(rows - 2)
                ]
                + [Decimal("1.00000000005"), Decimal("-2.00000000005")],
                pa.decimal128(38, 18),
            ),
            "empty_numeric": pa.nulls(rows, pa.decimal128(28, 10)),
            "charged": pa.array(
                [start + dt.timedelta(microseconds=rng.randint(0, 10**13)) for _ in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "period": pa.array([dt.date(rng.randint(1970, 2040), 1, 1) for _ in range(rows)], pa.date32()),
        }
    )


def _load(table: pa.Table, *, binary: bool) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE copied {COLUMNS}")
        statement = f"COPY copied FROM STDIN (FORMAT {'binary' if binary else 'csv'})"
        with cursor.cursor.copy(statement) as copy:
            if binary:
                copy.write(pgcopy.SIGNATURE)
                for batch in table.to_batches(max_chunksize=70):  # batches sliced at an offset
                    copy.write(pgcopy.copy_data(pa.Table.from_batches([batch])))
                copy.write(pgcopy.TRAILER)
            else:
                text = io.BytesIO()
                options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                pacsv.write_csv(table, text, options)
                copy.write(text.getvalue())
        cursor.execute(
            "SELECT *, cost::text, quantity::text, precise::text FROM copied "
            "ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
        )
        rows = cursor.fetchall()
        cursor.execute("DROP TABLE copied")
    return rows


@pytest.mark.parametrize("large", [False, True], ids=["64-bit numerics", "wide numerics"])
def test_it_loads_what_the_csv_text_loads(large):
    table = _table(500, seed=7, large=large)
    binary = _load(table, binary=True)
    assert binary == _load(table, binary=False)
    assert len(binary) == 500
    # Rounded as Postgres rounds text: half away from zero.
    assert {Decimal("1.0000000001"), Decimal("-2.0000000001")} <= {row[5] for row in binary}


def test_it_repeats_a_table_of_one_value_columns():
    table = pa.table(
        {"code": pa.array(["EUR"] * 3), "cost": pa.array([Decimal("-0.5")] * 3, pa.decimal128(28, 10))}
    )
    data = pgcopy.copy_data(table).to_pybytes()
    field = b"\x00\x02" + b"\x00\x00\x00\x03EUR" + b"\x00\x00\x00\x18"
    assert data.startswith(field) and len(data) == 3 * (len(field) + 24)


def test_it_refuses_a_decimal_too_wide_for_the_line_items():
    table = pa.table({"cost": pa.array([Decimal("1E18")], pa.decimal128(38, 10))})
    with pytest.raises(ValueError, match="18 or more integer digits"):
        pgcopy.copy_data(table)


def test_it_names_a_column_it_cannot_encode():
    with pytest.raises(TypeError, match="flag of type bool"):
        pgcopy.copy_data(pa.table({"flag": pa.array([True, False])}))
