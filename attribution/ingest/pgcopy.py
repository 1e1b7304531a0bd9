"""Postgres binary COPY data for an arrow table, built a column at a time (no Python per row).

Used by the batch path when INGEST_COPY_FORMAT is "binary" (the default sends CSV text written by
`pyarrow.csv.write_csv`). With CSV, Postgres spends most of the COPY parsing typed text: numerics,
timestamps, bigints, every value quoted. In the binary format a timestamp is eight bytes stored as
they are and a numeric arrives in its own base-10000 digits: the server's CPU for the line items'
COPY falls by about a third for about the client CPU the CSV takes. It is not the default because
the ingest was slower in wall time on a loaded machine (README "Ingest performance").

Format (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4): a signature,
then per row an int16 field count and per field an int32 length (-1: NULL) and the value in the
type's binary send format, then an int16 -1. All big-endian. Each field is built for the whole
column as an arrow binary array (length + value), and a row is the join of its fields, so a
batch's bytes are the data buffer of one arrow array.

Values are those the CSV text gave: money and quantities are decimal128 with 10 places (numeric
typmods of the line items); timestamps are instants (UTC); text is UTF-8 as it is. Postgres still
checks every value against its column (varchar length, numeric precision, encoding).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
TRAILER = b"\xff\xff"
_NULL_FIELD = pa.scalar(b"\xff\xff\xff\xff", pa.binary())

_POSTGRES_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
_POSTGRES_EPOCH_US = _POSTGRES_EPOCH_DAYS * 86_400 * 1_000_000

# numeric: 5 base-10000 digits of integer part (up to 10^20, more than the int64 that carries it)
# and 3 of fraction (10 places padded to 12). Postgres strips the zero digits itself (make_result).
_NUMERIC_SCALE = 10
_INTEGER_DIGITS = 5
_FRACTION_DIGITS = 3
_NUMERIC_DIGITS = _INTEGER_DIGITS + _FRACTION_DIGITS
_NUMERIC_HEADER = np.array([_NUMERIC_DIGITS, _INTEGER_DIGITS - 1, 0, _NUMERIC_SCALE], dtype=">u2")
_NUMERIC_NEGATIVE = 0x4000
_NUMERIC_LIMIT = pa.scalar(10**18, pa.decimal128(38, 0))  # a numeric(28, 10) holds less
_WIDE_DECIMAL = pa.decimal128(38, _NUMERIC_SCALE)


def copy_data(table: pa.Table) -> pa.Buffer:
    """The rows of `table` in COPY's binary format, without SIGNATURE and TRAILER (one COPY
    statement takes many batches: write SIGNATURE first and TRAILER last)."""
    count = table.num_rows
    if not count:
        return pa.py_buffer(b"")
    fields = [
        _fields(column.combine_chunks(), name)
        for name, column in zip(table.column_names, table.columns, strict=True)
    ]
    field_count = pa.scalar(len(fields).to_bytes(2, "big"), pa.binary())
    rows = pc.binary_join_element_wise(field_count, *fields, pa.scalar(b"", pa.binary()))
    if isinstance(rows, pa.Scalar):  # every column of one value
        return pa.py_buffer(rows.as_py() * count)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=rows.offset + count + 1, offset=0)
    first, last = int(offsets[rows.offset]), int(offsets[rows.offset + count])
    return rows.buffers()[2].slice(first, last - first)


def _fields(values: pa.Array, name: str) -> pa.Array | pa.Scalar:
    """One column's fields: int32 length and value, or the NULL marker. A column of one value
    (most of a billing export's: the account, the currency, the empty optional columns) is that
    value's field once, as a scalar the join repeats."""
    if values.null_count == len(values):
        return _NULL_FIELD
    if not values.null_count and len(values) > 1 and _one_value(values):
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            encoded = values[0].as_py().encode()
            return pa.scalar(len(encoded).to_bytes(4, "big") + encoded, pa.binary())
        return _column_fields(values.slice(0, 1), name)[0]
    return _column_fields(values, name)


def _one_value(values: pa.Array) -> bool:
    """Whether every value of a column without NULLs is the first, compared as bytes (numpy; an
    arrow min_max of strings cost more than encoding them)."""
    kind = values.type
    count, start = len(values), values.offset
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        offset_type = np.int64 if pa.types.is_large_string(kind) else np.int32
        offsets = np.frombuffer(values.buffers()[1], dtype=offset_type)[start : start + count + 1]
        length = int(offsets[1] - offsets[0])
        if not (np.diff(offsets) == length).all():
            return False
        if not length:
            return True
        data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        rows = data.reshape(count, length)
    elif (pa.types.is_primitive(kind) or pa.types.is_decimal(kind)) and kind.bit_width % 8 == 0:
        width = kind.bit_width // 8
        data = np.frombuffer(values.buffers()[1], dtype=np.uint8)[start * width : (start + count) * width]
        rows = data.reshape(count, width)
    else:
        return False
    return bool((rows == rows[0]).all())


def _column_fields(values: pa.Array, name: str) -> pa.Array:
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        fields = _text_fields(values)
    elif pa.types.is_decimal(kind):
        fields = _numeric_fields(values)
    elif pa.types.is_timestamp(kind):
        micros = pc.cast(values, pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
        fields = _fixed_fields(_filled(micros, np.int64) - _POSTGRES_EPOCH_US, ">i8")
    elif pa.types.is_date32(kind):
        days = pc.cast(values, pa.int32())
        fields = _fixed_fields(_filled(days, np.int32) - _POSTGRES_EPOCH_DAYS, ">i4")
    elif pa.types.is_int64(kind):
        fields = _fixed_fields(_filled(values, np.int64), ">i8")
    else:
        raise TypeError(f"no binary COPY encoding for column {name} of type {kind}")
    if values.null_count:
        fields = pc.if_else(pc.is_valid(values), fields, _NULL_FIELD)
    return fields


def _filled(values: pa.Array, dtype) -> np.ndarray:
    """The values as numpy integers, 0 where null (those fields are replaced by the NULL marker)."""
    return pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _fixed_fields(values: np.ndarray, big_endian: str) -> pa.Array:
    """Fields of one fixed width from numpy values: the width, then the big-endian bytes."""
    encoded = values.astype(big_endian)
    width = encoded.dtype.itemsize
    out = np.empty((len(encoded), 4 + width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
    out[:, 4:] = encoded.view(np.uint8).reshape(len(encoded), width)
    return _as_binary(out)


def _as_binary(rows: np.ndarray) -> pa.Array:
    """A (n, width) uint8 matrix as a binary array of n values."""
    count, width = rows.shape
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), count, [None, pa.py_buffer(rows)])
    return fixed.cast(pa.binary())


def _text_fields(values: pa.Array) -> pa.Array:
    values = values.cast(pa.binary())
    lengths = _filled(pc.binary_length(values), np.int32).astype(">i4")
    prefix = _as_binary(lengths.view(np.uint8).reshape(len(lengths), 4))
    return pc.binary_join_element_wise(prefix, values, pa.scalar(b"", pa.binary()))


def _numeric_fields(values: pa.Array) -> pa.Array:
    """numeric's send format (ndigits, weight, sign, dscale, base-10000 digits) for decimals."""
    kind = values.type
    if kind.scale != _NUMERIC_SCALE or kind.bit_width != 128:
        # As Postgres rounds a longer text value to the column's 10 places: half away from zero.
        if kind.scale > _NUMERIC_SCALE:
            values = pc.round(values, ndigits=_NUMERIC_SCALE, round_mode="half_towards_infinity")
        values = pc.cast(values, _WIDE_DECIMAL)
    if values.null_count:
        values = pc.fill_null(values, pa.scalar(0, values.type))
    words = np.frombuffer(values.buffers()[1], dtype="<i8")[
        2 * values.offset : 2 * (values.offset + len(values))
    ]
    low, high = words[0::2], words[1::2]
    if np.array_equal(high, low >> 63):
        # Every unscaled integer fits in 64 bits (|value| < 9.2e8): numpy alone.
        negative = low < 0
        magnitude = np.abs(low).view(np.uint64)  # abs(-2**63) wraps to 2**63 as uint64: exact
        integer, fraction = np.divmod(magnitude, np.uint64(10**_NUMERIC_SCALE))
    else:
        # The integer part from a truncating cast, the fraction from the low 64 bits of the two
        # decimals' unscaled integers (their difference is below 10^10, so the wrap-around of
        # uint64 arithmetic gives it exactly).
        magnitude_decimal = pc.abs(values)
        integer_decimal = pc.cast(magnitude_decimal, pa.decimal128(38, 0), safe=False)
        if pc.any(pc.greater_equal(integer_decimal, _NUMERIC_LIMIT)).as_py():
            raise ValueError("a decimal of 18 or more integer digits cannot be a line item's numeric")
        integer = _low_words(integer_decimal)
        fraction = _low_words(magnitude_decimal) - integer * np.uint64(10**_NUMERIC_SCALE)
        negative = pc.less(values, pa.scalar(0, values.type)).to_numpy(zero_copy_only=False)
    count = len(values)
    digits = np.empty((count, _NUMERIC_DIGITS), dtype=">u2")
    for position in range(_INTEGER_DIGITS - 1, -1, -1):
        integer, digits[:, position] = np.divmod(integer, np.uint64(10_000))
    padded = fraction * np.uint64(100)  # 10 places as 12: three whole base-10000 digits
    for position in range(_NUMERIC_DIGITS - 1, _INTEGER_DIGITS - 1, -1):
        padded, digits[:, position] = np.divmod(padded, np.uint64(10_000))
    header = np.broadcast_to(_NUMERIC_HEADER, (count, 4)).copy()
    header[negative, 2] = _NUMERIC_NEGATIVE
    width = 2 * (4 + _NUMERIC_DIGITS)
    out = np.empty((count, 4 + width), dtype=np.uint8)
    out[:, :4] = np.frombuffer(width.to_bytes(4, "big"), dtype=np.uint8)
    out[:, 4:12] = header.view(np.uint8).reshape(count, 8)
    out[:, 12:] = digits.view(np.uint8).reshape(count, 2 * _NUMERIC_DIGITS)
    return _as_binary(out)


def _low_words(decimals: pa.Array) -> np.ndarray:
    """The low 64 bits of each decimal128's unscaled integer (little-endian two's complement)."""
    words = np.frombuffer(decimals.buffers()[1], dtype="<u8")
    start = 2 * decimals.offset
    return words[start : start + 2 * len(decimals) : 2].astype(np.uint64)
