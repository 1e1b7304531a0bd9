"""Property-based tests (hypothesis) of the parsers and the pipeline.

1. Random valid CUR 2.0, FOCUS and Azure rows (amounts with up to 10 decimals, negatives; tags with
   unicode, commas, quotes and newlines in cells) -> write the file -> ingest -> row count and
   every sum equal the source exactly.
2. Random garbage after a valid header (and random JSON records for the NDJSON format): parsing
   never raises anything but IngestError; every line comes out as a staging row or a Rejected.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.ingest import services
from attribution.ingest.errors import IngestError
from attribution.ingest.formats.aws_cur import AwsCurLegacyParser, AwsCurParser
from attribution.ingest.formats.azure_cost_details import AzureCostDetailsParser
from attribution.ingest.formats.base import ParseContext, Rejected
from attribution.ingest.formats.focus import FocusParser
from attribution.ingest.formats.gcp_bigquery import GcpBigQueryParser
from attribution.ingest.formats.gcp_csv import GcpCsvParser
from attribution.models import CostLineItem
from tests.attribution.ingest_fixtures import CUR2_COLUMNS, FOCUS_COLUMNS, csv_write, cur2_row, focus_row

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_accounts = itertools.count()

amounts = st.decimals(
    min_value=Decimal("-1000000"),
    max_value=Decimal("1000000"),
    places=10,
    allow_nan=False,
    allow_infinity=False,
)
# Any text Postgres can store in jsonb (no NUL, no lone surrogates): unicode, commas, quotes, \r \n.
cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24
)
tag_maps = st.dictionaries(cell_text.filter(lambda k: k.strip() != ""), cell_text, max_size=4)


def _ingest(path: Path, provider: str):
    account = services.cloud_account_get_or_create(slug=f"prop-{next(_accounts)}", provider=provider)
    (run,) = services.ingest_runs_create(account=account, paths=[path])
    return services.ingest_run_execute(run_id=run.pk)


def _written(rows: list[dict[str, str]], header: list[str], suffix: str = ".csv") -> Path:
    directory = Path(tempfile.mkdtemp(prefix="prop-"))
    return csv_write(directory / f"export{suffix}", header, rows, compress=suffix.endswith(".gz"))


@pytest.mark.django_db
@SETTINGS
@given(st.lists(st.tuples(amounts, tag_maps), min_size=1, max_size=12), st.booleans())
def test_cur2_rows_load_with_exact_sums(rows, compress):
    source = [
        cur2_row(
            identity_line_item_id=f"li-{n}",
            line_item_unblended_cost=str(amount),
            resource_tags=json.dumps(tags),
        )
        for n, (amount, tags) in enumerate(rows)
    ]
    run = _ingest(_written(source, CUR2_COLUMNS, ".csv.gz" if compress else ".csv"), "aws")

    assert (run.state, run.rows_in_source, run.rows_loaded, run.rows_rejected) == (
        "succeeded",
        len(rows),
        len(rows),
        0,
    )
    expected = sum((amount for amount, _tags in rows), Decimal(0))
    assert Decimal(run.database_sums["billed_cost"]) == Decimal(run.source_sums["billed_cost"]) == expected
    assert Decimal(run.database_sums["effective_cost"]) == expected  # Usage rows: EffectiveCost = unblended
    stored = list(
        CostLineItem.objects.filter(ingest_run=run)
        .order_by("source_line")
        .values_list("tag_set__tags", flat=True)
    )
    assert stored == [{k: v for k, v in tags.items()} for _amount, tags in rows]


@pytest.mark.django_db
@SETTINGS
@given(
    st.lists(st.tuples(amounts, amounts, st.one_of(st.none(), amounts), tag_maps), min_size=1, max_size=12)
)
def test_focus_rows_load_with_exact_sums(rows):
    source = [
        focus_row(
            BilledCost=str(billed),
            EffectiveCost=str(effective),
            ListCost="NULL" if list_cost is None else str(list_cost),
            Tags=json.dumps(tags, ensure_ascii=False),
            ChargeDescription=",".join(tags) or "plain",
        )
        for billed, effective, list_cost, tags in rows
    ]
    run = _ingest(_written(source, FOCUS_COLUMNS), "gcp")

    assert (run.rows_in_source, run.rows_loaded, run.rows_rejected) == (len(rows), len(rows), 0)
    for column, index in (("billed_cost", 0), ("effective_cost", 1), ("list_cost", 2)):
        expected = sum((r[index] for r in rows if r[index] is not None), Decimal(0))
        assert Decimal(run.database_sums[column]) == Decimal(run.source_sums[column]) == expected
    stored = list(
        CostLineItem.objects.filter(ingest_run=run)
        .order_by("source_line")
        .values_list("tag_set__tags", flat=True)
    )
    assert stored == [tags for *_amounts, tags in rows]


AZURE_HEADER = [
    "date", "costInBillingCurrency", "billingCurrency", "chargeType", "pricingModel", "subscriptionId",
    "meterId", "meterCategory", "quantity", "tags", "resourceId",
]  # fmt: skip


@pytest.mark.django_db
@SETTINGS
@given(
    st.lists(
        st.tuples(amounts, st.integers(1, 28), st.sampled_from(["Usage", "Purchase"]), tag_maps),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)
def test_azure_rows_load_with_exact_sums(rows, braces):
    source = []
    for n, (cost, day, charge_type, tags) in enumerate(rows):
        encoded = json.dumps(tags, ensure_ascii=False)
        source.append(
            {
                "date": f"07/{day}/2024",
                "costInBillingCurrency": str(cost),
                "billingCurrency": "EUR",
                "chargeType": charge_type,
                "pricingModel": "OnDemand",
                "subscriptionId": "sub-1",
                "meterId": f"meter-{n}",
                "meterCategory": "Virtual Machines, GPU",
                "quantity": "1",
                # EA exports drop the braces around Tags; both forms must read the same.
                "tags": encoded if braces else encoded[1:-1],
                "resourceId": f"/subscriptions/sub-1/resourcegroups/rg/providers/x/{n}",
            }
        )
    run = _ingest(_written(source, AZURE_HEADER), "azure")

    assert (run.rows_in_source, run.rows_loaded, run.rows_rejected) == (len(rows), len(rows), 0)
    expected = sum((r[0] for r in rows), Decimal(0))
    assert Decimal(run.database_sums["billed_cost"]) == Decimal(run.source_sums["billed_cost"]) == expected
    assert Decimal(run.database_sums["effective_cost"]) == expected
    stored = list(
        CostLineItem.objects.filter(ingest_run=run)
        .order_by("source_line")
        .values_list("tag_set__tags", flat=True)
    )
    assert stored == [tags for *_rest, tags in rows]


# --- garbage never escapes as anything but IngestError / Rejected -----------------------------------

CSV_PARSERS = {
    FocusParser: FOCUS_COLUMNS,
    AwsCurParser: CUR2_COLUMNS,
    AwsCurLegacyParser: ["bill/BillingPeriodStartDate", "lineItem/UnblendedCost", "lineItem/LineItemType",
                         "lineItem/UsageStartDate", "resourceTags/user:team",
                         "pricing/OfferingClasspricing/PurchaseOption"],
    AzureCostDetailsParser: AZURE_HEADER,
    GcpCsvParser: ["billing_account_id", "cost", "currency", "usage_start_time", "usage_end_time",
                   "invoice.month", "credits", "labels", "project.labels", "system_labels"],
}  # fmt: skip

garbage_cells = st.one_of(
    cell_text,
    st.sampled_from(
        ["", "NULL", "NaN", "-inf", "1e999", "1e30", "0x1F", "2024-02-30", "13/13/2024", "{",
         "[{'amount': }]", '{"a": [1, {"b": null}]}', "[{'amount': 'x'}]", "[1, 2]", "202413",
         "USD", "MC", "Usage", "RIFee",
         "SavingsPlanRecurringFee", "DiscountedUsage", "9" * 400, "\ufeff", '"', '""', "\r\n"]
    ),
)  # fmt: skip


def _consume(parser_class, path: Path) -> tuple[int, int]:
    rows = rejected = 0
    parser_class().scan_periods(ParseContext(path=str(path)))
    for item in parser_class().parse(ParseContext(path=str(path))):
        if isinstance(item, Rejected):
            assert item.reason and item.line >= 1
            rejected += 1
        else:
            assert isinstance(item["billed_cost"], Decimal)
            rows += 1
    return rows, rejected


@pytest.mark.parametrize("parser_class", list(CSV_PARSERS), ids=lambda p: p.name)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_csv_parsers_only_reject_or_raise_ingest_error_on_garbage(parser_class, data):
    header = CSV_PARSERS[parser_class]
    rows = data.draw(st.lists(st.lists(garbage_cells, max_size=len(header) + 2), max_size=8))
    raw_tail = data.draw(st.text(max_size=60))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    buffer.write(raw_tail)  # unbalanced quotes, stray separators
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "garbage.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        try:
            _consume(parser_class, path)
        except IngestError:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | cell_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(cell_text, children, max_size=3),
    max_leaves=8,
)
gcp_records = st.fixed_dictionaries(
    {
        "billing_account_id": json_values,
        "cost": json_values,
        "currency": st.sampled_from(["USD", "EUR", "", "??"]),
    },
    optional={
        "invoice": st.fixed_dictionaries({}, optional={"month": st.one_of(json_values, st.just("202405"))}),
        "usage_start_time": st.one_of(json_values, st.just("2024-05-01 00:00:00 UTC")),
        "usage_end_time": st.one_of(json_values, st.just("2024-05-01 01:00:00 UTC")),
        "credits": json_values,
        "labels": json_values,
        "system_labels": json_values,
        "project": json_values,
        "usage": json_values,
        "cost_at_list": json_values,
        "cost_type": json_values,
    },
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(gcp_records.map(json.dumps), cell_text), min_size=1, max_size=8))
def test_the_ndjson_parser_only_rejects_or_raises_ingest_error_on_garbage(lines):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "garbage.json"
        first = json.dumps(
            {
                "billing_account_id": "A",
                "cost": 1,
                "currency": "USD",
                "usage_start_time": "2024-05-01 00:00:00 UTC",
                "invoice": {"month": "202405"},
            }
        )
        path.write_text("\n".join([first, *lines]) + "\n", encoding="utf-8")
        try:
            _consume(GcpBigQueryParser, path)
        except IngestError:
            pass
