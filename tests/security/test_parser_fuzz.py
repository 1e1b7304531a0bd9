"""Parser fuzzing (issue 15): thousands of generated files per format, each a valid export whose cells
are swapped for hostile values (exponents past the decimal module's limits, NUL bytes, bad zones,
huge digit strings, unicode, broken JSON). A parser may reject a row (with its line and a reason)
or the file (IngestError, naming the file); anything else escaping is a bug, such as the
`decimal.Overflow` that once ended a whole run.

PARSER_FUZZ_FILES files per format (default 300, bounded for `make test`); `make fuzz` runs 10,000.
No database: parsers are pure.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.ingest.errors import IngestError
from attribution.ingest.formats.base import ParseContext, Rejected
from attribution.ingest.formats.gcp_bigquery import GcpBigQueryParser
from tests.attribution.ingest.test_properties import CSV_PARSERS
from tests.attribution.ingest_fixtures import CUR2_COLUMNS, FOCUS_COLUMNS, cur2_row, focus_row

FILES = int(os.environ.get("PARSER_FUZZ_FILES", "300"))
FUZZ = settings(
    max_examples=FILES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

HOSTILE = st.sampled_from(
    [
        "", "NULL", "null", "NaN", "-nan", "inf", "-Infinity", "1E+1000000", "-9.9e+999999999",
        "1e-999999999999", "1e999999999999999999", "9" * 400, "0." + "0" * 300 + "1", "1,5", "1_000",
        "0x1F", "-0", "+1", " 1 ", "\x00", "a\x00b", "\ufeff", "\u202e", "\r\n", '"', '""', "{", "}",
        "[]", "{}", '{"team": ', '{"a": [1, {"b": null}]}', "[{'amount': 'x'}]", "2024-02-30",
        "2024-05-01T00:00:00-21:29", "2024-05-01T25:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01",
        "13/13/2024", "1/1/10000", "202413", "USD", "usd", "XXX", "€", "Usage", "Tax",
    ]
)  # fmt: skip
cell_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
cells = st.one_of(HOSTILE, cell_text)


def _template(header: list[str]) -> list[str]:
    """A plausible value per column, by its name, for formats without a row builder."""
    values = []
    for column in header:
        name = column.lower()
        if any(word in name for word in ("cost", "amount", "price", "quantity")):
            values.append("1.25")
        elif "month" in name:
            values.append("202405")
        elif any(word in name for word in ("date", "time", "period")):
            values.append("2024-05-01T00:00:00Z")
        elif "currency" in name:
            values.append("USD")
        else:
            values.append("x")
    return values


TEMPLATES = {
    parser: (
        [cur2_row()[column] for column in CUR2_COLUMNS]
        if header is CUR2_COLUMNS
        else [focus_row()[column] for column in FOCUS_COLUMNS]
        if header is FOCUS_COLUMNS
        else _template(header)
    )
    for parser, header in CSV_PARSERS.items()
}


def _consume(parser_class, path: Path) -> None:
    try:
        parser_class().scan_periods(ParseContext(path=str(path)))
        for item in parser_class().parse(ParseContext(path=str(path))):
            if isinstance(item, Rejected):
                assert item.reason and item.line >= 1, item
            else:
                assert isinstance(item["billed_cost"], Decimal)
    except IngestError as error:
        assert path.name in str(error), error


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@pytest.mark.parametrize("parser_class", list(CSV_PARSERS), ids=lambda parser: parser.name)
def test_csv_parsers_reject_rows_or_files_but_never_crash(parser_class, workdir):
    header = CSV_PARSERS[parser_class]
    template = TEMPLATES[parser_class]
    row = st.lists(st.tuples(st.booleans(), cells), min_size=len(header), max_size=len(header)).map(
        lambda picks: [value if swap else template[i] for i, (swap, value) in enumerate(picks)]
    )

    @FUZZ
    @given(rows=st.lists(row, min_size=1, max_size=4), tail=st.sampled_from(["", "\n", "a,b", '"unclosed']))
    def run(rows, tail):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerow(template)
        writer.writerows(rows)
        buffer.write(tail)
        path = workdir / f"{parser_class.name}.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        _consume(parser_class, path)

    run()


json_cells = st.one_of(
    HOSTILE, cell_text, st.none(), st.booleans(), st.integers(), st.floats(), st.lists(HOSTILE, max_size=2)
)
GCP_RECORD = {
    "billing_account_id": "A-1",
    "cost": 1.25,
    "currency": "USD",
    "usage_start_time": "2024-05-01 00:00:00 UTC",
    "usage_end_time": "2024-05-01 01:00:00 UTC",
    "invoice": {"month": "202405"},
    "credits": [{"amount": -0.25, "type": "PROMOTION"}],
    "labels": [{"key": "team", "value": "search"}],
    "project": {"id": "p"},
    "cost_at_list": 1.5,
}


@FUZZ
@given(
    swaps=st.lists(st.dictionaries(st.sampled_from(sorted(GCP_RECORD)), json_cells, max_size=4), max_size=4),
    raw=st.sampled_from(["", "{", "[1]", "\x00", '{"cost": 1E+1000000}']),
)
def test_the_bigquery_parser_rejects_rows_or_files_but_never_crashes(swaps, raw):
    lines = [json.dumps(GCP_RECORD)] + [json.dumps({**GCP_RECORD, **swap}) for swap in swaps]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "export.json"
        path.write_text("\n".join([*lines, raw]) + "\n", encoding="utf-8")
        _consume(GcpBigQueryParser, path)
