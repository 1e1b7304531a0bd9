"""The demo exports: native layouts and headers, totals that reconcile exactly with the files,
usage consistent with cost, determinism, and the idempotent seed and usage-load commands."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.db.models import Count, Sum

from attribution.demo.aws_cur2 import CUR2_HEADER
from attribution.demo.azure_cost_details import MCA_COLUMNS
from attribution.demo.company import company_build
from attribution.demo.specs import POOL
from attribution.models import CloudAccount, Deployment, ServedModel, Team, UsageRecord

END_DATE = "2026-11-28"
AWS_EXPORT = Path("aws/acme-billing-exports/cur2/acme-cur2-daily")
GCP_TABLE = Path("gcp/acme-billing.billing_export.gcp_billing_export_resource_v1_01ABCD_234567_89EF01")
AZURE_ROOT = Path("azure/cost-exports/mca/acme-prod")
REQUIRED_CUR2_COLUMNS = (
    "bill_billing_period_start_date", "bill_payer_account_id", "line_item_usage_account_id",
    "line_item_line_item_type", "line_item_usage_start_date", "line_item_usage_end_date",
    "line_item_product_code", "line_item_usage_type", "line_item_operation", "line_item_resource_id",
    "line_item_usage_amount", "line_item_unblended_cost", "line_item_blended_cost",
    "line_item_net_unblended_cost", "pricing_public_on_demand_cost", "line_item_currency_code",
    "product_region_code", "savings_plan_savings_plan_effective_cost",
    "savings_plan_amortized_upfront_commitment_for_billing_period",
    "savings_plan_recurring_commitment_for_billing_period", "reservation_effective_cost", "resource_tags",
    "cost_category", "pricing_term", "product_instance_type",
)  # fmt: skip
REQUIRED_MCA_COLUMNS = (
    "invoiceId", "billingAccountId", "billingAccountName", "billingProfileId", "billingPeriodStartDate",
    "billingPeriodEndDate", "date", "serviceFamily", "meterCategory", "meterSubCategory", "meterName",
    "meterRegion", "quantity", "unitOfMeasure", "effectivePrice", "costInBillingCurrency", "billingCurrency",
    "costInUsd", "paygCostInBillingCurrency", "chargeType", "pricingModel", "subscriptionId",
    "subscriptionName", "resourceGroupName", "ResourceId", "resourceLocation", "tags", "benefitId",
    "benefitName", "reservationId",
)  # fmt: skip


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports")
    call_command("demo_exports", days=35, out=str(out), seed=42, end_date=END_DATE)
    return out


@pytest.fixture(scope="module")
def expected(exports) -> list[dict]:
    return json.loads((exports / "expected_totals.json").read_text())["entries"]


def _read_cur(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, compression="gzip")


def _d(text: str) -> Decimal:
    return Decimal(text) if text else Decimal(0)


# --- layouts and headers ----------------------------------------------------------------------------


def test_it_writes_each_provider_in_its_documented_layout(exports):
    data = exports / AWS_EXPORT / "data"
    assert sorted(p.name for p in data.iterdir()) == ["BILLING_PERIOD=2026-10", "BILLING_PERIOD=2026-11"]
    for period in ("2026-10", "2026-11"):
        manifest = (
            exports / AWS_EXPORT / "metadata" / f"BILLING_PERIOD={period}" / "acme-cur2-daily-Manifest.json"
        )
        document = json.loads(manifest.read_text())
        assert set(document) >= {"executionId", "exportArn", "columns", "dataFiles", "additionalOutputFiles"}
        assert len(document["dataFiles"]) >= 2, "a period is split over several files"
        for uri in document["dataFiles"]:
            assert uri.startswith("s3://acme-billing-exports/cur2/acme-cur2-daily/data/")
            relative = uri.removeprefix("s3://")
            assert (exports / "aws" / relative).is_file()
            folder = relative.split("/")[-2]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z-" + document["executionId"], folder)
            assert re.fullmatch(r"acme-cur2-daily-\d{5}\.csv\.gz", relative.split("/")[-1])
        assert [c["name"] for c in document["columns"]] == list(CUR2_HEADER)

    assert sorted(p.name for p in (exports / GCP_TABLE).iterdir()) == [
        "invoice_month=202610",
        "invoice_month=202611",
    ]
    assert (exports / GCP_TABLE / "invoice_month=202610" / "rows-00001.json").is_file()

    for export_name in ("acme-actual-cost", "acme-amortized-cost"):
        for folder in ("20261001-20261031", "20261101-20261130"):
            (run,) = (exports / AZURE_ROOT / export_name / folder).iterdir()
            assert (run / "part_1_0001.csv").is_file()
            manifest = json.loads((run / "manifest.json").read_text())
            assert manifest["runInfo"]["runId"] == run.name
            assert (
                manifest["blobs"][0]["blobName"]
                == f"mca/acme-prod/{export_name}/{folder}/{run.name}/part_1_0001.csv"
            )
            assert manifest["blobs"][0]["byteCount"] == (run / "part_1_0001.csv").stat().st_size

    usage_files = sorted((exports / "usage").glob("usage-*.ndjson"))
    assert (
        usage_files[0].name == "usage-2026-10-01.ndjson" and usage_files[-1].name == "usage-2026-11-28.ndjson"
    )
    assert len(usage_files) == 59


def test_cur_files_decompress_and_have_the_real_cur2_header(exports):
    files = sorted((exports / AWS_EXPORT / "data").rglob("*.csv.gz"))
    assert files
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle))
        assert header == list(CUR2_HEADER)
    assert len(CUR2_HEADER) >= 100
    assert set(REQUIRED_CUR2_COLUMNS) <= set(CUR2_HEADER)
    frame = pd.concat(_read_cur(path) for path in files)
    assert set(frame.line_item_line_item_type) >= {
        "Usage", "SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee", "Credit", "Tax",
    }  # fmt: skip
    assert frame.bill_billing_period_start_date.str.fullmatch(r"\d{4}-\d\d-01T00:00:00\.000Z").all()
    tags = [json.loads(cell) for cell in frame.resource_tags]
    assert any(tag.get("user:team") == "search" for tag in tags)
    pool_tags = [tag for tag in tags if "user:pool" in tag]
    assert pool_tags and all("user:team" not in tag for tag in pool_tags), "shared pools carry no team tag"


def test_gcp_rows_are_bigquery_json_with_nested_credits(exports):
    timestamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
    credit_types = set()
    for month_dir in sorted((exports / GCP_TABLE).iterdir()):
        month = month_dir.name.removeprefix("invoice_month=")
        for path in sorted(month_dir.glob("rows-*.json")):
            for line in path.read_text().splitlines():
                row = json.loads(line, parse_float=Decimal)
                assert row["invoice"]["month"] == month
                assert timestamp.fullmatch(row["usage_start_time"]) and timestamp.fullmatch(
                    row["export_time"]
                )
                assert row["billing_account_id"] == "01ABCD-234567-89EF01"
                assert isinstance(row["cost"], Decimal) and row["currency"] == "USD"
                assert {"id", "description"} <= set(row["service"]) and "id" in row["project"]
                assert all(set(label) == {"key", "value"} for label in row["labels"])
                for credit in row["credits"]:
                    assert {"name", "amount", "id", "type"} <= set(credit) and credit["amount"] <= 0
                    credit_types.add(credit["type"])
    assert credit_types == {"SUSTAINED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT", "PROMOTION"}
    # The invoice month is Pacific time: October starts at 07:00 UTC.
    first = json.loads((exports / GCP_TABLE / "invoice_month=202610" / "rows-00001.json").open().readline())
    assert first["usage_start_time"] == "2026-10-01 07:00:00 UTC"


def test_azure_csvs_have_mca_camel_case_headers_for_actual_and_amortized(exports):
    frames = {}
    for dataset, export_name in (("actual", "acme-actual-cost"), ("amortized", "acme-amortized-cost")):
        (path,) = (exports / AZURE_ROOT / export_name / "20261001-20261031").glob("*/part_1_0001.csv")
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle))
        assert header == list(MCA_COLUMNS)
        assert set(REQUIRED_MCA_COLUMNS) <= set(header)
        frames[dataset] = pd.read_csv(path, dtype=str, keep_default_na=False)
    actual, amortized = frames["actual"], frames["amortized"]
    assert (actual.chargeType == "Purchase").sum() == 1
    assert "Purchase" not in set(amortized.chargeType)
    assert "UnusedReservation" in set(amortized.chargeType)
    covered = actual[(actual.pricingModel == "Reservation") & (actual.chargeType == "Usage")]
    assert len(covered) and (covered.costInBillingCurrency.map(Decimal) == 0).all()
    assert all(json.loads(tags) is not None for tags in actual.tags)
    assert actual.date.str.fullmatch(r"10/\d\d/2026").all()


# --- totals -------------------------------------------------------------------------------------------


def _aws_effective(row) -> Decimal:
    # Written out again here (not imported) so the test checks the generator independently.
    kind = row["line_item_line_item_type"]
    if kind == "SavingsPlanCoveredUsage":
        return _d(row["savings_plan_savings_plan_effective_cost"])
    if kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return Decimal(0)
    if kind == "SavingsPlanRecurringFee":
        return _d(row["savings_plan_total_commitment_to_date"]) - _d(row["savings_plan_used_commitment"])
    return _d(row["line_item_unblended_cost"])


def _recompute(exports: Path, entry: dict) -> tuple[int, Decimal, Decimal]:
    paths = [exports / name for name in entry["files"]]
    if entry["provider"] == "aws":
        frame = pd.concat(_read_cur(path) for path in paths)
        billed = sum((_d(v) for v in frame.line_item_unblended_cost), Decimal(0))
        effective = sum((_aws_effective(row) for row in frame.to_dict("records")), Decimal(0))
        return len(frame), billed, effective
    if entry["provider"] == "gcp":
        count, net = 0, Decimal(0)
        for path in paths:
            for line in path.read_text().splitlines():
                row = json.loads(line, parse_float=Decimal)
                count += 1
                net += row["cost"] + sum((c["amount"] for c in row["credits"]), Decimal(0))
        return count, net, net
    (path,) = paths
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    total = sum((Decimal(v) for v in frame.costInBillingCurrency), Decimal(0))
    return len(frame), total, total


def test_expected_totals_equal_sums_recomputed_from_the_files(exports, expected):
    keys = {(e["provider"], e["billing_period"], e["dataset"], e["version"]) for e in expected}
    assert keys == {
        ("aws", "2026-10", "cur2", "superseded"), ("aws", "2026-10", "cur2", "current"),
        ("aws", "2026-11", "cur2", "current"),
        ("gcp", "2026-10", "resource_v1", "current"), ("gcp", "2026-11", "resource_v1", "current"),
        ("azure", "2026-10", "actual", "current"), ("azure", "2026-10", "amortized", "current"),
        ("azure", "2026-11", "actual", "current"), ("azure", "2026-11", "amortized", "current"),
    }  # fmt: skip
    azure_sums = {}
    for entry in expected:
        rows, billed, effective = _recompute(exports, entry)
        assert entry["row_count"] == rows
        if entry["provider"] == "azure":
            assert Decimal(entry["native_cost_sum"]) == billed
            azure_sums[(entry["billing_period"], entry["dataset"])] = billed
        else:
            assert Decimal(entry["billed_cost"]) == billed
            assert Decimal(entry["effective_cost"]) == effective
    for entry in expected:
        if entry["provider"] == "azure":
            assert Decimal(entry["billed_cost"]) == azure_sums[(entry["billing_period"], "actual")]
            assert Decimal(entry["effective_cost"]) == azure_sums[(entry["billing_period"], "amortized")]
    # Realistic magnitude: a closed month across the three clouds.
    october = sum(Decimal(e["billed_cost"]) for e in expected if e["billing_period"] == "2026-10" and (
        e["version"] == "current" and e["dataset"] != "amortized"))  # fmt: skip
    assert Decimal(300_000) < october < Decimal(700_000)


def test_the_restated_aws_period_has_two_versions_and_the_manifest_names_the_later(exports, expected):
    versions = {
        e["version"]: e for e in expected if e["provider"] == "aws" and e["billing_period"] == "2026-10"
    }
    superseded, current = versions["superseded"], versions["current"]
    assert superseded["execution_id"] != current["execution_id"]
    assert superseded["billed_cost"] != current["billed_cost"]
    manifest = json.loads(
        (
            exports / AWS_EXPORT / "metadata" / "BILLING_PERIOD=2026-10" / "acme-cur2-daily-Manifest.json"
        ).read_text()
    )
    assert manifest["executionId"] == current["execution_id"]
    earlier = exports / "_versions/aws/BILLING_PERIOD=2026-10" / superseded["execution_id"]
    assert (
        json.loads((earlier / "acme-cur2-daily-Manifest.json").read_text())["executionId"]
        == superseded["execution_id"]
    )


# --- usage consistent with cost -----------------------------------------------------------------------


def _usage(exports: Path) -> list[dict]:
    records = []
    for path in sorted((exports / "usage").glob("*.ndjson")):
        records.extend(json.loads(line) for line in path.read_text().splitlines())
    return records


def test_shared_pool_usage_is_split_over_teams_and_endpoints_serve_their_tagged_team(exports):
    company = company_build(seed=42)
    teams_by_deployment = defaultdict(set)
    tokens_by_deployment_team = defaultdict(int)
    for record in _usage(exports):
        teams_by_deployment[record["deployment"]].add(record["team"])
        tokens_by_deployment_team[(record["deployment"], record["team"])] += record["input_tokens"]
        assert (
            len(record["latency_histogram"]) == 17 and sum(record["latency_histogram"]) == record["requests"]
        )
        assert record["bucket_seconds"] == 3600 and record["errors"] <= record["requests"]
    assert set(teams_by_deployment) == {d.slug for d in company.deployments}
    for deployment in company.deployments:
        if deployment.kind == POOL:
            teams = teams_by_deployment[deployment.slug]
            assert len(teams) > 1
            assert all(tokens_by_deployment_team[(deployment.slug, team)] > 0 for team in teams)
        else:
            assert teams_by_deployment[deployment.slug] == {deployment.tags()["team"]}


def test_per_token_bills_charge_exactly_the_tokens_the_gateway_reported(exports):
    reported = defaultdict(int)
    for record in _usage(exports):
        if record["deployment"] == "az-eus-gpt4o-aoai" and record["bucket_start"].startswith("2026-10-07"):
            reported["input"] += record["input_tokens"]
            reported["output"] += record["output_tokens"]
    (path,) = (exports / AZURE_ROOT / "acme-actual-cost" / "20261001-20261031").glob("*/part_1_0001.csv")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    day = frame[(frame.date == "10/07/2026") & frame.ResourceId.str.endswith("acme-aoai-assistant-eus")]
    billed = {row.meterName.split("-")[-2]: Decimal(row.quantity) * 1000 for row in day.itertuples()}
    assert billed == {"Inp": reported["input"], "Outp": reported["output"]}


# --- determinism ------------------------------------------------------------------------------------


def _digest(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        call_command("demo_exports", days=3, out=str(tmp_path / name), seed=seed, end_date="2026-11-03")
    first, second, other = (_digest(tmp_path / name) for name in "abc")
    assert first == second
    assert len(first) > 10
    assert first != other


# --- database commands -------------------------------------------------------------------------------


def _dimension_counts() -> tuple[int, int, int, int]:
    return tuple(model.objects.count() for model in (CloudAccount, Team, ServedModel, Deployment))


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_matches_the_exports():
    call_command("demo_seed")
    counts = _dimension_counts()
    call_command("demo_seed")
    assert counts == (3, 8, 12, 30)
    assert _dimension_counts() == counts
    company = company_build(seed=42)
    resource_ids = dict(Deployment.objects.values_list("slug", "resource_id"))
    assert resource_ids == {d.slug: d.resource_id for d in company.deployments}
    aws = CloudAccount.objects.get(slug="aws-prod")
    assert aws.source_settings["credentials"] == "ambient"
    aws.full_clean()


@pytest.mark.django_db
def test_load_demo_usage_twice_gives_the_same_usage_totals(tmp_path):
    call_command("demo_exports", days=2, out=str(tmp_path), seed=42, end_date="2026-11-02")
    call_command("demo_seed")
    expected_tokens = sum(record["input_tokens"] for record in _usage(tmp_path))
    expected_rows = len(_usage(tmp_path))

    def totals():
        return UsageRecord.objects.aggregate(
            rows=Count("id"), input=Sum("input_tokens"), output=Sum("output_tokens"), gpu=Sum("gpu_seconds")
        )

    call_command("load_demo_usage", dir=str(tmp_path / "usage"))
    first = totals()
    call_command("load_demo_usage", dir=str(tmp_path / "usage"))
    assert totals() == first
    assert first["rows"] == expected_rows and first["input"] == expected_tokens
    pool_teams = set(
        UsageRecord.objects.filter(deployment__slug="aws-use1-llama70b-eks-p5").values_list(
            "team__slug", flat=True
        )
    )
    assert pool_teams == {"search", "assistant", "research"}
