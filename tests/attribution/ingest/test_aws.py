"""AWS CUR ingestion over the real shared samples: totals to the cent, atomic restatement, no-op
re-ingest, failures that leave the previous version whole, and the rejection of bad rows."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from decimal import Decimal

import pytest
from django.db import connection

from attribution.ingest import services
from attribution.ingest.errors import IngestError, MissingColumnError
from attribution.models import CostLineItem, DailyCost, IngestRun, RejectedRow
from tests.attribution.conftest import cents, csv_rows, decimal_sum
from tests.factories import DeploymentFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)

S3_LAYOUT_FILE = (
    "aws/koku-cur-s3-layout/koku-local/20180801-20180901/"
    "16e57707-f9e3-49be-8be6-b84e684b5194/koku-local-1.csv.gz"
)


def focus_totals(account: str) -> tuple[int, Decimal, Decimal]:
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT COUNT(*), COALESCE(SUM("BilledCost"), 0), COALESCE(SUM("EffectiveCost"), 0) '
            'FROM focus_line_items WHERE "x_Account" = %s',
            [account],
        )
        return cursor.fetchone()


def daily_totals(account_slug: str) -> tuple[int, Decimal, Decimal]:
    cells = DailyCost.objects.filter(account__slug=account_slug)
    return (
        sum(c.line_items for c in cells),
        sum((c.billed_cost for c in cells), Decimal(0)),
        sum((c.effective_cost for c in cells), Decimal(0)),
    )


@pytest.mark.parametrize(
    ("name", "period"),
    [
        ("aws/koku/2022-07-01-alt-columns.csv", dt.date(2022, 7, 1)),
        ("aws/koku/2023-06-01.csv", dt.date(2023, 6, 1)),
        ("aws/koku/2023-06-01-not-final.csv", dt.date(2023, 6, 1)),
    ],
)
def test_it_loads_real_cur_files_to_the_cent(ingest, shared_billing_data, name, period):
    path = shared_billing_data / name
    rows = csv_rows(path)
    cost_column = (
        "line_item_unblended_cost" if "line_item_unblended_cost" in rows[0] else "lineItem/UnblendedCost"
    )
    expected = decimal_sum(row[cost_column] for row in rows)

    (run,) = ingest([path], account="aws-prod", provider="aws")

    assert run.state == "succeeded" and run.billing_period_start == period
    assert run.rows_in_source == len(rows) == run.rows_loaded and run.rows_rejected == 0
    count, billed, _effective = focus_totals("aws-prod")
    assert count == len(rows)
    assert cents(billed) == cents(expected)
    assert Decimal(run.source_sums["billed_cost"]) == Decimal(run.database_sums["billed_cost"])
    assert daily_totals("aws-prod")[:2] == (count, billed)


def test_it_amortizes_savings_plan_covered_usage(ingest, shared_billing_data):
    path = shared_billing_data / "aws/koku/2023-06-01.csv"
    rows = csv_rows(path)
    expected_effective = decimal_sum(row["savingsPlan/SavingsPlanEffectiveCost"] for row in rows)

    ingest([path], account="aws-prod", provider="aws")

    assert {row["lineItem/LineItemType"] for row in rows} == {"SavingsPlanCoveredUsage"}
    assert cents(focus_totals("aws-prod")[2]) == cents(expected_effective)


def test_it_rejects_misaligned_rows_with_their_line_and_explains_the_gap(ingest, shared_billing_data):
    path = shared_billing_data / "aws/koku/November-2023-None.csv"
    rows = csv_rows(path)

    (run,) = ingest([path], account="aws-prod", provider="aws")

    rejected = list(RejectedRow.objects.filter(ingest_run=run))
    assert run.rows_in_source == len(rows) == run.rows_loaded + run.rows_rejected
    assert run.rows_rejected == len(rejected) >= 1
    assert all(r.line_number > 1 and r.raw_text and "fields" in r.reason for r in rejected)
    # The rejected rows' readable amounts explain the whole gap between source and database.
    assert Decimal(run.source_sums["billed_cost"]) - Decimal(
        run.source_sums["rejected_billed_cost"]
    ) == Decimal(run.database_sums["billed_cost"])


def test_it_splits_a_delivery_that_spans_periods_into_one_run_per_period(ingest, shared_billing_data):
    path = shared_billing_data / S3_LAYOUT_FILE
    rows = csv_rows(path)

    runs = ingest([path], account="aws-prod", provider="aws")

    assert [run.billing_period_start for run in runs] == [
        dt.date(2018, 6, 1),
        dt.date(2018, 7, 1),
        dt.date(2018, 8, 1),
    ]
    for run in runs:
        period_rows = [
            r for r in rows if r["bill/BillingPeriodStartDate"].startswith(f"{run.billing_period_start}")
        ]
        assert run.rows_loaded == len(period_rows)
        assert cents(run.database_sums["billed_cost"]) == cents(
            decimal_sum(r["lineItem/UnblendedCost"] for r in period_rows)
        )
    count, billed, _ = focus_totals("aws-prod")
    assert count == len(rows) == 13_380
    assert cents(billed) == cents(decimal_sum(r["lineItem/UnblendedCost"] for r in rows))
    assert daily_totals("aws-prod")[:2] == (count, billed)


def test_it_refuses_rows_of_another_period_when_the_period_is_stated(ingest, shared_billing_data):
    with pytest.raises(IngestError, match="rows of billing period 2018-06 in a delivery for 2018-08"):
        ingest(
            [shared_billing_data / S3_LAYOUT_FILE],
            account="aws-prod",
            provider="aws",
            billing_period=dt.date(2018, 8, 1),
        )
    assert not IngestRun.objects.exists()


def test_it_replaces_a_restated_period_atomically(ingest, shared_billing_data):
    first = shared_billing_data / "aws/koku/2023-06-01-not-final.csv"
    (old,) = ingest([first], account="aws-prod", provider="aws")
    old_ids = set(CostLineItem.objects.values_list("id", flat=True))

    (new,) = ingest([shared_billing_data / "aws/koku/2023-06-01.csv"], account="aws-prod", provider="aws")

    old.refresh_from_db()
    assert old.state == "superseded" and old.superseded_by_id == new.pk
    assert new.state == "succeeded"
    assert not old_ids & set(CostLineItem.objects.values_list("id", flat=True))
    assert set(CostLineItem.objects.values_list("ingest_run_id", flat=True)) == {new.pk}
    assert CostLineItem.objects.count() == 3


def test_it_changes_nothing_when_the_same_files_come_twice(ingest, shared_billing_data):
    path = shared_billing_data / "aws/koku/2023-06-01.csv"
    (first,) = ingest([path], account="aws-prod", provider="aws")
    ids = sorted(CostLineItem.objects.values_list("id", flat=True))

    (second,) = ingest([path], account="aws-prod", provider="aws")

    assert second.pk == first.pk and second.state == "succeeded"
    assert IngestRun.objects.count() == 1
    assert sorted(CostLineItem.objects.values_list("id", flat=True)) == ids


def test_a_truncated_second_file_leaves_the_previous_version_whole(ingest, shared_billing_data, tmp_path):
    good = shared_billing_data / "aws/koku/2023-06-01.csv"
    (previous,) = ingest([good], account="aws-prod", provider="aws")
    before = focus_totals("aws-prod")
    part_one = tmp_path / "part-1.csv.gz"
    with open(good, "rb") as source, gzip.open(part_one, "wb") as target:
        shutil.copyfileobj(source, target)
    part_two = tmp_path / "part-2.csv.gz"
    shutil.copy(part_one, part_two)
    (run,) = services.ingest_runs_create(account=previous.account, paths=[part_one, part_two])
    # The second file is cut short after planning, as by an interrupted download.
    part_two.write_bytes(part_one.read_bytes()[:-40])

    with pytest.raises(IngestError, match="part-2.csv.gz:.*truncated or corrupt"):
        services.ingest_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.state == "failed" and "truncated" in run.error
    previous.refresh_from_db()
    assert previous.state == "succeeded"
    assert focus_totals("aws-prod") == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM attribution_costlineitem_staging")
        assert cursor.fetchone()[0] == 0


def test_it_refuses_a_truncated_file_before_creating_a_run(ingest, shared_billing_data, tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress((shared_billing_data / "aws/koku/2023-06-01.csv").read_bytes())[:-40])

    with pytest.raises(IngestError, match="cut.csv.gz: .*end-of-stream"):
        ingest([path], account="aws-prod", provider="aws")
    assert not IngestRun.objects.exists()


def test_a_header_only_file_succeeds_with_no_rows(ingest, shared_billing_data, tmp_path):
    header = (shared_billing_data / "aws/koku/2023-06-01.csv").read_text().splitlines()[0]
    path = tmp_path / "empty.csv"
    path.write_text(header + "\n")

    (run,) = ingest([path], account="aws-prod", provider="aws", billing_period=dt.date(2023, 6, 1))

    assert run.state == "succeeded" and run.rows_loaded == 0 and run.rows_in_source == 0


def test_it_names_a_missing_required_column(ingest, shared_billing_data, tmp_path):
    rows = (shared_billing_data / "aws/koku/2022-07-01-alt-columns.csv").read_text().splitlines()
    header = rows[0].split(",")
    index = header.index("line_item_line_item_type")
    path = tmp_path / "no-type.csv"
    path.write_text(
        ",".join(header[:index] + ["line_item_type_renamed"] + header[index + 1 :])
        + "\n"
        + "\n".join(rows[1:])
    )

    with pytest.raises(
        MissingColumnError, match=r"no-type.csv:1: required column 'line_item_line_item_type'"
    ):
        ingest([path], account="aws-prod", provider="aws")


def test_a_bad_number_becomes_a_rejected_row_with_its_line(ingest, tmp_path):
    path = tmp_path / "cur2.csv"
    path.write_text(
        "bill_billing_period_start_date,bill_payer_account_id,line_item_usage_account_id,line_item_line_item_type,"
        "line_item_usage_start_date,line_item_usage_end_date,line_item_product_code,line_item_resource_id,"
        "line_item_unblended_cost,line_item_currency_code,resource_tags\n"
        "2026-09-01T00:00:00Z,111,222,Usage,2026-09-01T00:00:00Z,2026-09-01T01:00:00Z,AmazonSageMaker,ep-1,"
        '1.25,USD,"{""user:team"": ""search""}"\n'
        "2026-09-01T00:00:00Z,111,222,Usage,2026-09-01T01:00:00Z,2026-09-01T02:00:00Z,AmazonSageMaker,ep-1,1.2.3,USD,{}\n"
        "2026-09-01T00:00:00Z,111,222,Tax,2026-09-01T00:00:00Z,2026-10-01T00:00:00Z,AmazonSageMaker,,0.10,XXY,{}\n"
    )

    (run,) = ingest([path], account="aws-prod", provider="aws")

    rejected = {r.line_number: r.reason for r in RejectedRow.objects.filter(ingest_run=run)}
    assert rejected == {
        3: "line_item_unblended_cost: '1.2.3' is not a number",
        4: "billing currency 'XXY' is not an ISO 4217 code",
    }
    assert (run.rows_in_source, run.rows_loaded, run.rows_rejected) == (3, 1, 2)
    assert run.database_sums["billed_cost"] == "1.2500000000"
    assert run.source_sums["rejected_billed_cost"] == "0.1000000000"


def test_it_resolves_team_deployment_and_model_in_sql(ingest, tmp_path):
    team = TeamFactory(slug="search")
    deployment = DeploymentFactory(
        slug="llama-use1", resource_id="arn:aws:sagemaker:us-east-1:222:endpoint/llama"
    )
    path = tmp_path / "cur2.csv"
    path.write_text(
        "bill_billing_period_start_date,line_item_line_item_type,line_item_usage_start_date,"
        "line_item_unblended_cost,line_item_currency_code,line_item_resource_id,resource_tags\n"
        "2026-09-01T00:00:00Z,Usage,2026-09-02T00:00:00Z,2.00,USD,arn:aws:sagemaker:us-east-1:222:endpoint/llama,"
        '"{""user:Team "": ""Search""}"\n'
        "2026-09-01T00:00:00Z,Usage,2026-09-02T00:00:00Z,3.00,USD,other,{}\n"
    )

    ingest([path], account="aws-prod", provider="aws")

    tagged = CostLineItem.objects.get(billed_cost=Decimal("2.00"))
    assert (tagged.team_id, tagged.deployment_id, tagged.model_id) == (
        team.pk,
        deployment.pk,
        deployment.model_id,
    )
    assert tagged.normalized_tags == {"team": "Search"} and tagged.tags == {"user:Team ": "Search"}
    untagged = CostLineItem.objects.get(billed_cost=Decimal("3.00"))
    assert (untagged.team_id, untagged.deployment_id, untagged.model_id) == (None, None, None)
    cell = DailyCost.objects.get(team=team)
    assert (cell.day, cell.billed_cost, cell.line_items) == (dt.date(2026, 9, 2), Decimal("2.00"), 1)
