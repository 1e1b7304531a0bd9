"""The SQL half of the pipeline. Bulk rows never pass through the ORM.

Line items are partitioned by ingest run (migration 0008). A run COPYs into a table of its own,
`attribution_costlineitem_r<run id>` (`partition_create`): no index to maintain, nobody else reading
it. Once loaded it is attached as the run's partition (`partition_attach`), still invisible: every
reader (the focus_line_items view, the DailyCost rebuild, allocation, the admin) sees only rows
whose run is the current (succeeded) version of its period. So a loading, failed or killed run is
invisible whatever it wrote, and the swap is one short transaction that flips run states and
rebuilds DailyCost; the superseded version's partition is dropped right after
(`line_items_discard`), and again before any later run of the period, so a crash in between
leaves only invisible rows.

The staging table is used only where rows must be combined before they count: the Azure
actual/amortized pairing (see formats/azure_cost_details.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.conf import settings
from django.db import OperationalError, connection, transaction

from attribution.choices import COST_COLUMNS, IngestState
from attribution.focus.conform import (
    CONDITIONAL_NUMERIC_COLUMNS,
    CONDITIONAL_TEXT_COLUMNS,
    row_conform,
    table_conform,
)
from attribution.ingest import pgcopy
from attribution.ingest.errors import IngestError
from attribution.models import IngestRun
from attribution.models.rollups import TAG_VALUE_MAX

logger = logging.getLogger(__name__)

STAGING_TABLE = "attribution_costlineitem_staging"
LINE_ITEM_TABLE = "attribution_costlineitem"
# How long dropping a partition may wait for readers of the line items before it gives up (the
# rows are invisible; the next discard of the period drops them). Longer would queue every new
# reader behind the drop's lock.
DROP_LOCK_TIMEOUT = "2s"

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
    "consumed_quantity", "consumed_unit", "commitment_discount_id", "service_subcategory", "invoice_id",
    "commitment_discount_status", *CONDITIONAL_TEXT_COLUMNS, *CONDITIONAL_NUMERIC_COLUMNS,
    "tags", "normalized_tags",
)  # fmt: skip
_DEFAULTS: dict[str, Any] = {"source_file": 0, "dataset": "", "pair_key": ""}
_NULLABLE = {
    "list_cost",
    "contracted_cost",
    "pricing_quantity",
    "consumed_quantity",
    *CONDITIONAL_NUMERIC_COLUMNS,
}

# Line item columns with a length limit; values are trimmed on the way in (staging has none).
LINE_ITEM_LIMITS: dict[str, int] = {
    "billing_currency": 3, "charge_category": 20, "charge_class": 20, "charge_frequency": 20,
    "provider_name": 100, "publisher_name": 200, "invoice_issuer_name": 200, "billing_account_id": 200,
    "billing_account_name": 300, "sub_account_id": 200, "sub_account_name": 300, "region_id": 64,
    "region_name": 100, "availability_zone": 64, "resource_type": 200, "service_name": 200,
    "service_category": 64, "sku_id": 200, "sku_price_id": 300, "pricing_category": 20,
    "pricing_unit": 100, "consumed_unit": 100, "service_subcategory": 64, "invoice_id": 200,
    "commitment_discount_status": 20, "pricing_currency": 3, "sku_meter": 300, "billing_account_type": 100,
    "sub_account_type": 100, "commitment_discount_category": 20, "commitment_discount_type": 100,
    "commitment_discount_unit": 100, "capacity_reservation_status": 20,
}  # fmt: skip
TAG_COLUMNS = ("tags", "normalized_tags")  # parsed as JSON text; stored as a TagSet
PARSED_COLUMNS: tuple[str, ...] = tuple(
    c for c in ROW_COLUMNS if c not in ("source_file", "dataset", "pair_key", *TAG_COLUMNS)
)
STAGED_COLUMNS: tuple[str, ...] = tuple(c for c in ROW_COLUMNS if c not in TAG_COLUMNS)
DIMENSION_COLUMNS: tuple[str, ...] = ("team_id", "model_id", "deployment_id")
LINE_ITEM_COLUMNS: tuple[str, ...] = (*PARSED_COLUMNS, "tag_set_id", *DIMENSION_COLUMNS)


def tag_set_id(tags_json: str, normalized_json: str) -> int:
    """The TagSet id of a line item's tags: a 63-bit BLAKE2b digest of the two JSON texts."""
    digest = hashlib.blake2b(f"{tags_json}\x1f{normalized_json}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class TagSets:
    """The tag sets a run has named, and those not yet saved. Used by one thread at a time: the
    batch path's worker hands its new sets over with each batch (`take_pending`); the database
    thread saves them (`tag_sets_save`) before the COPY that uses them."""

    MAX_REMEMBERED = 100_000  # files whose tags are unique per row: bounded memory

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._pending: list[tuple[int, str, str]] = []

    def id_of(self, tags_json: str, normalized_json: str) -> int:
        key = (tags_json, normalized_json)
        found = self._ids.get(key)
        if found is None:
            if len(self._ids) >= self.MAX_REMEMBERED:
                self._ids.clear()  # forgotten ones are saved again: ON CONFLICT DO NOTHING
            found = self._ids[key] = tag_set_id(tags_json, normalized_json)
            self._pending.append((found, tags_json, normalized_json))
        return found

    def take_pending(self) -> list[tuple[int, str, str]]:
        pending, self._pending = self._pending, []
        return pending


def tag_sets_save(sets: list[tuple[int, str, str]]) -> None:
    """Store new tag sets; an id already taken by different tags (a digest collision) is an error
    rather than a silent merge of two sets."""
    if not sets:
        return
    ids, tags, normalized = (list(column) for column in zip(*sets, strict=True))
    params = {"ids": ids, "tags": tags, "normalized": normalized}
    given = (
        "unnest(%(ids)s::bigint[], %(tags)s::jsonb[], %(normalized)s::jsonb[]) AS given(id, tags, normalized)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO attribution_tagset (id, tags, normalized_tags)
                SELECT id, tags, normalized FROM {given} ON CONFLICT (id) DO NOTHING""",  # noqa: S608
            params,
        )
        cursor.execute(
            f"""SELECT given.id FROM {given} JOIN attribution_tagset saved ON saved.id = given.id
                 WHERE saved.tags <> given.tags OR saved.normalized_tags <> given.normalized
                 LIMIT 1""",  # noqa: S608
            params,
        )
        clash = cursor.fetchone()
    if clash:
        raise IngestError(f"two different tag sets share the digest {clash[0]}; report this as a bug")


class DimensionResolver:
    """Team, model and deployment of a line item, from its normalised tags and resource id.

    Loaded once per run (these tables are small). Rules, in order: `team`, `model` and
    `deployment` tags match slugs (case-insensitive); a line item without a deployment tag matches
    a deployment by resource id (Azure ids are case-insensitive, AWS ARNs and GCP names are
    lower-case in practice, so comparing lower-cased is safe for all three) when the deployment has
    no account or this account; a line item without a model takes its deployment's model.
    """

    def __init__(self, *, account_id: int) -> None:
        with connection.cursor() as cursor:
            # The provider picks the FOCUS tables the rows go through (attribution/focus/conform.py).
            cursor.execute("SELECT provider FROM attribution_cloudaccount WHERE id = %s", [account_id])
            found = cursor.fetchone()
            self.provider: str = found[0] if found else ""
            cursor.execute("SELECT lower(slug), id FROM attribution_team")
            self.teams = dict(cursor.fetchall())
            cursor.execute("SELECT lower(slug), id FROM attribution_model")
            self.models = dict(cursor.fetchall())
            cursor.execute("SELECT lower(slug), id, model_id FROM attribution_deployment")
            self.deployments = {slug: (pk, model) for slug, pk, model in cursor.fetchall()}
            cursor.execute(
                """SELECT lower(resource_id), id, model_id FROM attribution_deployment
                   WHERE resource_id <> '' AND (account_id IS NULL OR account_id = %s) ORDER BY id""",
                [account_id],
            )
            self.by_resource: dict[str, tuple[int, int]] = {}
            for resource, pk, model in cursor.fetchall():
                self.by_resource.setdefault(resource, (pk, model))
        self._cache: dict[str, tuple[int | None, int | None, int | None]] = {}

    def from_tags(self, normalized_json: str) -> tuple[int | None, int | None, int | None]:
        """(team, model, deployment) for one normalised tags JSON text."""
        cached = self._cache.get(normalized_json)
        if cached is None:
            tags = json.loads(normalized_json) if normalized_json not in ("", "{}") else {}
            deployment = self.deployments.get(str(tags.get("deployment", "")).lower()) if tags else None
            model = self.models.get(str(tags.get("model", "")).lower()) if tags else None
            if model is None and deployment is not None:
                model = deployment[1]
            cached = (
                self.teams.get(str(tags.get("team", "")).lower()) if tags else None,
                model,
                deployment[0] if deployment else None,
            )
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[normalized_json] = cached
        return cached

    def resolve(self, normalized_json: str, resource_id: str) -> tuple[int | None, int | None, int | None]:
        team, model, deployment = self.from_tags(normalized_json)
        if deployment is None and resource_id and self.by_resource:
            match = self.by_resource.get(resource_id.lower())
            if match:
                deployment = match[0]
                if model is None:
                    model = match[1]
        return team, model, deployment

    def resolve_table(self, table: pa.Table) -> tuple[pa.Array, pa.Array, pa.Array]:
        """The three id columns for a batch: per distinct tags value, then by resource id."""
        encoded = pc.dictionary_encode(table.column("normalized_tags").combine_chunks())
        resolved = [self.from_tags(value) for value in encoded.dictionary.to_pylist()]
        indices = encoded.indices
        team, model, deployment = (
            pc.take(pa.array([r[i] for r in resolved], pa.int64()), indices) for i in range(3)
        )
        if self.by_resource:
            keys = pa.array(list(self.by_resource), pa.string())
            position = pc.index_in(
                pc.utf8_lower(table.column("resource_id").combine_chunks()), value_set=keys
            )
            matched = pc.and_(pc.is_null(deployment), pc.is_valid(position))
            if pc.any(matched).as_py():
                ids = pa.array([v[0] for v in self.by_resource.values()], pa.int64())
                models = pa.array([v[1] for v in self.by_resource.values()], pa.int64())
                deployment = pc.if_else(matched, pc.take(ids, position), deployment)
                model = pc.if_else(pc.and_(matched, pc.is_null(model)), pc.take(models, position), model)
        return team, model, deployment


def _trim(column: str, value: Any) -> Any:
    limit = LINE_ITEM_LIMITS.get(column)
    return value[:limit] if limit and isinstance(value, str) else value


def _tags_of(row: dict[str, Any], tag_sets: TagSets) -> tuple[int, str]:
    """(tag set id, normalised tags JSON) of a parsed row."""
    tags, normalized = (json.dumps(row.get(column) or {}, ensure_ascii=False) for column in TAG_COLUMNS)
    return tag_sets.id_of(tags, normalized), normalized


def line_items_copy_rows(
    *,
    run_id: int,
    account_id: int,
    rows: Iterable[dict[str, Any]],
    resolver: DimensionResolver,
    tag_sets: TagSets,
) -> int:
    """COPY parsed rows (the row path) into the line items under the run; returns the count."""
    columns = ("ingest_run_id", "account_id", *LINE_ITEM_COLUMNS)
    statement = f"COPY {partition_name(run_id)} ({', '.join(columns)}) FROM STDIN"
    written = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                row_conform(row, provider=resolver.provider)
                values: list[Any] = [run_id, account_id]
                for column in PARSED_COLUMNS:
                    values.append(_trim(column, row.get(column, None if column in _NULLABLE else "")))
                tag_set, normalized = _tags_of(row, tag_sets)
                values.append(tag_set)
                values.extend(resolver.resolve(normalized, row.get("resource_id", "")))
                copy.write_row(values)
                written += 1
    tag_sets_save(tag_sets.take_pending())
    return written


def batch_copy_data(
    *, run_id: int, account_id: int, table: pa.Table, resolver: DimensionResolver, tag_sets: TagSets
) -> pa.Buffer | bytes:
    """The COPY data of one batch, CSV text or binary rows (settings.INGEST_COPY_FORMAT), built off
    the database thread (services.py)
    The batch's new tag sets are left in `tag_sets` for the database thread to save first."""
    count = table.num_rows
    binary = settings.INGEST_COPY_FORMAT == "binary"
    table = table_conform(table, provider=resolver.provider)
    team, model, deployment = resolver.resolve_table(table)
    pairs = pc.dictionary_encode(
        pc.binary_join_element_wise(
            *(table.column(column).combine_chunks() for column in TAG_COLUMNS), "\x1f"
        )
    )
    set_ids = pa.array(
        [tag_sets.id_of(*pair.split("\x1f", 1)) for pair in pairs.dictionary.to_pylist()], pa.int64()
    )
    arrays: list[Any] = [pa.array(np.full(count, run_id)), pa.array(np.full(count, account_id))]
    for column in PARSED_COLUMNS:
        values = table.column(column)
        limit = LINE_ITEM_LIMITS.get(column)
        if limit:
            values = pc.utf8_slice_codeunits(values, 0, limit)
        elif binary:
            pass  # pgcopy sends the instant itself
        elif pa.types.is_timestamp(values.type) and values.type.tz is not None:
            # Arrow formats zoned timestamps through the tz database (slow); UTC wall time + "+00"
            # is the same instant, 20x faster. Each distinct instant (a few hundred hours) once.
            encoded = pc.dictionary_encode(values.combine_chunks().cast(pa.timestamp("us")))
            text = pc.binary_join_element_wise(pc.cast(encoded.dictionary, pa.string()), "+00", "")
            values = pc.take(text, encoded.indices)
        arrays.append(values)
    arrays += [pc.take(set_ids, pairs.indices), team, model, deployment]
    table = pa.table(arrays, names=["ingest_run_id", "account_id", *LINE_ITEM_COLUMNS])
    if binary:
        return pgcopy.copy_data(table)
    buffer = io.BytesIO()
    # all_valid quotes every value, so "" is an empty string and an unquoted empty field is NULL.
    pacsv.write_csv(
        table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid", batch_size=4096)
    )
    return buffer.getvalue()


@contextmanager
def line_items_copy(*, run_id: int) -> Iterator[Any]:
    """One COPY into the run's table; `write()` batches of `batch_copy_data` to it. One statement
    for many batches keeps Postgres busy (no round trip and drain per batch); no other query
    can run on the connection until it ends. In the binary format (pgcopy.py) the signature is
    sent here first and the trailer last; the batches are rows only."""
    columns = ("ingest_run_id", "account_id", *LINE_ITEM_COLUMNS)
    binary = settings.INGEST_COPY_FORMAT == "binary"
    copy_format = "binary" if binary else "csv"
    statement = f"COPY {partition_name(run_id)} ({', '.join(columns)}) FROM STDIN (FORMAT {copy_format})"
    with connection.cursor() as cursor:
        with cursor.cursor.copy(statement) as copy:
            if binary:
                copy.write(pgcopy.SIGNATURE)
            yield copy
            if binary:
                copy.write(pgcopy.TRAILER)


def partition_name(run_id: int) -> str:
    return f"{LINE_ITEM_TABLE}_r{int(run_id)}"


def partition_create(*, run_id: int) -> None:
    """The run's own table for its rows: the line items' columns, defaults and checks, no index.
    Not yet a partition (`partition_attach` makes it one once loaded). A table left by an earlier
    attempt of this run is dropped first."""
    name = partition_name(run_id)
    if not partition_drop(run_id=run_id):
        raise OperationalError(f"{name} is still being read; the run will be retried")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""CREATE TABLE {name} (LIKE {LINE_ITEM_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
                CONSTRAINT {name}_run CHECK (ingest_run_id = {int(run_id)}))"""
        )


def partition_attach(*, run_id: int) -> None:
    """Make the loaded table the run's partition. Its CHECK on ingest_run_id spares the scan that
    would prove the rows belong; the lock taken on the line items (SHARE UPDATE EXCLUSIVE) lets
    readers and other loads go on."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {LINE_ITEM_TABLE} ATTACH PARTITION {partition_name(run_id)} "
            f"FOR VALUES IN ({int(run_id)})"
        )


def partition_drop(*, run_id: int) -> bool:
    """Drop the run's table or partition, if any. Dropping a partition locks the line items
    against readers, so it waits at most DROP_LOCK_TIMEOUT for those already reading; False if it
    gave up (the rows stay, invisible, for a later discard)."""
    name = partition_name(run_id)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            if not cursor.fetchone()[0]:
                return True
            cursor.execute("SELECT current_setting('lock_timeout')")
            previous = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [DROP_LOCK_TIMEOUT])
            cursor.execute(f"DROP TABLE {name}")
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    except OperationalError as error:
        if not isinstance(error.__cause__, psycopg.errors.LockNotAvailable):
            raise
        logger.warning("%s is being read; left for a later discard", name)
        return False
    return True


def line_items_discard(
    *, account_id: int, billing_period_start: dt.date, except_run_id: int | None = None
) -> int:
    """Drop the line items of the period's runs that are not its current version (superseded,
    failed, or left by a crash). Invisible rows either way; this only frees the space.
    Returns the number of partitions dropped."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT id FROM attribution_ingestrun WHERE account_id = %s AND billing_period_start = %s
                   AND state <> %s AND id <> %s AND to_regclass('{LINE_ITEM_TABLE}_r' || id) IS NOT NULL
                 ORDER BY id""",  # noqa: S608
            [account_id, billing_period_start, IngestState.SUCCEEDED, except_run_id or 0],
        )
        runs = [row[0] for row in cursor.fetchall()]
    return sum(partition_drop(run_id=run) for run in runs)


def staging_clear(*, run_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM attribution_costlineitem_staging WHERE ingest_run_id = %s", [run_id])  # noqa: S608


def staging_copy(
    *,
    run_id: int,
    account_id: int,
    rows: Iterable[dict[str, Any]],
    resolver: DimensionResolver,
    tag_sets: TagSets,
) -> int:
    """COPY one chunk of parsed rows into staging (paired datasets only); returns the count."""
    columns = ("ingest_run_id", "account_id", *STAGED_COLUMNS, "tag_set_id", *DIMENSION_COLUMNS)
    statement = f"COPY attribution_costlineitem_staging ({', '.join(columns)}) FROM STDIN"
    written = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                row_conform(row, provider=resolver.provider)
                values: list[Any] = [run_id, account_id]
                for column in STAGED_COLUMNS:
                    values.append(row.get(column, _DEFAULTS.get(column, None if column in _NULLABLE else "")))
                tag_set, normalized = _tags_of(row, tag_sets)
                values.append(tag_set)
                values.extend(resolver.resolve(normalized, row.get("resource_id", "")))
                copy.write_row(values)
                written += 1
    tag_sets_save(tag_sets.take_pending())
    return written


def staging_pair_datasets(*, run_id: int) -> tuple[int, dict[str, Decimal]]:
    """Merge each actual row into its amortized twin (see formats/azure_cost_details.py).

    The actual row's billed cost moves to its twin; the rest of it (the list and contracted cost
    both exports state for the same usage) goes with the actual row. Returns the number of merged
    pairs and, per cost column, what the removed actual rows held beyond their billed cost: the
    files' sums less that are the database's.
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
        dropped_columns = [column for column in COST_COLUMNS if column != "billed_cost"]
        dropped_sql = ", ".join(f"COALESCE(SUM(s.{column}), 0)" for column in dropped_columns)
        cursor.execute(
            f"""SELECT {dropped_sql} FROM attribution_costlineitem_staging s
                JOIN ingest_pairs p ON s.ctid = p.actual_row"""  # noqa: S608
        )
        dropped = dict(zip(dropped_columns, cursor.fetchone(), strict=True))
        cursor.execute(
            """UPDATE attribution_costlineitem_staging s SET billed_cost = s.billed_cost + p.billed_cost
                FROM ingest_pairs p WHERE s.ctid = p.amortized_row"""  # noqa: S608
        )
        cursor.execute(
            "DELETE FROM attribution_costlineitem_staging s USING ingest_pairs p WHERE s.ctid = p.actual_row"  # noqa: S608
        )
        merged = cursor.rowcount
    return merged, dropped


def period_lock(*, account_id: int, billing_period_start: dt.date) -> None:
    """Serialise swaps of one (account, period); held until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [account_id, billing_period_start.toordinal()])


def staging_move(*, run_id: int) -> int:
    """Move the run's (paired) staged rows into the line items, still invisible under the run."""
    select_list = []
    for column in LINE_ITEM_COLUMNS:
        limit = LINE_ITEM_LIMITS.get(column)
        select_list.append(f"left({column}, {limit})" if limit else column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {partition_name(run_id)}
                    (ingest_run_id, account_id, {", ".join(LINE_ITEM_COLUMNS)})
                SELECT ingest_run_id, account_id, {", ".join(select_list)}
                FROM attribution_costlineitem_staging WHERE ingest_run_id = %s
                ORDER BY source_file, source_line""",  # noqa: S608
            [run_id],
        )
        inserted = cursor.rowcount
        cursor.execute("DELETE FROM attribution_costlineitem_staging WHERE ingest_run_id = %s", [run_id])  # noqa: S608
    return inserted


@dataclass
class LoadedSummary:
    """What the database holds for a run, read back from its rows."""

    rows: int
    sums: dict[str, Decimal]
    charge_period_first: dt.datetime | None
    charge_period_last: dt.datetime | None


# The run's rows summed in one pass over them, two ways at once (GROUPING SETS), into a session temp
# table dropped by daily_cost_rebuild (or with the session if the run dies first):
# - cells (`per_resource` false): the DailyCost grain plus billing period and tag set; the run's
#   database totals, and in the swap its share of DailyCost and of DailyTagCost;
# - resources (`per_resource` true): per day, service, resource and currency, the run's share of
#   DailyResourceCost (`resource` is NULL on the row gathering the line items with a team or a
#   deployment, which that rollup leaves out).
RUN_CELLS_TABLE = "ingest_run_cells"
_CELL_KEYS = (
    "account_id", "billing_period_start", "service_name", "region_id", "sku_id", "team_id", "model_id",
    "deployment_id", "charge_category", "billing_currency",
)  # fmt: skip
# A line item's SkuId may be NULL; its rollup cells say '' (like service and region), so a NULL and
# an empty SKU are one cell and the unique constraint holds.
_CELL_EXPRESSIONS = {"sku_id": "COALESCE(sku_id, '')"}
_DAY_SQL = "(charge_period_start AT TIME ZONE 'UTC')::date"
# What the Unallocated page lists per untagged resource; the same expression in the migration that
# filled DailyResourceCost for the line items already loaded (0024).
RESOURCE_KEY_SQL = "COALESCE(NULLIF(resource_id, ''), service_name || ' (no resource id)')"
_UNALLOCATED_RESOURCE_SQL = f"CASE WHEN team_id IS NULL AND deployment_id IS NULL THEN {RESOURCE_KEY_SQL} END"


def _cell_select(keys: tuple[str, ...] = _CELL_KEYS, *, named: bool = False) -> str:
    """The cell keys as read from line items (NULL-safe), for GROUP BY, or for SELECT (`named`)."""
    return ", ".join(
        (f"{_CELL_EXPRESSIONS[key]} AS {key}" if named else _CELL_EXPRESSIONS[key])
        if key in _CELL_EXPRESSIONS
        else key
        for key in keys
    )


def _aggregation_settings(cursor) -> None:
    """For a GROUP BY over a freshly loaded partition (inside a transaction). It has no statistics
    yet, so the planner guesses a few hundred rows and sorts a million on disk; JIT-compiling the
    wide expressions costs more than it saves."""
    cursor.execute("SET LOCAL work_mem = '64MB'")
    cursor.execute("SET LOCAL jit = off")


def line_items_summary(*, run_id: int) -> LoadedSummary:
    cell_select = _cell_select(named=True)
    with transaction.atomic(), connection.cursor() as cursor:
        _aggregation_settings(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {RUN_CELLS_TABLE}")
        cursor.execute(
            f"""CREATE TEMP TABLE {RUN_CELLS_TABLE} AS
                SELECT {_DAY_SQL} AS day, {cell_select}, tag_set_id,
                       {_UNALLOCATED_RESOURCE_SQL} AS resource, GROUPING(tag_set_id) = 1 AS per_resource,
                       MIN(billing_period_start) AS first_period,
                       SUM(billed_cost) AS billed_cost, SUM(effective_cost) AS effective_cost,
                       SUM(list_cost) AS list_cost, SUM(contracted_cost) AS contracted_cost,
                       SUM(consumed_quantity) AS consumed_quantity, COUNT(*) AS line_items,
                       MIN(charge_period_start) AS first_start, MAX(charge_period_start) AS last_start
                  FROM {partition_name(run_id)}
                 GROUP BY GROUPING SETS (
                       ({_DAY_SQL}, {_cell_select()}, tag_set_id),
                       ({_DAY_SQL}, account_id, service_name, {_UNALLOCATED_RESOURCE_SQL}, billing_currency)
                 )"""  # noqa: S608
        )
        sums_sql = ", ".join(f"COALESCE(SUM({column}), 0)" for column in COST_COLUMNS)
        cursor.execute(
            f"""SELECT COALESCE(SUM(line_items), 0), {sums_sql}, MIN(first_start), MAX(last_start)
                  FROM {RUN_CELLS_TABLE} WHERE NOT per_resource"""  # noqa: S608
        )
        count, *rest = cursor.fetchone()
    sums, (first, last) = rest[: len(COST_COLUMNS)], rest[len(COST_COLUMNS) :]
    return LoadedSummary(
        rows=count,
        sums=dict(zip(COST_COLUMNS, sums, strict=True)),
        charge_period_first=first,
        charge_period_last=last,
    )


def daily_cost_rebuild(
    *, account_id: int, billing_period_start: dt.date, loaded_run: int | None = None
) -> tuple[int, list[dt.date]]:
    """Recompute the DailyCost cells of every day the period touches, from current versions only.

    DailyCost's unique cell has no billing period, and a charge can fall on a day that belongs to
    another period's rows (late GCP usage, AWS credits): so cells are rebuilt per *day* from all
    the account's current line items of that day, each labelled with the earliest period in it.
    `loaded_run`: the swap's run, whose rows `line_items_summary` has just summed into the session's
    RUN_CELLS_TABLE; they are taken from there (and the table dropped) instead of read again.
    Returns (cells written, the charge days of the period's current version).
    """
    params: dict[str, Any] = {"account": account_id, "period": billing_period_start}
    with connection.cursor() as cursor:
        if loaded_run is not None:
            cursor.execute(f"SELECT DISTINCT day FROM {RUN_CELLS_TABLE} WHERE NOT per_resource")  # noqa: S608
        else:
            cursor.execute(
                f"""SELECT DISTINCT (charge_period_start AT TIME ZONE 'UTC')::date FROM {LINE_ITEM_TABLE}
                    WHERE ingest_run_id = ANY(%(runs)s)""",  # noqa: S608
                {
                    "runs": IngestRun.objects.current_ids(
                        account_id=account_id, billing_period_start=billing_period_start
                    )
                },
            )
        period_days = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT day FROM attribution_dailycost WHERE account_id = %(account)s "
            "AND billing_period_start = %(period)s",
            params,
        )
        days = sorted(set(period_days) | {row[0] for row in cursor.fetchall()})
        for table in ("attribution_dailycost", "attribution_dailytagcost", "attribution_dailyresourcecost"):
            cursor.execute(
                f"""DELETE FROM {table} WHERE account_id = %(account)s
                   AND (billing_period_start = %(period)s OR day = ANY(%(days)s))""",  # noqa: S608
                {**params, "days": days},
            )
        if not days:
            cursor.execute(f"DROP TABLE IF EXISTS {RUN_CELLS_TABLE}")
            return 0, period_days
        first = dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC)
        after_last = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        runs = IngestRun.objects.current_ids(
            account_id=account_id, charged_from=first, charged_before=after_last
        )
        cursor.execute("SELECT provider FROM attribution_cloudaccount WHERE id = %s", [account_id])
        provider = cursor.fetchone()[0]
        keys = ", ".join(_CELL_KEYS)
        sums = "billed_cost, effective_cost, list_cost, consumed_quantity"
        # What the three rollups' statements read: the days, and the current runs with charges on
        # them other than the loaded one (whose rows come from RUN_CELLS_TABLE).
        rebuild = {
            **params,
            "days": days,
            "runs": [run for run in runs if run != loaded_run],
            "provider": provider,
            "first": first,
            "after_last": after_last,
        }
        loaded_cells = ""
        if loaded_run is not None:
            loaded_cells = f"""SELECT day, {keys}, {sums}, line_items FROM {RUN_CELLS_TABLE}
                               WHERE NOT per_resource AND day = ANY(%(days)s) UNION ALL"""  # noqa: S608
        _aggregation_settings(cursor)
        cursor.execute(
            f"""
            INSERT INTO attribution_dailycost (
                day, account_id, billing_period_start, provider, service_name, region_id, sku_id,
                team_id, model_id, deployment_id, charge_category, billing_currency,
                billed_cost, effective_cost, list_cost, consumed_quantity, line_items)
            SELECT day, account_id, MIN(billing_period_start), %(provider)s, service_name, region_id, sku_id,
                   team_id, model_id, deployment_id, charge_category, billing_currency,
                   SUM(billed_cost), SUM(effective_cost), COALESCE(SUM(list_cost), 0),
                   COALESCE(SUM(consumed_quantity), 0), SUM(line_items)
            FROM (
                {loaded_cells}
                SELECT (charge_period_start AT TIME ZONE 'UTC')::date, {_cell_select()}, {sums}, 1
                FROM {LINE_ITEM_TABLE}
                WHERE ingest_run_id = ANY(%(runs)s)
                  AND charge_period_start >= %(first)s AND charge_period_start < %(after_last)s
                  AND (charge_period_start AT TIME ZONE 'UTC')::date = ANY(%(days)s)
            ) cells (day, {keys}, {sums}, line_items)
            GROUP BY day, account_id, service_name, region_id, sku_id, team_id, model_id, deployment_id,
                     charge_category, billing_currency
            """,  # noqa: S608
            rebuild,
        )
        written = cursor.rowcount
        _daily_tag_cost_insert(cursor, rebuild=rebuild, loaded_run=loaded_run)
        _daily_resource_cost_insert(cursor, rebuild=rebuild, loaded_run=loaded_run)
        if loaded_run is not None:
            cursor.execute(f"DROP TABLE IF EXISTS {RUN_CELLS_TABLE}")
        return written, period_days


def _daily_resource_cost_insert(cursor, *, rebuild: dict[str, Any], loaded_run: int | None) -> None:
    """DailyResourceCost for the account's `days`: the team-less, deployment-less current line items
    per resource. The loaded run's from RUN_CELLS_TABLE's resource rows (its partition is not read a
    second time), the other runs' from their line items. When no other run has a charge on those
    days (a period re-ingested on its own, the usual case), the loaded run's rows are the rollup as
    they stand: nothing to add to them, so they are not grouped again."""
    columns = """day, account_id, billing_period_start, provider, service_name, resource, billing_currency,
                 billed_cost, effective_cost, line_items"""
    loaded_rows = f"""SELECT day, account_id, first_period, service_name, resource, billing_currency,
                             billed_cost, effective_cost, line_items
                      FROM {RUN_CELLS_TABLE}
                      WHERE per_resource AND resource IS NOT NULL AND day = ANY(%(days)s)"""  # noqa: S608
    if loaded_run is not None and not rebuild["runs"]:
        cursor.execute(
            f"""INSERT INTO attribution_dailyresourcecost ({columns})
                SELECT day, account_id, first_period, %(provider)s, service_name, resource,
                       billing_currency, billed_cost, effective_cost, line_items
                FROM ({loaded_rows}) loaded""",  # noqa: S608
            rebuild,
        )
        return
    loaded_union = f"UNION ALL {loaded_rows}" if loaded_run is not None else ""
    cursor.execute(
        f"""
        INSERT INTO attribution_dailyresourcecost ({columns})
        SELECT day, account_id, MIN(first_period), %(provider)s, service_name, resource, billing_currency,
               SUM(billed_cost), SUM(effective_cost), SUM(line_items)
        FROM (
            SELECT {_DAY_SQL}, account_id, billing_period_start, service_name, {RESOURCE_KEY_SQL},
                   billing_currency, billed_cost, effective_cost, 1
            FROM {LINE_ITEM_TABLE}
            WHERE ingest_run_id = ANY(%(runs)s) AND account_id = %(account)s
              AND team_id IS NULL AND deployment_id IS NULL
              AND charge_period_start >= %(first)s AND charge_period_start < %(after_last)s
              AND {_DAY_SQL} = ANY(%(days)s)
            {loaded_union}
        ) resource_rows (day, account_id, first_period, service_name, resource, billing_currency,
                billed_cost, effective_cost, line_items)
        GROUP BY day, account_id, service_name, resource, billing_currency
        """,  # noqa: S608
        rebuild,
    )


# A cell's line items summed per tag set first (a handful of distinct sets), then each set's
# normalised tags unnested: one pass over the line items, however many keys they carry.
_TAG_CELL_KEYS = (
    "account_id", "service_name", "region_id", "sku_id", "team_id", "model_id", "deployment_id",
    "charge_category", "billing_currency",
)  # fmt: skip


def _daily_tag_cost_insert(cursor, *, rebuild: dict[str, Any], loaded_run: int | None) -> None:
    """DailyTagCost for the account's `days`, from the same current line items as DailyCost: the
    loaded run's from RUN_CELLS_TABLE (summed per tag set there, so its partition is not read a
    second time), the other runs' from their line items. Empty tag values count as untagged."""
    keys = ", ".join(_TAG_CELL_KEYS)
    cells = ", ".join(f"c.{key}" for key in _TAG_CELL_KEYS)
    loaded_cells = ""
    if loaded_run is not None:
        loaded_cells = f"""UNION ALL
            SELECT day, billing_period_start, {keys}, tag_set_id, billed_cost, effective_cost, line_items
            FROM {RUN_CELLS_TABLE} WHERE NOT per_resource AND day = ANY(%(days)s)"""  # noqa: S608
    cursor.execute(
        f"""
        INSERT INTO attribution_dailytagcost (
            day, billing_period_start, provider, {keys}, tag_key, tag_value,
            billed_cost, effective_cost, line_items)
        SELECT c.day, MIN(c.billing_period_start), %(provider)s, {cells},
               left(tag.key, 512), left(tag.value, {TAG_VALUE_MAX}),
               SUM(c.billed_cost), SUM(c.effective_cost), SUM(c.line_items)
        FROM (
            SELECT (charge_period_start AT TIME ZONE 'UTC')::date AS day, billing_period_start,
                   {_cell_select(_TAG_CELL_KEYS, named=True)},
                   tag_set_id, SUM(billed_cost) AS billed_cost, SUM(effective_cost) AS effective_cost,
                   COUNT(*) AS line_items
            FROM {LINE_ITEM_TABLE}
            WHERE ingest_run_id = ANY(%(runs)s)
              AND charge_period_start >= %(first)s AND charge_period_start < %(after_last)s
              AND (charge_period_start AT TIME ZONE 'UTC')::date = ANY(%(days)s)
            GROUP BY 1, 2, {_cell_select(_TAG_CELL_KEYS)}, tag_set_id
            {loaded_cells}
        ) c
        JOIN attribution_tagset tag_set ON tag_set.id = c.tag_set_id
        CROSS JOIN LATERAL jsonb_each_text(
            CASE WHEN jsonb_typeof(tag_set.normalized_tags) = 'object' THEN tag_set.normalized_tags
                 ELSE '{{}}'::jsonb END
        ) AS tag (key, value)
        WHERE tag.value <> ''
        GROUP BY c.day, {cells}, left(tag.key, 512), left(tag.value, {TAG_VALUE_MAX})
        """,  # noqa: S608
        rebuild,
    )
