"""Allocation time against the physical floor (one plain SQL aggregate over the same line items).

    python bench/allocate.py [--line-items 10000000] [--usage-rows 1000000]

Builds a scratch database `inferensys_bench_allocate`, then generates one month (October 2026) of
line items and gateway usage directly in Postgres (INSERT ... SELECT over generate_series, a day
at a time): 50% of the cost tagged with a team (direct), 35% on ten shared GPU pools (tag
`pool=pool-N` plus the deployment; one allocation rule per pool, methods tokens, requests,
gpu_seconds, even and fixed), 10% untagged, 5% on deployments without a rule; 1% of the line
items are negative (credits). Usage goes into UsageRecord only (minute buckets), so allocation
aggregates the raw buckets itself: the slower of its two paths.

Times, in one run on a warm cache:
(a) a full allocation of the month (allocation_run for all 31 days, conservation check included);
(b) one plain aggregate pass over the same line items: SUM(billed, effective) GROUP BY day,
    account, team;
(a') the same, with the conservation check reading the line items again instead of DailyCost;
(c) re-allocating one day after a late bill (extra line items for one day, then that day only).

Targets (issue #5): (a) < 120 s and (a) <= 3 x (b). Exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, bench_env, create_database, report  # noqa: E402

DATABASE = "inferensys_bench_allocate"
MONTH_START = dt.date(2026, 10, 1)
DAYS = 31
TEAMS = 20
POOLS = 10
OTHER_DEPLOYMENTS = 10  # direct endpoints and pools without a rule
METHODS = ("tokens", "requests", "gpu_seconds", "even", "fixed")


def _setup_dimensions() -> dict:
    from attribution.models import (
        AllocationRule,
        AllocationShare,
        CloudAccount,
        Deployment,
        IngestRun,
        ServedModel,
        TagSet,
        Team,
    )

    account = CloudAccount.objects.create(provider="aws", name="Bench", slug="bench-aws")
    TagSet.objects.bulk_create(
        [TagSet(id=NO_TAGS, tags={}, normalized_tags={})]
        + [
            TagSet(
                id=POOL_TAGS + i,
                tags={},
                normalized_tags={"pool": f"pool-{i}", "deployment": f"pool-dep-{i}"},
            )
            for i in range(POOLS)
        ]
        + [TagSet(id=TEAM_TAGS + i, tags={}, normalized_tags={"team": f"team-{i}"}) for i in range(TEAMS)]
    )
    teams = [Team.objects.create(name=f"Team {i}", slug=f"team-{i}") for i in range(TEAMS)]
    models = [ServedModel.objects.create(name=f"model-{i}", slug=f"model-{i}") for i in range(5)]
    pools = [
        Deployment.objects.create(
            slug=f"pool-dep-{i}",
            model=models[i % len(models)],
            account=account,
            provider="aws",
            region="us-east-1",
            pricing_mode="reserved",
            gpu_count=8,
        )
        for i in range(POOLS)
    ]
    others = [
        Deployment.objects.create(
            slug=f"other-dep-{i}",
            model=models[i % len(models)],
            account=account,
            provider="aws",
            region="us-east-1",
            pricing_mode="on_demand",
            gpu_count=8,
        )
        for i in range(OTHER_DEPLOYMENTS)
    ]
    for i in range(len(pools)):
        method = METHODS[i % len(METHODS)]
        rule = AllocationRule.objects.create(
            name=f"pool-{i}",
            match_tag_key="pool",
            match_tag_value=f"pool-{i}",
            method=method,
            idle_policy="own_line" if i % 2 else "spread",
        )
        if method == "fixed":
            for j, percent in enumerate(("50", "30", "20")):
                AllocationShare.objects.create(rule=rule, team=teams[(i + j) % TEAMS], percent=percent)
    run = IngestRun.objects.create(
        account=account,
        billing_period_start=MONTH_START,
        billing_period_end=dt.date(2026, 11, 1),
        state="succeeded",
    )
    from attribution.ingest import loader

    # The run's partition of the line items, as an ingest leaves it (attribution/ingest/loader.py).
    loader.partition_create(run_id=run.pk)
    loader.partition_attach(run_id=run.pk)
    return {
        "account": account.pk,
        "run": run.pk,
        "teams": [t.pk for t in teams],
        "pools": [d.pk for d in pools],
        "pool_models": [d.model_id for d in pools],
        "others": [d.pk for d in others],
        "other_models": [d.model_id for d in others],
    }


def _not_null_blank_columns() -> list[tuple[str, str]]:
    """Every NOT NULL text/json column of the line item table, with an empty value."""
    from attribution.models import CostLineItem

    given = {
        "account_id", "ingest_run_id", "source_line", "billing_period_start", "billed_cost",
        "effective_cost", "billing_currency", "charge_period_start", "charge_period_end",
        "billing_period_start_at", "billing_period_end_at", "charge_category", "provider_name",
        "billing_account_id", "service_name", "resource_id", "tag_set_id",
        "team_id", "model_id", "deployment_id", "list_cost",
    }  # fmt: skip
    columns = []
    for field in CostLineItem._meta.concrete_fields:
        if field.primary_key or field.null or field.column in given:
            continue
        columns.append((field.column, "'{}'::jsonb" if field.get_internal_type() == "JSONField" else "''"))
    return columns


# One day of line items. g runs over the day's rows; `kind` (g % 20) picks the population:
# 0-9 direct (team), 10-16 shared pool (no team, pool tag), 17-18 untagged, 19 deployment without rule.
_LINE_ITEMS_SQL = """
INSERT INTO attribution_costlineitem (
    account_id, ingest_run_id, source_line, billing_period_start, billed_cost, effective_cost, list_cost,
    billing_currency, charge_period_start, charge_period_end, billing_period_start_at,
    billing_period_end_at, charge_category, provider_name, billing_account_id, service_name,
    resource_id, tag_set_id, team_id, model_id, deployment_id {extra_columns})
SELECT %(account)s, %(run)s, %(offset)s + g, %(period)s,
       amount, amount * 0.93, abs(amount) * 1.1,
       'USD', %(day)s + make_interval(hours => g %% 24), %(day)s + make_interval(hours => g %% 24 + 1),
       %(period)s, %(period_end)s,
       CASE WHEN g %% 100 = 7 THEN 'Credit' ELSE 'Usage' END, 'AWS', '123456789012', 'AmazonEC2',
       CASE WHEN kind BETWEEN 10 AND 16 THEN 'i-pool-' || pool ELSE 'i-' || (g %% 997) END,
       -- tag sets made by _setup_dimensions: pool and deployment tags, a team tag, none
       CASE WHEN kind BETWEEN 10 AND 16 THEN {pool_tags} + pool
            WHEN kind < 10 THEN {team_tags} + (g %% {teams})
            ELSE {no_tags} END,
       CASE WHEN kind < 10 THEN (%(teams)s::bigint[])[1 + g %% {teams}] END,
       CASE WHEN kind < 10 THEN (%(other_models)s::bigint[])[1 + g %% {others}]
            WHEN kind BETWEEN 10 AND 16 THEN (%(pool_models)s::bigint[])[1 + pool]
            WHEN kind = 19 THEN (%(other_models)s::bigint[])[1 + g %% {others}] END,
       CASE WHEN kind < 10 THEN (%(others)s::bigint[])[1 + g %% {others}]
            WHEN kind BETWEEN 10 AND 16 THEN (%(pools)s::bigint[])[1 + pool]
            WHEN kind = 19 THEN (%(others)s::bigint[])[1 + g %% {others}] END
       {extra_values}
FROM (
    SELECT g, g %% 20 AS kind, (g / 20) %% {pools} AS pool,
           -- 10 decimals, 1%% negative (credits)
           (CASE WHEN g %% 100 = 7 THEN -1 ELSE 1 END)
             * ((hashint8(g + %(offset)s) & 2147483647) %% 40000000000)::numeric / 10000000000 AS amount
    FROM generate_series(1, %(rows)s) g
) s
"""

# Usage: minute buckets; combo = g / minutes picks (pool deployment, team, reporter) uniquely.
_USAGE_SQL = """
INSERT INTO attribution_usagerecord (
    bucket_start, bucket_seconds, reporter, deployment_id, team_id, model_id, requests, input_tokens,
    output_tokens, errors, gpu_seconds, latency_ms_sum, latency_histogram, batch_id)
SELECT %(start)s + make_interval(mins => minute), 60, 'gw-' || (combo / ({pools} * {teams})),
       (%(pools)s::bigint[])[1 + combo %% {pools}], (%(teams)s::bigint[])[1 + (combo / {pools}) %% {teams}],
       (%(pool_models)s::bigint[])[1 + combo %% {pools}],
       10 + h %% 90, (10 + h %% 90) * (500 + h %% 1500), (10 + h %% 90) * (100 + h %% 400), h %% 3,
       round(((h %% 6000) / 100.0)::numeric, 3), 0, '[]'::jsonb, 'bench'
FROM (
    SELECT g, g %% {minutes} AS minute, g / {minutes} AS combo, hashint8(g) & 2147483647 AS h
    FROM generate_series(0, %(rows)s - 1) g
) s
"""


# Tag set ids of the generated line items (content-addressed in real ingests; fixed here).
NO_TAGS, POOL_TAGS, TEAM_TAGS = 1, 1000, 2000


def _line_items_sql() -> str:
    extra = _not_null_blank_columns()
    return _LINE_ITEMS_SQL.format(
        extra_columns="".join(f", {column}" for column, _ in extra),
        extra_values="".join(f", {value}" for _, value in extra),
        teams=TEAMS,
        others=OTHER_DEPLOYMENTS,
        pools=POOLS,
        no_tags=NO_TAGS,
        pool_tags=POOL_TAGS,
        team_tags=TEAM_TAGS,
    )


def generate(ids: dict, line_items: int, usage_rows: int) -> None:
    from django.db import connection

    line_items_sql = _line_items_sql()
    per_day = line_items // DAYS
    with connection.cursor() as cursor:
        # Bench only: skip the deferred FK triggers (millions of queued events); the ids are valid.
        cursor.execute("SET session_replication_role = replica")
        offset = 0
        for index in range(DAYS):
            rows = per_day if index < DAYS - 1 else line_items - per_day * (DAYS - 1)
            day = dt.datetime.combine(MONTH_START + dt.timedelta(days=index), dt.time(), tzinfo=dt.UTC)
            cursor.execute(
                line_items_sql,
                {
                    **ids,
                    "offset": offset,
                    "rows": rows,
                    "day": day,
                    "period": MONTH_START,
                    "period_end": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                },
            )
            offset += rows
        minutes = DAYS * 24 * 60
        cursor.execute(
            _USAGE_SQL.format(pools=POOLS, teams=TEAMS, minutes=minutes),
            {**ids, "rows": usage_rows, "start": dt.datetime.combine(MONTH_START, dt.time(), tzinfo=dt.UTC)},
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        # The run's ChargePeriodStart span, as the ingest swap records it: readers find runs by it.
        cursor.execute(
            """UPDATE attribution_ingestrun
                  SET charge_period_first = span.first, charge_period_last = span.last
                 FROM (SELECT MIN(charge_period_start) AS first, MAX(charge_period_start) AS last
                         FROM attribution_costlineitem WHERE ingest_run_id = %(run)s) span
                WHERE id = %(run)s""",
            ids,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE attribution_costlineitem")
        cursor.execute("VACUUM ANALYZE attribution_usagerecord")


def aggregate_pass() -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (charge_period_start AT TIME ZONE 'UTC')::date, account_id, team_id,
                      SUM(billed_cost), SUM(effective_cost)
               FROM attribution_costlineitem GROUP BY 1, 2, 3"""
        )
        cursor.fetchall()
    return time.perf_counter() - started


def late_bill(ids: dict, day: dt.date, rows: int) -> None:
    from django.db import connection

    sql = _line_items_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                **ids,
                "offset": 10**12,
                "rows": rows,
                "day": dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC),
                "period": MONTH_START,
                "period_end": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--line-items", type=int, default=10_000_000)
    parser.add_argument("--usage-rows", type=int, default=1_000_000)
    parser.add_argument("--late-rows", type=int, default=20_000, help="line items of the late bill")
    args = parser.parse_args()
    max_usage = DAYS * 24 * 60 * POOLS * TEAMS * 10
    if args.usage_rows > max_usage:
        raise SystemExit(f"--usage-rows is at most {max_usage:,} (unique minute buckets)")

    env = bench_env(DATABASE)
    create_database(env, DATABASE)
    os.environ.update(env)
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from attribution.allocation.services import allocation_run
    from attribution.models import AllocatedCost

    ids = _setup_dimensions()
    started = time.perf_counter()
    generate(ids, args.line_items, args.usage_rows)
    print(
        f"generated {args.line_items:,} line items and {args.usage_rows:,} usage rows "
        f"in {time.perf_counter() - started:.1f} s"
    )

    # DailyCost is part of ingesting (rebuilt in the swap); the conservation check reads it.
    from attribution.ingest.services import daily_cost_rebuild

    started = time.perf_counter()
    daily_cost_rebuild(account_id=ids["account"], billing_period_start=MONTH_START)
    print(f"DailyCost rebuilt (part of ingest, not timed below) in {time.perf_counter() - started:.1f} s")

    days = [MONTH_START + dt.timedelta(days=i) for i in range(DAYS)]
    aggregate_pass()  # warm the cache: both timed passes read the same pages from memory
    aggregate_seconds = aggregate_pass()
    print(f"(b) aggregate pass: {aggregate_seconds:.2f} s")

    result = allocation_run(account_id=ids["account"], days=days)
    print(
        f"(a) full allocation: {result.seconds:.2f} s, {result.rows_written:,} rows, {result.pools:,} pools, "
        f"{len(result.violations)} conservation violations"
    )

    strict = allocation_run(account_id=ids["account"], days=days, check="line_items")
    print(
        f"(a') full allocation checked against the line items instead of DailyCost: {strict.seconds:.2f} s, "
        f"{len(strict.violations)} violations"
    )

    late_day = MONTH_START + dt.timedelta(days=14)
    late_bill(ids, late_day, args.late_rows)
    daily_cost_rebuild(account_id=ids["account"], billing_period_start=MONTH_START)
    late = allocation_run(account_id=ids["account"], days=[late_day])
    other_days = AllocatedCost.objects.filter(account_id=ids["account"]).exclude(day=late_day).count()
    print(
        f"(c) re-allocation of {late_day} after a late bill of {args.late_rows:,} line items: "
        f"{late.seconds:.2f} s, {late.rows_written:,} rows, {len(late.violations)} violations "
        f"(other days' rows untouched: {other_days:,})"
    )

    report("allocation_full_month_seconds", result.seconds, "s", "<", 120)
    report("aggregate_pass_seconds", aggregate_seconds, "s", ">", 0)
    report("allocation_vs_aggregate_ratio", result.seconds / aggregate_seconds, "x", "<=", 3)
    report("reallocate_one_day_seconds", late.seconds, "s", "<", result.seconds)
    report("allocation_full_month_line_item_check_seconds", strict.seconds, "s", "<", 120)
    report(
        "conservation_violations",
        len(result.violations) + len(strict.violations) + len(late.violations),
        "",
        "<=",
        0,
    )


if __name__ == "__main__":
    main()
