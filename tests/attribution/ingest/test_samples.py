"""Every real sample in ../shared/data/billing, table-driven: its detected format, the billing
periods it touches, rows loaded and rejected, and BilledCost / EffectiveCost in the database to
1e-10 (the column scale). Where the BilledCost rule is "the source column as is" (AWS unblended,
FOCUS BilledCost, GCP cost + credits) the source total is also recomputed here from the file.

The table documents known quirks of the samples (see their README):
- aws/koku/test_cur.csv(.gz): every row has one field fewer than the (fused) header -> 19 rejected.
- aws/koku/November-2023-None.csv: two misaligned rows -> rejected with their lines.
- azure/koku/azure_version_2.csv: BillingCurrencyCode "MC" -> 5 rejected.
- azure/opencost-billingexports/values_Template.csv: every row lacks the last column -> 87 rejected.
- focus spec purchase scenarios 2 and 3: ChargePeriodEnd "2023-02-01T30:00:00Z" (hour 30) -> rejected.
- gcp/koku/tmp_example.csv: 9 rows end before they start -> rejected.
- Not billing exports (refused as unknown formats): CUR manifests, Azure/BigQuery REST examples,
  and gcp/koku/evidence-2019-06-03.csv, the deprecated GCP "file export" CSV (retired 2019; not
  supported).
"""

from __future__ import annotations

import ast
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from attribution.ingest import services
from attribution.ingest.detect import format_detect
from attribution.ingest.errors import UnknownFormatError
from tests.attribution.conftest import csv_rows
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.django_db

BILLING = SHARED_DATA / "billing"

# path: (format, [(period, rows_loaded, rows_rejected, billed_cost, effective_cost), ...])
SAMPLES: dict[str, tuple[str, list[tuple[str, int, int, str, str]]]] = {
    "aws/koku/2022-07-01-alt-columns.csv": ("aws-cur2", [("2022-07", 2, 0, "0E-10", "0E-10")]),
    "aws/koku/2023-06-01-not-final.csv": (
        "aws-cur-legacy",
        [("2023-06", 3, 0, "30.0000000000", "0.3000000000")],
    ),
    "aws/koku/2023-06-01.csv": ("aws-cur-legacy", [("2023-06", 3, 0, "30.0000000000", "0.3000000000")]),
    "aws/koku/November-2023-None.csv": (
        "aws-cur-legacy",
        [("2023-11", 24, 2, "3.4696976218", "4.0390000000")],
    ),
    "aws/koku/test_cur.csv": ("aws-cur-legacy", [("2018-06", 0, 19, "0E-10", "0E-10")]),
    "aws/koku/test_cur.csv.gz": ("aws-cur-legacy", [("2018-06", 0, 19, "0E-10", "0E-10")]),
    (
        "aws/koku-cur-s3-layout/koku-local/20180801-20180901/16e57707-f9e3-49be-8be6-b84e684b5194/"
        "koku-local-1.csv.gz"
    ): (
        "aws-cur-legacy",
        [
            ("2018-06", 3300, 0, "34649.9732726133", "34649.9732726133"),
            ("2018-07", 9304, 0, "100267.7386496420", "100267.7386496420"),
            ("2018-08", 776, 0, "8310.0517559311", "8310.0517559311"),
        ],
    ),
    "aws/legacy-cur-parquet/Oct2018-WorkshopCUR-00001.snappy.parquet": (
        "aws-cur-parquet",
        [("2018-10", 119307, 0, "4064.4831315379", "4195.9571093179")],
    ),
    "azure/finops-toolkit-ea/EA_ActualCost_Small.csv": (
        "azure-cost-details",
        [("2023-09", 11, 0, "8.5450077867", "5.2950077867")],
    ),
    "azure/finops-toolkit-ea/EA_AmortizedCost_Small.csv": (
        "azure-cost-details",
        [("2023-09", 28, 0, "15.7977801361", "16.2969321366")],
    ),
    "azure/finops-toolkit-ea/EA_NoRows.csv": ("azure-cost-details", []),
    "azure/koku/azure_camelCased.csv": (
        "azure-cost-details",
        [("2019-07", 3, 0, "0.0001101600", "0.0001101600")],
    ),
    "azure/koku/azure_version_2.csv": ("azure-cost-details", [("2020-09", 0, 5, "0E-10", "0E-10")]),
    "azure/koku/camel_azure_version_2.csv": (
        "azure-cost-details",
        [("2023-08", 4, 0, "0.0000262412", "0.0000262412")],
    ),
    "azure/koku/costreport_a243c6f2-199f-4074-9a2c-40e671cf1584.csv": (
        "azure-cost-details",
        [("2019-07", 3, 0, "0.0001101600", "0.0001101600")],
    ),
    "azure/opencost-billingexports/headersets_BOM.csv": (
        "azure-cost-details",
        [("2022-11", 1, 0, "0E-10", "0E-10")],
    ),
    "azure/opencost-billingexports/headersets_Enterprise.csv": (
        "azure-cost-details",
        [("2021-05", 1, 0, "0E-10", "0E-10")],
    ),
    "azure/opencost-billingexports/headersets_EnterpriseCamel.csv": (
        "azure-cost-details",
        [("2021-02", 1, 0, "0.0120000000", "0.0120000000")],
    ),
    "azure/opencost-billingexports/headersets_German.csv": (
        "azure-cost-details",
        [("2021-02", 1, 0, "0.0750000000", "0.0750000000")],
    ),
    "azure/opencost-billingexports/headersets_PayAsYouGo.csv": (
        "azure-cost-details",
        [("2021-02", 1, 0, "0.0750000000", "0.0750000000")],
    ),
    "azure/opencost-billingexports/headersets_YA.csv": (
        "azure-cost-details",
        [("2021-02", 1, 0, "0.0750000000", "0.0750000000")],
    ),
    "azure/opencost-billingexports/values_MissingBrackets.csv": (
        "azure-cost-details",
        [("2021-02", 1, 0, "4.0000000000", "4.0000000000")],
    ),
    "azure/opencost-billingexports/values_Template.csv": (
        "azure-cost-details",
        [("2021-02", 0, 87, "0E-10", "0E-10")],
    ),
    "azure/opencost-billingexports/values_VirtualMachine.csv": (
        "azure-cost-details",
        [("2021-02", 1, 0, "4.0000000000", "4.0000000000")],
    ),
    "focus/focus-spec-scenarios/commitment_discount_purchase_scenario_1.csv": (
        "focus",
        [("2023-01", 1, 0, "8760.0000000000", "0E-10")],
    ),
    "focus/focus-spec-scenarios/commitment_discount_purchase_scenario_2.csv": (
        "focus",
        [("2023-01", 2, 1, "2.0000000000", "0E-10")],
    ),
    "focus/focus-spec-scenarios/commitment_discount_purchase_scenario_3.csv": (
        "focus",
        [("2023-01", 3, 1, "4381.0000000000", "0E-10")],
    ),
    "focus/focus-spec-scenarios/commitment_discount_usage_scenario_1.csv": (
        "focus",
        [("2023-01", 1, 0, "0E-10", "1.0000000000")],
    ),
    "focus/focus-spec-scenarios/commitment_discount_usage_scenario_2.csv": (
        "focus",
        [("2023-01", 1, 0, "0E-10", "1.0000000000")],
    ),
    "focus/focus-spec-scenarios/commitment_discount_usage_scenario_3.csv": (
        "focus",
        [("2023-01", 2, 0, "0E-10", "1.0000000000")],
    ),
    "focus/focus-spec-scenarios/commitment_discount_usage_scenario_4.csv": (
        "focus",
        [("2023-01", 2, 0, "0.5000000000", "1.5000000000")],
    ),
    (
        "focus/focus-spec-scenarios/"
        "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_1_resource.csv"
    ): (
        "focus",
        [("2023-01", 3, 0, "2.7500000000", "2.7500000000")],
    ),
    (
        "focus/focus-spec-scenarios/"
        "one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources.csv"
    ): (
        "focus",
        [("2023-01", 3, 0, "2.0000000000", "2.0000000000")],
    ),
    (
        "focus/focus-spec-scenarios/"
        "one_hundred_percent_utilization_without_commitment_discount_flexibility.csv"
    ): (
        "focus",
        [("2023-01", 2, 0, "1.5000000000", "1.5000000000")],
    ),
    "focus/focus-spec-scenarios/zero_percent_utilization_without_commitment_discount_flexibility.csv": (
        "focus",
        [("2023-01", 3, 0, "3.5000000000", "3.5000000000")],
    ),
    "gcp/koku/202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv": (
        "gcp-csv",
        [("2020-11", 25, 0, "0E-10", "0E-10")],
    ),
    "gcp/koku/2022-08-01_5.csv": ("gcp-csv", [("2022-08", 9, 0, "0.0000120000", "0.0000120000")]),
    "gcp/koku/2024-03-01_5.csv": (
        "gcp-csv",
        [("2024-02", 3, 0, "0E-10", "0E-10"), ("2024-03", 3, 0, "0E-10", "0E-10")],
    ),
    "gcp/koku/tmp_example.csv": ("gcp-csv", [("2020-10", 283, 9, "0.3554650000", "0.3554650000")]),
}

NOT_EXPORTS = [
    "aws/ice-cur-manifests/manifest-2018-01.json",
    "aws/ice-cur-manifests/manifest-2019-01.json",
    "aws/ice-cur-manifests/manifest-2019-12.json",
    "aws/ice-cur-manifests/manifestTest.json",
    "aws/koku-cur-s3-layout/koku-local/20180801-20180901/16e57707-f9e3-49be-8be6-b84e684b5194/koku-local-Manifest.json",
    "aws/koku-cur-s3-layout/koku-local/20180801-20180901/koku-local-Manifest.json",
    "azure/cost-management-query-api-examples/BillingAccountQuery.json",
    "azure/cost-management-query-api-examples/GenerateCostDetailsReportBySubscriptionAndTimePeriod.json",
    "azure/cost-management-query-api-examples/MCABillingAccountQueryGrouping.json",
    "azure/cost-management-query-api-examples/SubscriptionQuery.json",
    "azure/cost-management-query-api-examples/SubscriptionQueryGrouping.json",
    "gcp/bigquery-rest-examples/jobs_query_response_python-bigquery_test_table_arrow.json",
    "gcp/koku/evidence-2019-06-03.csv",
]

PROVIDERS = {"aws": "aws", "azure": "azure", "gcp": "gcp", "focus": "oci"}


SCALE = Decimal("1e-10")


def _d(value) -> Decimal:
    """A source amount as the database stores it (numeric(24, 10), rounded half-even)."""
    return Decimal(value or 0).quantize(SCALE, rounding=ROUND_HALF_EVEN)


def _source_billed(path: Path, source_format: str) -> Decimal | None:
    """BilledCost of the whole file, recomputed here where the rule is the source column as is."""
    if path.suffix == ".parquet":
        return None  # covered by test_ingest_parquet.py
    rows = csv_rows(path)
    if source_format == "focus":
        return sum((_d(r["BilledCost"]) for r in rows), Decimal(0))
    if source_format.startswith("aws"):
        column = (
            "line_item_unblended_cost" if "line_item_unblended_cost" in rows[0] else "lineItem/UnblendedCost"
        )
        return sum((_d(r[column]) for r in rows), Decimal(0))
    if source_format == "gcp-csv":
        total = Decimal(0)
        for r in rows:
            total += _d(r["cost"]) + sum(
                (_d(repr(c["amount"])) for c in ast.literal_eval(r["credits"] or "[]")), Decimal(0)
            )
        return total
    return None


def test_the_table_covers_every_sample_file():
    files = {str(p.relative_to(BILLING)) for p in BILLING.rglob("*") if p.is_file() and p.name != "README.md"}
    assert files == set(SAMPLES) | set(NOT_EXPORTS)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_sample_ingests_with_its_expected_rows_and_totals(name):
    source_format, expected = SAMPLES[name]
    path = BILLING / name
    account = services.cloud_account_get_or_create(slug="sample", provider=PROVIDERS[name.split("/")[0]])

    assert format_detect(path).name == source_format
    planned = services.ingest_runs_create(account=account, paths=[path])
    runs = [services.ingest_run_execute(run_id=run.pk) for run in planned]

    assert all(run.state == "succeeded" for run in runs)
    actual = [
        (
            f"{run.billing_period_start:%Y-%m}",
            run.rows_loaded,
            run.rows_rejected,
            run.database_sums["billed_cost"],
            run.database_sums["effective_cost"],
        )
        for run in runs
    ]
    assert [(p, n, r, Decimal(b), Decimal(e)) for p, n, r, b, e in actual] == [
        (p, n, r, Decimal(b), Decimal(e)) for p, n, r, b, e in expected
    ]
    for run in runs:
        # Nothing lost: source = database + what the rejected rows still showed.
        assert Decimal(run.source_sums["billed_cost"]) == Decimal(run.database_sums["billed_cost"]) + Decimal(
            run.source_sums["rejected_billed_cost"]
        )
        assert run.rows_in_source == run.rows_loaded + run.rows_rejected
    recomputed = _source_billed(path, source_format) if not any(run.rows_rejected for run in runs) else None
    if recomputed is not None:
        assert sum((Decimal(run.database_sums["billed_cost"]) for run in runs), Decimal(0)) == recomputed


@pytest.mark.parametrize("name", NOT_EXPORTS)
def test_files_that_are_not_billing_exports_are_refused(name):
    with pytest.raises(UnknownFormatError, match="unrecognised billing export format"):
        format_detect(BILLING / name)
