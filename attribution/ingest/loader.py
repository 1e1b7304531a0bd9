"""The SQL half of the pipeline: COPY into staging, dimension resolution, Azure pairing, the
atomic swap, and the DailyCost rebuild. Bulk rows never pass through the ORM."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from attribution.choices import COST_COLUMNS

STAGING_TABLE = "attribution_costlineitem_staging"

# Columns a parser fills, in COPY order (ingest_run_id and account_id are prepended).
ROW_COLUMNS: tuple[str, ...] = (
    "source_line", "source_file", "dataset", "pair_key", "billing_period_start",
    "billed_cost", "effective_cost", "list_cost", "contracted_cost", "billing_currency",
    "charge_period_start", "charge_period_end", "billing_period_start_at", "billing_period_end_at",
    "charge_category", "charge_class", "charge_description", "charge_frequency",
    "provider_name", "publisher_name", "invoice_issuer_name", "billing_account_id", "billing_account_name",
    "sub_account_id", "sub_account_name", "region_id", "region_name", "availability_zone",
    "resource_id", "resource_name", "resource_type", "service_name", "service_category",
    "sku_id", "sku_price_id", "pricing_category", "pricing_quantity", "pricing_unit",
    "consumed_quantity", "consumed_unit", "commitment_discount_id", "tags", "normalized_tags",
)  # fmt: skip
_DEFAULTS: dict[str, Any] = {"source_file": 0, "dataset": "", "pair_key": ""}
_NULLABLE = {"list_cost", "contracted_cost", "pricing_quantity", "consumed_quantity"}

# Line item columns with a length limit; values are trimmed on the way in (staging has none).
LINE_ITEM_LIMITS: dict[str, int] = {
    "billing_currency": 3, "charge_category": 20, "charge_class": 20, "charge_frequency": 20,
    "provider_name": 100, "publisher_name": 200, "invoice_issuer_name": 200, "billing_account_id": 200,
    "billing_account_name": 300, "sub_account_id": 200, "sub_account_name": 300, "region_id": 64,
    "region_name": 100, "availability_zone": 64, "resource_type": 200, "service_name": 200,
    "service_category": 64, "sku_id": 200, "sku_price_id": 300, "pricing_category": 20,
    "pricing_unit": 100, "consumed_unit": 100,
}  # fmt: skip
LINE_ITEM_COLUMNS: tuple[str, ...] = tuple(
    c for c in ROW_COLUMNS if c not in ("source_file", "dataset", "pair_key")
) + ("team_id", "model_id", "deployment_id")


def staging_clear(*, run_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM attribution_costlineitem_staging WHERE ingest_run_id = %s", [run_id])  # noqa: S608


def staging_copy(*, run_id: int, account_id: int, rows: Iterable[dict[str, Any]]) -> int:
    """COPY one chunk of parsed rows into staging; returns the number written."""
    columns = ("ingest_run_id", "account_id", *ROW_COLUMNS)
    statement = f"COPY attribution_costlineitem_staging ({', '.join(columns)}) FROM STDIN"
    written = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                values: list[Any] = [run_id, account_id]
                for column in ROW_COLUMNS:
                    value = row.get(column, _DEFAULTS.get(column, None if column in _NULLABLE else ""))
                    if column in ("tags", "normalized_tags"):
                        value = json.dumps(value or {}, ensure_ascii=False)
                    values.append(value)
                copy.write_row(values)
                written += 1
    return written


def staging_resolve_dimensions(*, run_id: int) -> None:
    """Team, model and deployment from normalised tags, then deployment by resource id."""
    statements = [
        """UPDATE attribution_costlineitem_staging s SET team_id = t.id FROM attribution_team t
            WHERE s.ingest_run_id = %(run)s AND s.normalized_tags ? 'team'
              AND t.slug = lower(s.normalized_tags->>'team')""",
        """UPDATE attribution_costlineitem_staging s SET model_id = m.id FROM attribution_model m
            WHERE s.ingest_run_id = %(run)s AND s.normalized_tags ? 'model'
              AND m.slug = lower(s.normalized_tags->>'model')""",
        """UPDATE attribution_costlineitem_staging s SET deployment_id = d.id FROM attribution_deployment d
            WHERE s.ingest_run_id = %(run)s AND s.normalized_tags ? 'deployment'
              AND d.slug = lower(s.normalized_tags->>'deployment')""",
        # Resource ids: Azure's are case-insensitive, AWS ARNs and GCP names are lower-case in
        # practice, so comparing lower-cased is safe for all three.
        """UPDATE attribution_costlineitem_staging s SET deployment_id = d.id FROM attribution_deployment d
            WHERE s.ingest_run_id = %(run)s AND s.deployment_id IS NULL AND s.resource_id <> ''
              AND d.resource_id <> '' AND lower(d.resource_id) = lower(s.resource_id)
              AND (d.account_id IS NULL OR d.account_id = s.account_id)""",
        """UPDATE attribution_costlineitem_staging s SET model_id = d.model_id FROM attribution_deployment d
            WHERE s.ingest_run_id = %(run)s AND s.model_id IS NULL AND s.deployment_id = d.id""",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, {"run": run_id})


def staging_pair_datasets(*, run_id: int) -> int:
    """Merge each actual row into its amortized twin (see formats/azure_cost_details.py).

    Only amounts move, so the run's totals do not change. Returns the number of merged pairs.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TEMP TABLE ingest_pairs ON COMMIT DROP AS
            WITH actual AS (
                SELECT ctid AS row_id, pair_key, billed_cost,
                       row_number() OVER (PARTITION BY pair_key ORDER BY source_file, source_line) AS n
                FROM attribution_costlineitem_staging
                WHERE ingest_run_id = %(run)s AND dataset = 'actual_paired'
            ), amortized AS (
                SELECT ctid AS row_id, pair_key,
                       row_number() OVER (PARTITION BY pair_key ORDER BY source_file, source_line) AS n
                FROM attribution_costlineitem_staging
                WHERE ingest_run_id = %(run)s AND dataset = 'amortized_paired'
            )
            SELECT actual.row_id AS actual_row, amortized.row_id AS amortized_row, actual.billed_cost
            FROM actual JOIN amortized USING (pair_key, n)
            """,  # noqa: S608
            {"run": run_id},
        )
        cursor.execute(
            """UPDATE attribution_costlineitem_staging s SET billed_cost = s.billed_cost + p.billed_cost
                FROM ingest_pairs p WHERE s.ctid = p.amortized_row"""  # noqa: S608
        )
        cursor.execute(
            "DELETE FROM attribution_costlineitem_staging s USING ingest_pairs p WHERE s.ctid = p.actual_row"  # noqa: S608
        )
        merged = cursor.rowcount
    return merged


def period_lock(*, account_id: int, billing_period_start: dt.date) -> None:
    """Serialise swaps of one (account, period); held until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [account_id, billing_period_start.toordinal()])


def line_items_swap(*, run_id: int, account_id: int, billing_period_start: dt.date) -> int:
    """Replace the period's line items with the run's staged rows. Call inside a transaction."""
    select_list = []
    for column in LINE_ITEM_COLUMNS:
        limit = LINE_ITEM_LIMITS.get(column)
        select_list.append(f"left({column}, {limit})" if limit else column)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM attribution_costlineitem WHERE account_id = %s AND billing_period_start = %s",
            [account_id, billing_period_start],
        )
        cursor.execute(
            f"""INSERT INTO attribution_costlineitem
                    (ingest_run_id, account_id, {", ".join(LINE_ITEM_COLUMNS)})
                SELECT ingest_run_id, account_id, {", ".join(select_list)}
                FROM attribution_costlineitem_staging WHERE ingest_run_id = %s
                ORDER BY source_file, source_line""",  # noqa: S608
            [run_id],
        )
        inserted = cursor.rowcount
        cursor.execute("DELETE FROM attribution_costlineitem_staging WHERE ingest_run_id = %s", [run_id])  # noqa: S608
    return inserted


def line_item_sums(*, run_id: int) -> tuple[int, dict[str, Decimal]]:
    sums_sql = ", ".join(f"COALESCE(SUM({column}), 0)" for column in COST_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), {sums_sql} FROM attribution_costlineitem WHERE ingest_run_id = %s",  # noqa: S608
            [run_id],
        )
        count, *sums = cursor.fetchone()
    return count, dict(zip(COST_COLUMNS, sums, strict=True))


def daily_cost_rebuild(*, account_id: int, billing_period_start: dt.date) -> int:
    """Recompute the DailyCost cells of every day the period touches, before or after a swap.

    DailyCost's unique cell has no billing period, and a charge can fall on a day that belongs to
    another period's rows (late GCP usage, AWS credits): so cells are rebuilt per *day* from all
    the account's line items of that day, and each cell is labelled with the earliest period in it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT day FROM attribution_dailycost WHERE account_id = %(account)s
                AND billing_period_start = %(period)s
            UNION
            SELECT DISTINCT (charge_period_start AT TIME ZONE 'UTC')::date FROM attribution_costlineitem
            WHERE account_id = %(account)s AND billing_period_start = %(period)s
            """,
            {"account": account_id, "period": billing_period_start},
        )
        days = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            """DELETE FROM attribution_dailycost WHERE account_id = %(account)s
               AND (billing_period_start = %(period)s OR day = ANY(%(days)s))""",
            {"account": account_id, "period": billing_period_start, "days": days},
        )
        if not days:
            return 0
        cursor.execute(
            """
            INSERT INTO attribution_dailycost (
                day, account_id, billing_period_start, provider, service_name, region_id,
                team_id, model_id, deployment_id, charge_category, billing_currency,
                billed_cost, effective_cost, list_cost, consumed_quantity,
                input_tokens, output_tokens, requests, line_items)
            SELECT (li.charge_period_start AT TIME ZONE 'UTC')::date, li.account_id,
                   MIN(li.billing_period_start), acct.provider, li.service_name, li.region_id,
                   li.team_id, li.model_id, li.deployment_id, li.charge_category, li.billing_currency,
                   SUM(li.billed_cost), SUM(li.effective_cost), COALESCE(SUM(li.list_cost), 0),
                   COALESCE(SUM(li.consumed_quantity), 0), 0, 0, 0, COUNT(*)
            FROM attribution_costlineitem li
            JOIN attribution_cloudaccount acct ON acct.id = li.account_id
            WHERE li.account_id = %(account)s
              AND li.charge_period_start >= %(first)s AND li.charge_period_start < %(after_last)s
              AND (li.charge_period_start AT TIME ZONE 'UTC')::date = ANY(%(days)s)
            GROUP BY 1, li.account_id, acct.provider, li.service_name, li.region_id, li.team_id,
                     li.model_id, li.deployment_id, li.charge_category, li.billing_currency
            """,
            {
                "account": account_id,
                "days": days,
                "first": dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC),
                "after_last": dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
            },
        )
        return cursor.rowcount
