"""The operator's entry points: ingest_file, ingest_exports, and the Celery tasks (run in-process)."""

from __future__ import annotations

import gzip
import io
import shutil

import pytest
from django.core.management import CommandError, call_command

from attribution.ingest import services
from attribution.ingest.tasks import ingest_run_execute_task, rollup_daily_cost_task
from attribution.models import CloudAccount, DailyCost, IngestRun
from tests.attribution.conftest import gcp_koku_csv_to_ndjson

pytestmark = pytest.mark.django_db(transaction=True)


def test_ingest_file_creates_the_account_and_prints_a_summary(shared_billing_data):
    out = io.StringIO()
    call_command(
        "ingest_file", str(shared_billing_data / "aws/koku/2023-06-01.csv"), "--account", "aws-prod",
        "--provider", "aws", stdout=out,
    )  # fmt: skip

    assert CloudAccount.objects.get(slug="aws-prod").provider == "aws"
    output = out.getvalue()
    assert "aws-prod 2023-06 run #" in output and "3 rows loaded, 0 rejected of 3" in output
    assert "billed_cost=30.0000000000" in output and "periods touched: 2023-06" in output


def test_ingest_file_fails_with_file_and_line_on_bad_input(shared_billing_data, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "bill_billing_period_start_date,line_item_unblended_cost,line_item_usage_start_date\n1,2,3\n"
    )

    with pytest.raises(CommandError, match=r"bad.csv:1: required column 'line_item_line_item_type'"):
        call_command(
            "ingest_file", str(path), "--account", "aws-prod", "--provider", "aws", stdout=io.StringIO()
        )


def test_ingest_file_needs_a_provider_for_a_new_account(shared_billing_data):
    with pytest.raises(CommandError, match="pass --provider"):
        call_command("ingest_file", str(shared_billing_data / "aws/koku/2023-06-01.csv"), "--account", "new")


def test_ingest_exports_walks_the_delivery_tree(shared_billing_data, tmp_path):
    aws_dir = tmp_path / "aws/cur/inferensys/data/BILLING_PERIOD=2023-06/exec-1"
    aws_dir.mkdir(parents=True)
    with (
        open(shared_billing_data / "aws/koku/2023-06-01.csv", "rb") as src,
        gzip.open(aws_dir / "part-00001.csv.gz", "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    (tmp_path / "aws/cur/inferensys/metadata/BILLING_PERIOD=2023-06").mkdir(parents=True)
    gcp_dir = tmp_path / "gcp/billing_export/invoice_month=202011"
    gcp_dir.mkdir(parents=True)
    gcp_koku_csv_to_ndjson(
        shared_billing_data / "gcp/koku/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv",
        gcp_dir / "000000000000.json",
    )
    for export, name in (
        ("daily-actual", "EA_ActualCost_Small.csv"),
        ("daily-amortized", "EA_AmortizedCost_Small.csv"),
    ):
        run_dir = tmp_path / f"azure/exports/costs/{export}/20230901-20230930/run-1"
        run_dir.mkdir(parents=True)
        shutil.copy(shared_billing_data / "azure/finops-toolkit-ea" / name, run_dir / "part_0_0001.csv")
    (tmp_path / "azure/exports/costs/not-an-export").mkdir(parents=True)

    out = io.StringIO()
    call_command("ingest_exports", str(tmp_path), stdout=out)

    runs = {run.account.slug: run for run in IngestRun.objects.select_related("account")}
    assert set(runs) == {"aws-prod", "gcp-prod", "azure-prod"}
    assert all(run.state == "succeeded" for run in runs.values())
    assert runs["azure-prod"].source_sums["rows_merged"] == "10"  # actual and amortized paired
    assert runs["aws-prod"].rows_loaded == 3 and runs["gcp-prod"].rows_loaded == 25

    again = io.StringIO()
    call_command("ingest_exports", str(tmp_path), stdout=again)
    assert again.getvalue().count("unchanged:") == 3 and IngestRun.objects.count() == 3


def test_the_ingest_task_executes_a_run_and_reports_bad_input_without_retrying(shared_billing_data, tmp_path):
    account = services.cloud_account_get_or_create(slug="aws-prod", provider="aws")
    (run,) = services.ingest_runs_create(
        account=account, paths=[shared_billing_data / "aws/koku/2023-06-01.csv"]
    )

    assert ingest_run_execute_task.apply(args=[run.pk]).get() == {
        "run_id": run.pk,
        "state": "succeeded",
        "rows_loaded": 3,
    }
    # A redelivered message for a finished run changes nothing.
    assert ingest_run_execute_task.apply(args=[run.pk]).get()["state"] == "succeeded"

    copy = tmp_path / "changing.csv"
    shutil.copy(shared_billing_data / "aws/koku/2023-06-01-not-final.csv", copy)
    (doomed,) = services.ingest_runs_create(account=account, paths=[copy])
    copy.write_text(copy.read_text().replace("SavingsPlanCoveredUsage", "Usage"))
    result = ingest_run_execute_task.apply(args=[doomed.pk]).get()
    assert result["state"] == "failed" and "changed after the run was planned" in result["error"]
    run.refresh_from_db()
    assert run.state == "succeeded"


def test_the_rollup_tasks(shared_billing_data):
    account = services.cloud_account_get_or_create(slug="aws-prod", provider="aws")
    (run,) = services.ingest_runs_create(
        account=account, paths=[shared_billing_data / "aws/koku/2023-06-01.csv"]
    )
    services.ingest_run_execute(run_id=run.pk)
    DailyCost.objects.all().delete()

    cells = rollup_daily_cost_task.apply(args=[account.pk, "2023-06-01"]).get()

    assert cells == DailyCost.objects.count() > 0
    assert sum(c.line_items for c in DailyCost.objects.all()) == 3
    assert ingest_run_execute_task.name == "attribution.tasks.ingest_run_execute_task"
    assert rollup_daily_cost_task.name == "attribution.tasks.rollup_daily_cost_task"
