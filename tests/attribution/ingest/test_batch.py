"""The vectorised (pyarrow) batch path gives exactly what the row path gives: same line items, same
sums, same rejections with the same line numbers; odd files fall back to the row path; readers see
only current versions; the period_ingested signal fires inside the swap."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from attribution.ingest import loader, services
from attribution.ingest.formats.aws_cur import AwsCurParser
from attribution.ingest.formats.base import ParseContext
from attribution.models import CostLineItem, IngestRun, RejectedRow
from attribution.signals import period_ingested
from tests.attribution.ingest_fixtures import csv_write, cur2_row
from tests.factories import DeploymentFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)

COLUMNS = [
    *cur2_row().keys(),
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "line_item_legal_entity",
    "bill_billing_entity",
]
FIELDS = [f.name for f in CostLineItem._meta.fields if f.name not in ("id", "ingest_run", "account")]


def mixed_rows() -> list[dict[str, str]]:
    """One row per AWS line item type and the cells the vectorised code must leave to the row path."""
    rows = [
        cur2_row(identity_line_item_id="usage", line_item_unblended_cost="12.3456789012345678"),
        cur2_row(
            line_item_line_item_type="SavingsPlanCoveredUsage",
            line_item_unblended_cost="4.20",
            savings_plan_savings_plan_effective_cost="2.10",
            resource_tags='{"user:team": "Search", "user:deployment": "llama-aws"}',
        ),
        cur2_row(line_item_line_item_type="SavingsPlanNegation", line_item_unblended_cost="-4.20"),
        cur2_row(
            line_item_line_item_type="SavingsPlanRecurringFee",
            line_item_unblended_cost="100",
            savings_plan_total_commitment_to_date="100",
            savings_plan_used_commitment="62.5",
        ),
        cur2_row(
            line_item_line_item_type="RIFee",
            line_item_unblended_cost="30",
            reservation_unused_amortized_upfront_fee_for_billing_period="1.5",
            reservation_unused_recurring_fee="2.25",
        ),
        cur2_row(
            line_item_line_item_type="DiscountedUsage",
            line_item_unblended_cost="0",
            reservation_effective_cost="0.75",
        ),
        cur2_row(line_item_line_item_type="Tax", line_item_unblended_cost="3.10", pricing_term=""),
        cur2_row(line_item_line_item_type="Credit", line_item_unblended_cost="-5", line_item_usage_amount=""),
        cur2_row(line_item_line_item_type="EdpDiscount", line_item_unblended_cost="-1.25"),
        # Cells the batch path leaves to the row path, which loads them:
        cur2_row(identity_line_item_id="sci", line_item_unblended_cost="1.5E-3"),
        cur2_row(identity_line_item_id="mdy", line_item_usage_start_date="9/3/2024 10:00"),
        cur2_row(identity_line_item_id="utc", line_item_usage_end_date="2024-09-03 11:00:00 UTC"),
        cur2_row(
            line_item_usage_type="USE1-SpotUsage:g5", resource_tags="{}", line_item_legal_entity="AWS EMEA"
        ),
        cur2_row(identity_line_item_id="eur", line_item_currency_code="eur", line_item_resource_id="I-ABC"),
        # ...and rows the row path rejects:
        cur2_row(identity_line_item_id="bad-number", line_item_unblended_cost="12,5"),
        cur2_row(identity_line_item_id="bad-date", line_item_usage_start_date="2024-02-30T00:00:00Z"),
        cur2_row(identity_line_item_id="bad-currency", line_item_currency_code="MC"),
        cur2_row(identity_line_item_id="bad-tags", resource_tags="{not json"),
        cur2_row(identity_line_item_id="backwards", line_item_usage_end_date="2024-09-03T09:00:00Z"),
        cur2_row(identity_line_item_id="no-type", line_item_line_item_type=""),
    ]
    return rows


def mixed_file(tmp_path: Path, rows: list[dict[str, str]] | None = None, name: str = "cur.csv") -> Path:
    return csv_write(tmp_path / name, COLUMNS, rows or mixed_rows())


def load(path: Path, account: str, *, batches: bool, monkeypatch) -> IngestRun:
    monkeypatch.setattr(AwsCurParser, "batch_capable", batches)
    cloud_account = services.cloud_account_get_or_create(slug=account, provider="aws")
    (run,) = services.ingest_runs_create(account=cloud_account, paths=[path])
    return services.ingest_run_execute(run_id=run.pk)


def line_items(run: IngestRun) -> list[tuple]:
    return list(CostLineItem.objects.filter(ingest_run=run).order_by("source_line").values_list(*FIELDS))


@pytest.fixture
def dimensions():
    team = TeamFactory(slug="search", name="Search")
    deployment = DeploymentFactory(slug="llama-aws")
    by_resource = DeploymentFactory(slug="by-resource", resource_id="i-abc")
    return team, deployment, by_resource


def test_the_batch_path_gives_the_same_line_items_sums_and_rejections(tmp_path, monkeypatch, dimensions):
    path = mixed_file(tmp_path)

    by_rows = load(path, "aws-rows", batches=False, monkeypatch=monkeypatch)
    by_batches = load(path, "aws-batches", batches=True, monkeypatch=monkeypatch)

    assert by_batches.state == by_rows.state == "succeeded"
    assert line_items(by_batches) == line_items(by_rows)
    assert len(line_items(by_batches)) == 14
    for field in ("rows_in_source", "rows_loaded", "rows_rejected", "source_sums", "database_sums"):
        assert getattr(by_batches, field) == getattr(by_rows, field), field
    rejected = [
        list(RejectedRow.objects.filter(ingest_run=run).values_list("line_number", "reason", "raw_text"))
        for run in (by_rows, by_batches)
    ]
    assert rejected[0] == rejected[1]
    assert [line for line, _reason, _raw in rejected[1]] == [16, 17, 18, 19, 20, 21]
    assert "bad-number" in rejected[1][0][2] and "is not a number" in rejected[1][0][1]
    # Dimensions resolved from tags and, failing a deployment tag, from the resource id.
    team, deployment, by_resource = dimensions
    covered = CostLineItem.objects.get(ingest_run=by_batches, source_line=3)
    assert (covered.team_id, covered.deployment_id, covered.model_id) == (
        team.pk,
        deployment.pk,
        deployment.model_id,
    )
    euro = CostLineItem.objects.get(ingest_run=by_batches, source_line=15)
    assert (euro.billing_currency, euro.deployment_id) == ("EUR", by_resource.pk)


def test_the_effective_cost_rule_is_the_same_on_both_paths(tmp_path, monkeypatch):
    run = load(mixed_file(tmp_path), "aws", batches=True, monkeypatch=monkeypatch)
    effective = dict(
        CostLineItem.objects.filter(ingest_run=run, source_line__lte=10).values_list(
            "source_line", "effective_cost"
        )
    )
    assert effective == {
        2: Decimal("12.3456789012"),  # rounded half-even to 10 places, like decimal_parse
        3: Decimal("2.10"),
        4: Decimal("0"),
        5: Decimal("37.5"),
        6: Decimal("3.75"),
        7: Decimal("0.75"),
        8: Decimal("3.10"),
        9: Decimal("-5"),
        10: Decimal("-1.25"),
    }


def test_rows_with_a_wrong_field_count_keep_their_line_in_the_batch_path(tmp_path, monkeypatch):
    rows = [cur2_row(identity_line_item_id=f"li-{n}", line_item_unblended_cost="1.25") for n in range(5000)]
    path = mixed_file(tmp_path, rows)
    lines = path.read_bytes().decode().split("\r\n")
    lines[1001] += ",surplus"  # line 1002
    lines[4000] = lines[4000].rsplit(",", 1)[0]  # line 4001
    path.write_bytes("\r\n".join(lines).encode())

    run = load(path, "aws", batches=True, monkeypatch=monkeypatch)

    rejected = list(RejectedRow.objects.filter(ingest_run=run).values_list("line_number", "reason"))
    assert rejected == [
        (1002, f"expected {len(COLUMNS)} fields, found {len(COLUMNS) + 1}"),
        (4001, f"expected {len(COLUMNS)} fields, found {len(COLUMNS) - 1}"),
    ]
    assert run.rows_loaded == 4998
    assert Decimal(run.database_sums["billed_cost"]) == Decimal("1.25") * 4998
    loaded_lines = set(CostLineItem.objects.filter(ingest_run=run).values_list("source_line", flat=True))
    assert loaded_lines == set(range(2, 5002)) - {1002, 4001}


def test_a_value_spanning_lines_sends_the_run_to_the_row_path(tmp_path, monkeypatch):
    rows = [
        cur2_row(identity_line_item_id="one", line_item_line_item_description="two\nlines"),
        cur2_row(identity_line_item_id="two", line_item_unblended_cost="nope"),
    ]
    run = load(mixed_file(tmp_path, rows), "aws", batches=True, monkeypatch=monkeypatch)

    assert (run.rows_loaded, run.rows_rejected) == (1, 1)
    # The row path numbers physical lines: the second row starts on line 4.
    assert RejectedRow.objects.get(ingest_run=run).line_number == 4
    assert CostLineItem.objects.get(ingest_run=run).charge_description == "two\nlines"


def test_a_period_found_after_the_first_rows_gets_its_own_run(tmp_path, ingest, monkeypatch):
    monkeypatch.setattr("attribution.ingest.batch.BLOCK_SIZE", 1 << 16)
    september = [cur2_row(identity_line_item_id=f"s-{n}", line_item_unblended_cost="1") for n in range(2000)]
    october = cur2_row(
        identity_line_item_id="late",
        bill_billing_period_start_date="2024-10-01T00:00:00Z",
        bill_billing_period_end_date="2024-11-01T00:00:00Z",
        line_item_usage_start_date="2024-10-02T00:00:00Z",
        line_item_usage_end_date="2024-10-02T01:00:00Z",
        line_item_unblended_cost="7",
    )
    path = mixed_file(tmp_path, [*september, october])

    runs = ingest([path], account="aws", provider="aws")

    assert [(r.billing_period_start, r.state, r.rows_loaded) for r in runs] == [
        (dt.date(2024, 9, 1), "succeeded", 2000),
        (dt.date(2024, 10, 1), "succeeded", 1),
    ]
    assert Decimal(runs[1].database_sums["billed_cost"]) == Decimal("7")


def test_a_stated_period_refuses_rows_of_another_period_found_past_the_head(tmp_path, monkeypatch):
    monkeypatch.setattr("attribution.ingest.batch.BLOCK_SIZE", 1 << 16)
    rows = [cur2_row(identity_line_item_id=f"s-{n}") for n in range(2000)]
    rows.append(cur2_row(bill_billing_period_start_date="2024-10-01T00:00:00Z"))
    path = mixed_file(tmp_path, rows)
    account = services.cloud_account_get_or_create(slug="aws", provider="aws")
    (run,) = services.ingest_runs_create(account=account, paths=[path], billing_period=dt.date(2024, 9, 1))

    with pytest.raises(Exception, match="rows of billing period 2024-10 in a delivery for 2024-09"):
        services.ingest_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.state == "failed"
    assert not CostLineItem.objects.exists()


def focus_count(account: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute('SELECT COUNT(*) FROM focus_line_items WHERE "x_Account" = %s', [account])
        return cursor.fetchone()[0]


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def test_rows_of_a_run_that_is_not_current_are_invisible_and_cleaned_up(tmp_path, monkeypatch):
    path = mixed_file(tmp_path)
    first = load(path, "aws", batches=True, monkeypatch=monkeypatch)
    visible = focus_count("aws")
    resolver = loader.DimensionResolver(account_id=first.account_id)
    parsed = [i for i in AwsCurParser().parse(ParseContext(path=str(path))) if isinstance(i, dict)]
    # Two crashed versions: one died after attaching its partition, one while still loading it.
    crashed = []
    for attach in (True, False):
        run = IngestRun.objects.create(
            account=first.account,
            billing_period_start=first.billing_period_start,
            billing_period_end=first.billing_period_end,
            state="failed",
        )
        loader.partition_create(run_id=run.pk)
        loader.line_items_copy_rows(
            run_id=run.pk,
            account_id=first.account_id,
            rows=parsed,
            resolver=resolver,
            tag_sets=loader.TagSets(),
        )
        if attach:
            loader.partition_attach(run_id=run.pk)
        crashed.append(run)
    assert CostLineItem.objects.filter(ingest_run=crashed[0]).count() == 14

    assert focus_count("aws") == visible == 14
    # The next run of the period drops the invisible rows before loading, and the superseded
    # version's partition after its swap.
    rows = mixed_rows()
    rows[0]["line_item_unblended_cost"] = "99"
    second = load(mixed_file(tmp_path, rows, "restated.csv"), "aws", batches=True, monkeypatch=monkeypatch)
    assert set(CostLineItem.objects.values_list("ingest_run_id", flat=True)) == {second.pk}
    assert focus_count("aws") == 14
    for run in (first, *crashed):
        assert not _table_exists(loader.partition_name(run.pk))
    assert _table_exists(loader.partition_name(second.pk))


def test_the_swap_sends_period_ingested_with_the_days(tmp_path, monkeypatch):
    received = []

    def receiver(sender, **kwargs):
        with connection.cursor() as cursor:  # inside the swap: the new run is already current
            cursor.execute("SELECT state FROM attribution_ingestrun WHERE id = %s", [kwargs["run_id"]])
            received.append((kwargs, cursor.fetchone()[0], connection.in_atomic_block))

    period_ingested.connect(receiver)
    try:
        run = load(mixed_file(tmp_path), "aws", batches=True, monkeypatch=monkeypatch)
    finally:
        period_ingested.disconnect(receiver)

    ((kwargs, state, in_transaction),) = received
    assert (state, in_transaction) == ("succeeded", True)
    assert kwargs["account_id"] == run.account_id and kwargs["run_id"] == run.pk
    assert kwargs["billing_period_start"] == dt.date(2024, 9, 1)
    assert kwargs["days"] == [dt.date(2024, 9, 3)]


def test_tags_are_stored_as_the_row_path_stores_them(tmp_path, monkeypatch):
    run = load(mixed_file(tmp_path), "aws", batches=True, monkeypatch=monkeypatch)
    item = CostLineItem.objects.get(ingest_run=run, source_line=3)
    assert item.tags == {"user:team": "Search", "user:deployment": "llama-aws"}
    assert item.normalized_tags == {"team": "Search", "deployment": "llama-aws"}
    assert json.loads(json.dumps(item.tags)) == item.tags


def test_the_binary_copy_loads_what_the_csv_copy_loads(tmp_path, monkeypatch, settings, dimensions):
    path = mixed_file(tmp_path)

    settings.INGEST_COPY_FORMAT = "csv"
    as_csv = load(path, "aws-csv", batches=True, monkeypatch=monkeypatch)
    settings.INGEST_COPY_FORMAT = "binary"
    as_binary = load(path, "aws-binary", batches=True, monkeypatch=monkeypatch)

    assert as_binary.state == as_csv.state == "succeeded"
    assert line_items(as_binary) == line_items(as_csv)
    assert len(line_items(as_binary)) == 14
    for field in ("rows_in_source", "rows_loaded", "rows_rejected", "source_sums", "database_sums"):
        assert getattr(as_binary, field) == getattr(as_csv, field), field
