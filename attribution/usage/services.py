"""Writes of gateway usage: validated batches, idempotent by (reporter, batch id), and the SQL
rollups to hourly and daily tables.

Flow of one batch (`usage_batch_ingest`), all in one transaction:

1. claim (reporter, batch_id) in UsageBatch with `INSERT ... ON CONFLICT DO NOTHING`; if the pair
   exists, the batch is a replay: same payload hash -> (False, count) and nothing else is written,
   another hash -> BatchConflictError (HTTP 409);
2. validate every record (errors name the record index and field) and resolve slugs with one query
   per dimension;
3. COPY the records into a temporary table and `INSERT ... SELECT ... ON CONFLICT
   (usagerecord_unique_bucket) DO UPDATE` adding the counts, so a bucket reported again by a
   *different* batch adds up;
4. on commit, enqueue the hourly/daily rollup for exactly the batch's time range.

Latency given as p50/p95 instead of a histogram is turned into a histogram at bucket resolution
(see `latency_histogram_from_percentiles`).
"""

# SQL here is assembled only from table and column names defined in this module, never from input.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.utils import timezone

from attribution import signals
from attribution.models import (
    LATENCY_BUCKET_BOUNDS_MS,
    Deployment,
    ServedModel,
    Team,
    UsageBatch,
    UsageRecord,
)
from attribution.models.usage import UsageDaily, UsageHourly

HISTOGRAM_LENGTH = len(LATENCY_BUCKET_BOUNDS_MS) + 1
ALLOWED_BUCKET_SECONDS = (60, 3600)
# A gateway's clock may run a little ahead of ours; a bucket further in the future is a bug.
FUTURE_SKEW = dt.timedelta(minutes=5)
MAX_BATCH_RECORDS = 5000
COUNT_FIELDS = ("requests", "input_tokens", "output_tokens", "errors")
GPU_SECONDS_QUANTUM = Decimal("0.001")
# Postgres bigint; a count above it would fail in the INSERT with an unhelpful error.
MAX_COUNT = 2**63 - 1


@dataclass(frozen=True)
class RecordError:
    record: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"record": self.record, "field": self.field, "message": self.message}


class UsageValidationError(Exception):
    """The batch was rejected as a whole; `errors` says which record and field, and why."""

    def __init__(self, errors: list[RecordError]):
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"record {first.record}, {first.field}: {first.message}{more}")


class BatchConflictError(Exception):
    """The batch id was already used by this reporter for a different payload."""


@dataclass(frozen=True)
class _CleanRecord:
    bucket_start: dt.datetime
    bucket_seconds: int
    deployment: str
    team: str | None
    model: str
    counts: tuple[int, int, int, int]
    gpu_seconds: Decimal
    latency_ms_sum: float
    latency_histogram: tuple[int, ...]


def latency_histogram_from_percentiles(*, requests: int, p50_ms: float, p95_ms: float) -> list[int]:
    """A histogram over LATENCY_BUCKET_BOUNDS_MS that reproduces p50 and p95 at bucket resolution.

    Half the requests (rounded up) go to the bucket holding p50, the requests between the median
    and the 95th percentile to the bucket holding p95, and the remaining tail (about 5%) to the
    bucket above p95 (the open-ended one if p95 is already in the last bounded bucket). When p50
    and p95 share a bucket, it gets both shares. Reading the histogram back
    (selectors.histogram_percentile) gives a p50 and p95 inside the same buckets as the reported
    values: exact to the bucket, not within it. The counts always add up to `requests`.
    """
    histogram = [0] * HISTOGRAM_LENGTH
    if requests <= 0:
        return histogram
    p50_index = _bucket_index(p50_ms)
    p95_index = _bucket_index(p95_ms)
    tail_index = min(p95_index + 1, HISTOGRAM_LENGTH - 1)
    up_to_median = (requests + 1) // 2
    up_to_p95 = min(requests, max(up_to_median, -(-requests * 95 // 100)))
    histogram[p50_index] += up_to_median
    histogram[p95_index] += up_to_p95 - up_to_median
    histogram[tail_index] += requests - up_to_p95
    return histogram


def _bucket_index(latency_ms: float) -> int:
    for index, bound in enumerate(LATENCY_BUCKET_BOUNDS_MS):
        if latency_ms <= bound:
            return index
    return HISTOGRAM_LENGTH - 1


def _parse_bucket_start(value: object) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time such as 2026-10-01T13:00:00Z")
    if not isinstance(value, dt.datetime):
        raise ValueError("must be an ISO 8601 date-time such as 2026-10-01T13:00:00Z")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a time zone (e.g. a trailing Z for UTC)")
    return value.astimezone(dt.UTC)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _validate_record(index: int, record: object, now: dt.datetime) -> tuple[_CleanRecord | None, list]:
    errors: list[RecordError] = []

    def fail(field: str, message: str) -> None:
        errors.append(RecordError(index, field, message))

    if not isinstance(record, Mapping):
        fail("", "must be a JSON object")
        return None, errors

    bucket_seconds = record.get("bucket_seconds")
    if bucket_seconds not in ALLOWED_BUCKET_SECONDS or isinstance(bucket_seconds, bool):
        fail("bucket_seconds", f"must be one of {', '.join(map(str, ALLOWED_BUCKET_SECONDS))}")
        bucket_seconds = None

    bucket_start = None
    if "bucket_start" not in record:
        fail("bucket_start", "is required")
    else:
        try:
            bucket_start = _parse_bucket_start(record["bucket_start"])
        except ValueError as error:
            fail("bucket_start", str(error))
    if bucket_start is not None:
        if bucket_seconds and int(bucket_start.timestamp()) % bucket_seconds or bucket_start.microsecond:
            fail("bucket_start", f"must be aligned to {bucket_seconds} s (e.g. {bucket_start:%H:%M}:00 UTC)")
        if bucket_start > now + FUTURE_SKEW:
            fail("bucket_start", f"is in the future ({bucket_start.isoformat()} > now {now:%H:%M:%S} UTC)")

    for field in ("deployment", "model"):
        value = record.get(field)
        if not isinstance(value, str) or not value:
            fail(field, "is required (a slug)")
    team = record.get("team")
    if team is not None and not isinstance(team, str):
        fail("team", "must be a team slug or null")

    counts: list[int] = []
    for field in COUNT_FIELDS:
        value = record.get(field, 0)
        if not _is_count(value) or value < 0 or value > MAX_COUNT:
            fail(field, "must be a non-negative integer")
            value = 0
        counts.append(value)
    requests, _, _, errors_count = counts
    # Checks against `requests` only make sense once it is valid (no cascade of follow-on errors).
    requests_valid = not any(error.field == "requests" for error in errors)
    if requests_valid and errors_count > requests:
        fail("errors", f"cannot exceed requests ({errors_count} > {requests})")

    gpu_seconds = Decimal(0)
    raw_gpu = record.get("gpu_seconds", 0)
    try:
        if isinstance(raw_gpu, bool) or raw_gpu is None:
            raise InvalidOperation
        gpu_seconds = Decimal(str(raw_gpu))
        if not gpu_seconds.is_finite() or gpu_seconds < 0:
            raise InvalidOperation
        gpu_seconds = gpu_seconds.quantize(GPU_SECONDS_QUANTUM)
        if gpu_seconds >= Decimal(10) ** 17:
            raise InvalidOperation
    except InvalidOperation:
        fail("gpu_seconds", "must be a non-negative number (at most 3 decimals are kept)")
        gpu_seconds = Decimal(0)

    latency_ms_sum = _number(record.get("latency_ms_sum", 0))
    if latency_ms_sum is None or latency_ms_sum < 0:
        fail("latency_ms_sum", "must be a non-negative number")
        latency_ms_sum = 0.0

    histogram: list[int] = []
    raw_histogram = record.get("latency_histogram")
    has_percentiles = "latency_p50_ms" in record or "latency_p95_ms" in record
    if raw_histogram is not None and has_percentiles:
        fail("latency_histogram", "give either latency_histogram or latency_p50_ms/latency_p95_ms, not both")
    elif raw_histogram is not None:
        if not isinstance(raw_histogram, list | tuple) or len(raw_histogram) != HISTOGRAM_LENGTH:
            fail(
                "latency_histogram",
                f"must be a list of {HISTOGRAM_LENGTH} counts (one per bucket bound "
                f"{list(LATENCY_BUCKET_BOUNDS_MS)} ms, then the overflow)",
            )
        elif not all(_is_count(count) and count >= 0 for count in raw_histogram):
            fail("latency_histogram", "counts must be non-negative integers")
        elif requests_valid and sum(raw_histogram) != requests:
            fail("latency_histogram", f"counts add up to {sum(raw_histogram)}, not to requests ({requests})")
        else:
            histogram = list(raw_histogram)
    elif has_percentiles:
        p50 = _number(record.get("latency_p50_ms"))
        p95 = _number(record.get("latency_p95_ms"))
        if p50 is None or p50 < 0:
            fail("latency_p50_ms", "must be a non-negative number (with latency_p95_ms)")
        elif p95 is None or p95 < 0:
            fail("latency_p95_ms", "must be a non-negative number (with latency_p50_ms)")
        elif p95 < p50:
            fail("latency_p95_ms", f"cannot be below latency_p50_ms ({p95} < {p50})")
        else:
            histogram = latency_histogram_from_percentiles(requests=requests, p50_ms=p50, p95_ms=p95)
    elif requests:
        # No latency at all is allowed, but then the histogram stays empty rather than wrong.
        histogram = []

    if errors:
        return None, errors
    return (
        _CleanRecord(
            bucket_start=bucket_start,
            bucket_seconds=bucket_seconds,
            deployment=record["deployment"],
            team=team or None,
            model=record["model"],
            counts=tuple(counts),
            gpu_seconds=gpu_seconds,
            latency_ms_sum=latency_ms_sum,
            latency_histogram=tuple(histogram),
        ),
        [],
    )


def _resolve(model, slugs: set[str]) -> dict[str, int]:
    if not slugs:
        return {}
    return dict(model.objects.filter(slug__in=slugs).values_list("slug", "id"))


_COPY_COLUMNS = (
    "bucket_start",
    "bucket_seconds",
    "deployment_id",
    "team_id",
    "model_id",
    "requests",
    "input_tokens",
    "output_tokens",
    "errors",
    "gpu_seconds",
    "latency_ms_sum",
    "latency_histogram",
)


def _sum_histograms(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...]:
    if not left:
        return right
    if not right:
        return left
    return tuple(a + b for a, b in zip(left, right, strict=True))


def _validated_rows(records: Iterable[dict]) -> tuple[list[tuple], dt.datetime | None, dt.datetime | None]:
    now = timezone.now()
    clean: list[tuple[int, _CleanRecord]] = []
    errors: list[RecordError] = []
    for index, record in enumerate(records):
        cleaned, record_errors = _validate_record(index, record, now)
        errors.extend(record_errors)
        if cleaned is not None:
            clean.append((index, cleaned))
    if errors:
        raise UsageValidationError(errors)

    deployments = _resolve(Deployment, {record.deployment for _, record in clean})
    teams = _resolve(Team, {record.team for _, record in clean if record.team})
    models = _resolve(ServedModel, {record.model for _, record in clean})
    for index, record in clean:
        for field, slug, known in (
            ("deployment", record.deployment, deployments),
            ("team", record.team, teams),
            ("model", record.model, models),
        ):
            if slug is not None and slug not in known:
                errors.append(RecordError(index, field, f"unknown {field} {slug!r}"))
    if errors:
        raise UsageValidationError(errors)

    # Two records of one batch for the same bucket are partial counts of it: add them here, since
    # one INSERT ... ON CONFLICT cannot touch the same row twice.
    merged: dict[tuple, list] = {}
    for _, record in clean:
        key = (
            record.bucket_start,
            record.bucket_seconds,
            deployments[record.deployment],
            teams[record.team] if record.team else None,
            models[record.model],
        )
        previous = merged.get(key)
        if previous is None:
            merged[key] = [
                list(record.counts),
                record.gpu_seconds,
                record.latency_ms_sum,
                record.latency_histogram,
            ]
        else:
            previous[0] = [a + b for a, b in zip(previous[0], record.counts, strict=True)]
            previous[1] += record.gpu_seconds
            previous[2] += record.latency_ms_sum
            previous[3] = _sum_histograms(previous[3], record.latency_histogram)
    rows = [
        (*key, *counts, gpu_seconds, latency_ms_sum, json.dumps(list(histogram)))
        for key, (counts, gpu_seconds, latency_ms_sum, histogram) in merged.items()
    ]
    start = min((record.bucket_start for _, record in clean), default=None)
    ends = (record.bucket_start + dt.timedelta(seconds=record.bucket_seconds) for _, record in clean)
    end = max(ends, default=None)
    return rows, start, end


# Element-wise sum of two JSON count arrays; an empty array (no latency reported) adds nothing.
_HISTOGRAM_SUM_SQL = """
    (SELECT coalesce(
                jsonb_agg(coalesce(a.count::bigint, 0) + coalesce(b.count::bigint, 0) ORDER BY index), '[]')
       FROM jsonb_array_elements_text({left}) WITH ORDINALITY AS a(count, index)
       FULL JOIN jsonb_array_elements_text({right}) WITH ORDINALITY AS b(count, index) USING (index))
"""


def _upsert_rows(*, reporter: str, batch_id: str, rows: list[tuple]) -> int:
    if not rows:
        return 0
    table = UsageRecord._meta.db_table
    columns = ", ".join(_COPY_COLUMNS)
    summed = (*COUNT_FIELDS, "gpu_seconds", "latency_ms_sum")
    added = ",\n".join(f"{name} = target.{name} + EXCLUDED.{name}" for name in summed)
    histogram_sum = _HISTOGRAM_SUM_SQL.format(
        left="target.latency_histogram", right="EXCLUDED.latency_histogram"
    )
    with connection.cursor() as cursor:
        # ON COMMIT DROP: the table lives as long as this transaction, whatever happens to it.
        cursor.execute(
            f"CREATE TEMP TABLE usage_incoming ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA"
        )
        with cursor.connection.cursor().copy(f"COPY usage_incoming ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"""
            INSERT INTO {table} AS target ({columns}, reporter, batch_id)
            SELECT {columns}, %s, %s FROM usage_incoming
            ON CONFLICT ON CONSTRAINT usagerecord_unique_bucket DO UPDATE SET
                {added},
                latency_histogram = {histogram_sum},
                batch_id = EXCLUDED.batch_id
            """,
            [reporter, batch_id],
        )
        # Dropped now too: a second batch in the same transaction (tests, bulk loads) recreates it.
        cursor.execute("DROP TABLE usage_incoming")
    return len(rows)


def usage_records_upsert(*, reporter: str, records: Iterable[dict], batch_id: str = "") -> int:
    """Validate and add usage records; returns the number of buckets written (after merging
    duplicates inside `records`). Raises UsageValidationError, writing nothing, if any record is bad.

    Not idempotent on its own: calling it twice adds twice. Gateways go through usage_batch_ingest.
    """
    rows, _, _ = _validated_rows(records)
    with transaction.atomic():
        return _upsert_rows(reporter=reporter, batch_id=batch_id, rows=rows)


def payload_sha256(records: list) -> str:
    canonical = json.dumps(records, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def usage_batch_ingest(*, reporter: str, batch_id: str, records: list[dict]) -> tuple[bool, int]:
    """Ingest one gateway batch exactly once. Returns (created, record count).

    A replay of the same (reporter, batch_id) with the same payload returns (False, count) and
    writes nothing; with another payload it raises BatchConflictError. Concurrent deliveries of one
    batch serialise on the UsageBatch unique index: the second waits for the first to commit and
    then sees the row.
    """
    if not batch_id or len(batch_id) > 100:
        raise UsageValidationError([RecordError(-1, "batch_id", "is required (1 to 100 characters)")])
    records = list(records)
    digest = payload_sha256(records)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {UsageBatch._meta.db_table}
                       (reporter, batch_id, payload_sha256, records, received_at)
                VALUES (%s, %s, %s, %s, now())
                ON CONFLICT ON CONSTRAINT usagebatch_unique_per_reporter DO NOTHING
                RETURNING id
                """,
                [reporter, batch_id, digest, len(records)],
            )
            claimed = cursor.fetchone() is not None
        if not claimed:
            existing = UsageBatch.objects.get(reporter=reporter, batch_id=batch_id)
            if existing.payload_sha256 != digest:
                raise BatchConflictError(
                    f"Batch {batch_id!r} was already received from {reporter} with different records; "
                    f"use a new batch_id for new data."
                )
            return False, existing.records
        rows, start, end = _validated_rows(records)
        _upsert_rows(reporter=reporter, batch_id=batch_id, rows=rows)
        if start is not None:
            signals.usage_recorded.send(sender=UsageBatch, start=start.isoformat(), end=end.isoformat())
    return True, len(records)


def _hour_floor(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: dt.datetime) -> dt.datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + dt.timedelta(hours=1)


def _rollup_sql(*, target: str, unit_expression: str, unit_column: str) -> str:
    """INSERT ... SELECT of one rollup table from UsageRecord over [%(start)s, %(end)s)."""
    source = UsageRecord._meta.db_table
    keys = "deployment_id, team_id, model_id"
    return f"""
        WITH totals AS (
            SELECT {unit_expression} AS unit, {keys},
                   sum(requests) AS requests, sum(input_tokens) AS input_tokens,
                   sum(output_tokens) AS output_tokens, sum(errors) AS errors,
                   sum(gpu_seconds) AS gpu_seconds, sum(latency_ms_sum) AS latency_ms_sum
              FROM {source}
             WHERE bucket_start >= %(start)s AND bucket_start < %(end)s
             GROUP BY 1, 2, 3, 4
        ), histogram_cells AS (
            SELECT {unit_expression} AS unit, {keys}, cell.index, sum(cell.count::bigint) AS count
              FROM {source}
             CROSS JOIN LATERAL jsonb_array_elements_text(latency_histogram)
                        WITH ORDINALITY AS cell(count, index)
             WHERE bucket_start >= %(start)s AND bucket_start < %(end)s
             GROUP BY 1, 2, 3, 4, 5
        ), histograms AS (
            SELECT unit, {keys}, jsonb_agg(count ORDER BY index) AS histogram
              FROM histogram_cells GROUP BY 1, 2, 3, 4
        )
        INSERT INTO {target} ({unit_column}, {keys}, requests, input_tokens, output_tokens, errors,
                              gpu_seconds, latency_ms_sum, latency_histogram)
        SELECT totals.unit, totals.deployment_id, totals.team_id, totals.model_id, totals.requests,
               totals.input_tokens, totals.output_tokens, totals.errors, totals.gpu_seconds,
               totals.latency_ms_sum, coalesce(histograms.histogram, '[]'::jsonb)
          FROM totals
          LEFT JOIN histograms
            ON histograms.unit = totals.unit
           AND histograms.deployment_id = totals.deployment_id
           AND histograms.team_id IS NOT DISTINCT FROM totals.team_id
           AND histograms.model_id = totals.model_id
    """


def usage_rollup(*, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Rebuild UsageHourly for every hour and UsageDaily for every UTC day that [start, end) touches.

    Delete-then-insert per unit in one transaction: readers see the old rollup or the new one,
    never a half. Both tables are computed from UsageRecord (the daily one too, so a day is right
    even if some of its hours were never rolled up). Histograms are summed per bucket index in SQL;
    a record without a histogram (latency not reported) adds nothing to it. Returns row counts.
    """
    if end <= start:
        return {"hours": 0, "days": 0}
    hour_start, hour_end = _hour_floor(start), _hour_ceil(end)
    day_start = hour_start.replace(hour=0)
    day_end = _hour_ceil(end)
    if day_end.hour or day_end.minute:
        day_end = day_end.replace(hour=0) + dt.timedelta(days=1)
    hourly, daily = UsageHourly._meta.db_table, UsageDaily._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {hourly} WHERE hour >= %s AND hour < %s", [hour_start, hour_end])
        cursor.execute(
            _rollup_sql(
                target=hourly,
                unit_expression="date_trunc('hour', bucket_start, 'UTC')",
                unit_column="hour",
            ),
            {"start": hour_start, "end": hour_end},
        )
        hours = cursor.rowcount
        cursor.execute(
            f"DELETE FROM {daily} WHERE day >= %s AND day < %s", [day_start.date(), day_end.date()]
        )
        cursor.execute(
            _rollup_sql(
                target=daily,
                unit_expression="(bucket_start AT TIME ZONE 'UTC')::date",
                unit_column="day",
            ),
            {"start": day_start, "end": day_end},
        )
        days = cursor.rowcount
    return {"hours": hours, "days": days}


def usage_rollup_all() -> dict[str, int]:
    """Rebuild the rollups over the whole UsageRecord range (after a bulk load such as
    load_demo_usage, which writes UsageRecord directly)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(bucket_start), max(bucket_start) FROM {UsageRecord._meta.db_table}")
        low, high = cursor.fetchone()
    if low is None:
        return {"hours": 0, "days": 0}
    return usage_rollup(start=low, end=high + dt.timedelta(hours=1))
