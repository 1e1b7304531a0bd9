"""BigQuery rows as the ingest reads them: NDJSON lines for the billing export, FOCUS CSV cells,
and the FOCUS version fingerprint.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

_NANO = Decimal("1e-9")


# --- streaming -----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def row_json(row: Any) -> bytes:
    # Floats keep their shortest round-trip text (what BigQuery sent); the parser reads them as
    # Decimal, so a cost like 31.338502 arrives exactly.
    return (json.dumps(dict(row.items()), default=_json_default, separators=(",", ":")) + "\n").encode()


def focus_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)  # the shortest round-trip text; the parser reads it as Decimal
    return str(value)


def focus_tags(value: Any) -> str:
    """Tags as the JSON object the FOCUS parser reads: a REPEATED key/value RECORD (Google's
    FOCUS schema) becomes {key: value}; a JSON or STRING column is passed through."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        tags: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict) and item.get("key") is not None:
                tags.setdefault(str(item["key"]), item.get("value"))
        return json.dumps(tags, separators=(",", ":"), default=_json_default)
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def nano(value: Any) -> Decimal:
    # CAST(x AS NUMERIC) in BigQuery: 9 decimal places, halves away from zero.
    from decimal import ROUND_HALF_UP

    number = (
        value
        if isinstance(value, Decimal)
        else Decimal(repr(value) if isinstance(value, float) else str(value))
    )
    return number.quantize(_NANO, rounding=ROUND_HALF_UP)


def focus_fingerprint(count: int, billed: Any) -> str:
    """The version of a FOCUS month without x_ExportTime: a hash of (rows, SUM(BilledCost))."""
    import hashlib

    text = f"{int(count)}|{format(nano(billed or 0), 'f')}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:24]
