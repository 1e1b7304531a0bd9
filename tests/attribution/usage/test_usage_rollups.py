"""Hourly and daily rollups equal the raw buckets; percentiles come from the summed histograms."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from attribution.models import UsageDaily, UsageHourly, UsageRecord
from attribution.usage import selectors, services
from attribution.usage.tasks import usage_rollup_recent
from tests.attribution.usage.conftest import HOUR, make_record
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

RAW_SUMS_SQL = """
    SELECT {unit}, deployment_id, team_id, model_id, sum(requests), sum(input_tokens), sum(output_tokens),
           sum(errors), sum(gpu_seconds), sum(latency_ms_sum)
      FROM attribution_usagerecord GROUP BY 1, 2, 3, 4
"""


def load_two_days(dims) -> None:
    records = []
    # Minute buckets across two hours of day 1 and one late hour, plus hourly buckets on day 2.
    for minute in range(0, 120, 7):
        for team in ("search", "ads", None):
            records.append(make_record(minute, team=team, requests=5 + minute % 11, errors=minute % 3))
    records.append(make_record(13 * 60 + 59, team="ads", requests=3))
    day_two = HOUR + dt.timedelta(days=1)
    for hour in range(3):
        records.append(
            make_record(
                0,
                requests=100 + hour,
                bucket_seconds=3600,
                bucket_start=(day_two + dt.timedelta(hours=hour)).isoformat(),
            )
        )
    services.usage_batch_ingest(reporter="gw", batch_id="two-days", records=records)


def raw(unit: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(RAW_SUMS_SQL.format(unit=unit))
        return sorted(((*row[:9], round(row[9], 6)) for row in cursor.fetchall()), key=_order)


def rolled(model, unit: str) -> list[tuple]:
    rows = model.objects.values_list(
        unit,
        "deployment_id",
        "team_id",
        "model_id",
        "requests",
        "input_tokens",
        "output_tokens",
        "errors",
        "gpu_seconds",
        "latency_ms_sum",
    )
    return sorted(((*row[:9], round(row[9], 6)) for row in rows), key=_order)


def _order(row: tuple) -> tuple:
    return (row[0], row[1], row[2] or 0, row[3])


def test_rollups_equal_the_raw_sums_per_hour_and_day(dims):
    load_two_days(dims)
    result = services.usage_rollup(start=HOUR, end=HOUR + dt.timedelta(days=2))
    hourly_raw = raw("date_trunc('hour', bucket_start, 'UTC')")
    daily_raw = raw("(bucket_start AT TIME ZONE 'UTC')::date")
    assert rolled(UsageHourly, "hour") == hourly_raw
    assert rolled(UsageDaily, "day") == daily_raw
    assert result == {"hours": len(hourly_raw), "days": len(daily_raw)}
    total = sum(row[4] for row in daily_raw)
    assert sum(UsageDaily.objects.values_list("requests", flat=True)) == total


def test_histograms_are_summed_per_bucket_index(dims):
    load_two_days(dims)
    services.usage_rollup(start=HOUR, end=HOUR + dt.timedelta(days=2))
    for day in UsageDaily.objects.all():
        records = UsageRecord.objects.filter(
            bucket_start__date=day.day, deployment=day.deployment_id, team=day.team_id
        )
        expected = [sum(column) for column in zip(*(r.latency_histogram for r in records), strict=True)]
        assert day.latency_histogram == expected
        assert sum(day.latency_histogram) == day.requests


def test_a_rollup_of_a_sub_range_rebuilds_only_the_touched_hours_and_days(dims):
    load_two_days(dims)
    services.usage_rollup(start=HOUR, end=HOUR + dt.timedelta(days=2))
    # A later batch touches one minute of 10:00 on day 1.
    services.usage_batch_ingest(reporter="gw", batch_id="late", records=[make_record(1, requests=1000)])
    services.usage_rollup(start=HOUR + dt.timedelta(minutes=1), end=HOUR + dt.timedelta(minutes=2))
    assert rolled(UsageHourly, "hour") == raw("date_trunc('hour', bucket_start, 'UTC')")
    assert rolled(UsageDaily, "day") == raw("(bucket_start AT TIME ZONE 'UTC')::date")


def test_rolling_up_twice_gives_the_same_rows(dims):
    load_two_days(dims)
    services.usage_rollup(start=HOUR, end=HOUR + dt.timedelta(days=2))
    first = rolled(UsageDaily, "day")
    services.usage_rollup(start=HOUR, end=HOUR + dt.timedelta(days=2))
    assert rolled(UsageDaily, "day") == first


def test_a_batch_enqueues_the_rollup_of_its_range_on_commit(
    dims, django_capture_on_commit_callbacks, settings
):
    from config.celery_app import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.usage_batch_ingest(
                reporter="gw", batch_id="b", records=[make_record(0), make_record(61)]
            )
    finally:
        app.conf.task_always_eager = False
    assert len(callbacks) == 1
    assert sorted(UsageHourly.objects.values_list("hour", "requests")) == [
        (HOUR, 10),
        (HOUR + dt.timedelta(hours=1), 10),
    ]
    assert UsageDaily.objects.get().requests == 20


def test_the_recent_rollup_task_covers_the_last_two_hours(dims):
    from django.utils import timezone

    now = timezone.now().replace(second=0, microsecond=0)
    start = now - dt.timedelta(minutes=30)
    services.usage_records_upsert(reporter="gw", records=[make_record(0, bucket_start=start.isoformat())])
    usage_rollup_recent()
    assert UsageHourly.objects.get().requests == 10


def test_percentiles_interpolate_linearly_within_a_bucket():
    histogram = [0] * 17
    histogram[3] = 50  # (200, 300]
    histogram[5] = 50  # (500, 750]
    assert selectors.histogram_percentile(histogram, 0.5) == 300.0
    assert selectors.histogram_percentile(histogram, 0.25) == 250.0
    assert selectors.histogram_percentile(histogram, 0.95) == pytest.approx(500 + 250 * 45 / 50)
    histogram = [0] * 17
    histogram[0] = 10
    assert selectors.histogram_percentile(histogram, 0.5) == 25.0  # first bucket starts at 0 ms
    histogram = [0] * 17
    histogram[16] = 10
    assert selectors.histogram_percentile(histogram, 0.95) == 60000.0  # overflow: its lower bound
    assert selectors.histogram_percentile([0] * 17, 0.5) is None


def test_usage_by_day_gives_p50_and_p95_from_the_summed_histograms(dims):
    fast = [0] * 17
    fast[1] = 90  # (50, 100]
    slow = [0] * 17
    slow[8] = 10  # (1500, 2000]
    services.usage_records_upsert(
        reporter="gw",
        records=[
            make_record(0, requests=90, latency_histogram=fast),
            make_record(1, team="ads", requests=10, latency_histogram=slow),
        ],
    )
    services.usage_rollup(start=HOUR, end=HOUR + dt.timedelta(hours=1))
    admin = UserFactory(roles=["admin"])
    (row,) = selectors.usage_by_day(user=admin, start=HOUR.date(), end=HOUR.date() + dt.timedelta(days=1))
    assert row.requests == 100
    assert row.latency_p50_ms == pytest.approx(50 + 50 * 50 / 90)
    assert row.latency_p95_ms == pytest.approx(1500 + 500 * 5 / 10)
    assert row.gpu_seconds == Decimal("2.500")
    by_team = selectors.usage_by_day(
        user=admin, start=HOUR.date(), end=HOUR.date() + dt.timedelta(days=1), group_by=["team"]
    )
    assert {r.group["team"]: r.requests for r in by_team} == {"search": 90, "ads": 10}


def test_members_see_only_their_teams_usage(dims):
    services.usage_records_upsert(
        reporter="gw",
        records=[
            make_record(0, requests=7),
            make_record(0, team="ads", requests=5),
            make_record(0, team=None),
        ],
    )
    services.usage_rollup(start=HOUR, end=HOUR + dt.timedelta(hours=1))
    member = MembershipFactory(team=dims["ads"]).user
    outsider = UserFactory()
    hour_range = {"start": HOUR, "end": HOUR + dt.timedelta(hours=1)}
    assert [r.requests for r in selectors.usage_by_hour(user=member, **hour_range)] == [5]
    assert selectors.usage_by_hour(user=outsider, **hour_range) == []
    finance = UserFactory(roles=["finance"])
    assert [r.requests for r in selectors.usage_by_hour(user=finance, **hour_range)] == [22]
