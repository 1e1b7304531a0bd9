"""Ingest throughput and memory against the physical floor (a bare COPY), measured in one run.

    python bench/ingest.py [--rows 1000000] [--rss-rows 500000,5000000] [--skip-rss]

Generates a CUR 2.0 gzipped CSV (60 real columns, a resource_tags map with four tags), then times
(a) `manage.py ingest_file` on it end to end in a child process and (b) a bare COPY of the same
file into a plain all-text table. Both run against a scratch database `inferensys_bench`. Peak RSS
of the ingest is measured at two sizes to show memory does not grow with the file.

Targets (issue #3): ingest throughput >= 0.5 x bare COPY; peak RSS < 500 MB at 5,000,000 rows and
<= 1.3 x the figure at 500,000 rows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, bench_env, create_database, report, run_child  # noqa: E402

# A scratch database, dropped and created by each run; name another to run beside someone else.
DATABASE = os.environ.get("INFERENSYS_BENCH_DATABASE", "inferensys_bench")

COLUMNS = [
    "identity_line_item_id", "identity_time_interval", "bill_invoice_id", "bill_invoicing_entity",
    "bill_billing_entity", "bill_bill_type", "bill_payer_account_id", "bill_payer_account_name",
    "bill_billing_period_start_date", "bill_billing_period_end_date", "line_item_usage_account_id",
    "line_item_usage_account_name", "line_item_line_item_type", "line_item_usage_start_date",
    "line_item_usage_end_date", "line_item_product_code", "line_item_usage_type", "line_item_operation",
    "line_item_availability_zone", "line_item_resource_id", "line_item_usage_amount",
    "line_item_normalization_factor", "line_item_normalized_usage_amount", "line_item_currency_code",
    "line_item_unblended_rate", "line_item_unblended_cost", "line_item_blended_rate",
    "line_item_blended_cost", "line_item_line_item_description", "line_item_tax_type",
    "line_item_legal_entity", "line_item_net_unblended_cost", "product_product_family",
    "product_region_code", "product_instance_type", "product_servicecode", "product_sku",
    "product_from_location", "product", "pricing_unit", "pricing_public_on_demand_cost",
    "pricing_public_on_demand_rate", "pricing_term", "pricing_purchase_option", "pricing_rate_code",
    "reservation_reservation_a_r_n", "reservation_effective_cost", "savings_plan_savings_plan_a_r_n",
    "savings_plan_savings_plan_effective_cost", "savings_plan_savings_plan_rate",
    "savings_plan_used_commitment", "savings_plan_total_commitment_to_date",
    "savings_plan_amortized_upfront_commitment_for_billing_period",
    "savings_plan_recurring_commitment_for_billing_period", "discount_total_discount",
    "split_line_item_split_cost", "resource_tags", "cost_category", "discount", "line_item_iam_principal",
]  # fmt: skip

TEAMS = ["search", "assistant", "ads-ranking", "support-bot", "fraud", "recsys", "platform", "research"]
INSTANCES = ["p5.48xlarge", "p4d.24xlarge", "g5.12xlarge", "ml.g5.2xlarge", "ml.p4d.24xlarge"]


def _fixed(values: np.ndarray, places: int) -> pa.Array:
    return pa.array(np.char.mod(f"%.{places}f", values))


def generate(path: Path, rows: int, chunk: int = 200_000) -> None:
    """Write `rows` CUR 2.0 rows for October 2026 into a gzipped CSV, chunk by chunk."""
    rng = np.random.default_rng(42)
    tag_values = np.array(
        [
            json.dumps(
                {"user:team": t, "user:model": f"model-{i % 12}", "user:env": "prod", "user:pool": "gpu-a"}
            )
            for i, t in enumerate(TEAMS * 3)
        ]
    )
    hours = np.array([f"2026-10-{d:02d}T{h:02d}:00:00Z" for d in range(1, 32) for h in range(24)])
    hour_ends = np.array([f"2026-10-{d:02d}T{h:02d}:59:59Z" for d in range(1, 32) for h in range(24)])
    with gzip.open(path, "wb", compresslevel=1) as raw:
        writer = None
        written = 0
        while written < rows:
            n = min(chunk, rows - written)
            hour_index = rng.integers(0, len(hours), n)
            amount = rng.uniform(0.01, 4.0, n)
            rate = rng.uniform(0.5, 98.0, n)
            cost = amount * rate
            columns: dict[str, pa.Array] = {name: pa.nulls(n, pa.string()) for name in COLUMNS}
            ids = np.char.add("li-", np.arange(written, written + n).astype(str))
            columns.update(
                identity_line_item_id=pa.array(ids),
                bill_bill_type=pa.array(np.full(n, "Anniversary")),
                bill_payer_account_id=pa.array(np.full(n, "123456789012")),
                bill_billing_period_start_date=pa.array(np.full(n, "2026-10-01T00:00:00Z")),
                bill_billing_period_end_date=pa.array(np.full(n, "2026-11-01T00:00:00Z")),
                line_item_usage_account_id=pa.array(np.full(n, "210987654321")),
                line_item_line_item_type=pa.array(np.full(n, "Usage")),
                line_item_usage_start_date=pa.array(hours[hour_index]),
                line_item_usage_end_date=pa.array(hour_ends[hour_index]),
                line_item_product_code=pa.array(np.full(n, "AmazonSageMaker")),
                line_item_usage_type=pa.array(np.full(n, "USE1-Hosting:ml.g5.2xlarge")),
                line_item_operation=pa.array(np.full(n, "RunInstance")),
                line_item_resource_id=pa.array(
                    np.char.add("arn:aws:sagemaker:us-east-1:210987654321:endpoint/ep-", (ids.astype("U12")))
                ),
                line_item_usage_amount=_fixed(amount, 6),
                line_item_currency_code=pa.array(np.full(n, "USD")),
                line_item_unblended_rate=_fixed(rate, 10),
                line_item_unblended_cost=_fixed(cost, 10),
                line_item_blended_cost=_fixed(cost, 10),
                line_item_net_unblended_cost=_fixed(cost, 10),
                line_item_line_item_description=pa.array(np.full(n, "$1.515 per Hosting ml.g5.2xlarge hour")),
                product_region_code=pa.array(np.full(n, "us-east-1")),
                product_instance_type=pa.array(np.array(INSTANCES)[rng.integers(0, len(INSTANCES), n)]),
                product_servicecode=pa.array(np.full(n, "AmazonSageMaker")),
                pricing_unit=pa.array(np.full(n, "Hrs")),
                pricing_public_on_demand_cost=_fixed(cost * 1.1, 10),
                pricing_term=pa.array(np.full(n, "OnDemand")),
                resource_tags=pa.array(tag_values[rng.integers(0, len(tag_values), n)]),
                cost_category=pa.array(np.full(n, "{}")),
            )
            table = pa.table([columns[name] for name in COLUMNS], names=COLUMNS)
            if writer is None:
                writer = pacsv.CSVWriter(
                    raw, table.schema, write_options=pacsv.WriteOptions(quoting_style="needed")
                )
            writer.write_table(table)
            written += n
        if writer is not None:
            writer.close()


def bare_copy(env: dict[str, str], path: Path) -> float:
    """Seconds for COPY of the decompressed file into a plain table of text columns."""
    code = f"""
import gzip, time, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
django.setup()
from django.db import connection
columns = {COLUMNS!r}
with connection.cursor() as cursor:
    cursor.execute("DROP TABLE IF EXISTS bench_bare_copy")
    cursor.execute("CREATE TABLE bench_bare_copy (" + ", ".join(c + " text" for c in columns) + ")")
started = time.perf_counter()
with connection.cursor() as cursor:
    statement = "COPY bench_bare_copy FROM STDIN WITH (FORMAT csv, HEADER true)"
    with cursor.connection.cursor().copy(statement) as copy:
        with gzip.open({str(path)!r}, "rb") as source:
            while block := source.read(1 << 20):
                copy.write(block)
    cursor.connection.commit()
print(time.perf_counter() - started)
with connection.cursor() as cursor:
    cursor.execute("DROP TABLE bench_bare_copy")
"""
    result = run_child([PYTHON, "-c", code], env)
    if result.returncode != 0:
        raise SystemExit(f"bare COPY failed:\n{result.output}")
    return float(result.output.strip().splitlines()[-1])


def ingest(env: dict[str, str], path: Path):
    result = run_child(
        [PYTHON, "manage.py", "ingest_file", str(path), "--account", "bench-aws", "--provider", "aws"], env
    )
    if result.returncode != 0:
        print(result.output[-4000:])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rss-rows", default="500000,5000000", help="two sizes for the memory figure")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()

    env = bench_env(DATABASE)
    create_database(env, DATABASE)
    with tempfile.TemporaryDirectory(prefix="inferensys-bench-") as tmp:
        work = Path(tmp)
        path = work / f"cur2-{args.rows}.csv.gz"
        started = time.perf_counter()
        generate(path, args.rows)
        print(
            f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s "
            f"({path.stat().st_size >> 20} MB gz)"
        )

        copy_seconds = bare_copy(env, path)
        copy_rate = args.rows / copy_seconds
        print(f"bare COPY: {copy_seconds:.1f} s, {copy_rate:,.0f} rows/s")

        result = ingest(env, path)
        ingest_ok = result.returncode == 0
        ingest_rate = args.rows / result.seconds if ingest_ok else 0.0
        print(
            f"ingest_file: {result.seconds:.1f} s, {ingest_rate:,.0f} rows/s, "
            f"peak RSS {result.peak_rss_mb:.0f} MB"
        )

        rss_small = rss_large = None
        if not args.skip_rss:
            small_rows, large_rows = (int(x) for x in args.rss_rows.split(","))
            for rows in (small_rows, large_rows):
                sized = work / f"cur2-{rows}.csv.gz"
                generate(sized, rows)
                create_database(env, DATABASE)
                measured = ingest(env, sized)
                print(
                    f"ingest_file {rows:,} rows: {measured.seconds:.1f} s, "
                    f"peak RSS {measured.peak_rss_mb:.0f} MB"
                )
                sized.unlink()
                if rows == small_rows:
                    rss_small = measured.peak_rss_mb if measured.returncode == 0 else float("inf")
                else:
                    rss_large = measured.peak_rss_mb if measured.returncode == 0 else float("inf")

    report("ingest_rows_per_s", ingest_rate, "rows/s", ">", 0)
    report("bare_copy_rows_per_s", copy_rate, "rows/s", ">", 0)
    report("ingest_vs_copy_ratio", ingest_rate / copy_rate, "x", ">=", 0.5)
    if rss_small is not None and rss_large is not None:
        report("ingest_peak_rss_large", rss_large, "MB", "<", 500)
        report("ingest_rss_growth", rss_large / rss_small, "x", "<=", 1.3)


if __name__ == "__main__":
    main()
