"""Batches from gateways: counted once, validated per record, buckets that add up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from attribution.models import UsageBatch, UsageRecord
from attribution.usage import services
from attribution.usage.selectors import histogram_percentile
from tests.attribution.usage.conftest import HOUR, make_record

pytestmark = pytest.mark.django_db


def totals() -> dict:
    return UsageRecord.objects.aggregate(
        requests=Sum("requests"),
        input_tokens=Sum("input_tokens"),
        gpu_seconds=Sum("gpu_seconds"),
    )


def test_it_counts_a_retried_batch_once(dims):
    records = [make_record(minute, requests=10 + minute) for minute in range(5)]
    assert services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=records) == (True, 5)
    assert services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=records) == (False, 5)
    assert totals() == {
        "requests": 10 + 11 + 12 + 13 + 14,
        "input_tokens": (10 + 11 + 12 + 13 + 14) * 100,
        "gpu_seconds": Decimal("6.250"),
    }
    assert UsageBatch.objects.get().records == 5


def test_it_adds_a_bucket_reported_again_by_another_batch(dims):
    services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=[make_record(0, requests=10)])
    services.usage_batch_ingest(reporter="gw", batch_id="b-2", records=[make_record(0, requests=7)])
    record = UsageRecord.objects.get()
    assert record.requests == 17
    assert record.gpu_seconds == Decimal("2.500")
    assert record.latency_histogram[3] == 17
    assert sum(record.latency_histogram) == 17
    assert record.batch_id == "b-2"


def test_it_merges_two_records_of_one_batch_for_the_same_bucket(dims):
    created, count = services.usage_batch_ingest(
        reporter="gw", batch_id="b-1", records=[make_record(0, requests=3), make_record(0, requests=4)]
    )
    assert (created, count) == (True, 2)
    assert UsageRecord.objects.get().requests == 7


def test_it_keeps_the_team_less_bucket_apart_and_counts_it_once_per_batch(dims):
    services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=[make_record(0, team=None)])
    services.usage_batch_ingest(reporter="gw", batch_id="b-2", records=[make_record(0, team=None)])
    services.usage_batch_ingest(reporter="gw", batch_id="b-3", records=[make_record(0, team="ads")])
    assert UsageRecord.objects.filter(team=None).get().requests == 20
    assert UsageRecord.objects.filter(team__slug="ads").get().requests == 10


def test_it_rejects_the_same_batch_id_with_other_records(dims):
    services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=[make_record(0)])
    with pytest.raises(services.BatchConflictError, match="different records"):
        services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=[make_record(1)])
    assert totals()["requests"] == 10


def test_the_same_batch_id_from_another_gateway_is_another_batch(dims):
    services.usage_batch_ingest(reporter="gw-a", batch_id="b-1", records=[make_record(0)])
    assert services.usage_batch_ingest(reporter="gw-b", batch_id="b-1", records=[make_record(0)])[0]
    assert UsageRecord.objects.count() == 2


def errors_of(records) -> list[tuple[int, str]]:
    with pytest.raises(services.UsageValidationError) as caught:
        services.usage_batch_ingest(reporter="gw", batch_id="bad", records=records)
    return [(error.record, error.field) for error in caught.value.errors]


def test_it_names_the_record_and_field_of_each_error_and_writes_nothing(dims):
    future = (timezone.now() + dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    records = [
        make_record(0),
        make_record(1, errors=11),
        make_record(2, bucket_start="2026-10-01T10:02:30Z"),
        make_record(3, input_tokens=-1),
        make_record(4, latency_histogram=[1, 2, 3]),
        make_record(5, bucket_start=future.isoformat()),
        make_record(6, bucket_seconds=300),
        make_record(7, gpu_seconds="lots"),
        {**make_record(8), "requests": True},
        make_record(9, bucket_start="2026-10-01T10:09:00"),
    ]
    assert errors_of(records) == [
        (1, "errors"),
        (2, "bucket_start"),
        (3, "input_tokens"),
        (4, "latency_histogram"),
        (5, "bucket_start"),
        (6, "bucket_seconds"),
        (7, "gpu_seconds"),
        (8, "requests"),
        (9, "bucket_start"),
    ]
    assert not UsageRecord.objects.exists()
    assert not UsageBatch.objects.exists()


def test_it_rejects_a_histogram_that_does_not_add_up_to_requests(dims):
    histogram = [0] * 17
    histogram[0] = 9
    with pytest.raises(services.UsageValidationError) as caught:
        services.usage_batch_ingest(
            reporter="gw", batch_id="bad", records=[make_record(0, latency_histogram=histogram)]
        )
    assert caught.value.errors[0].as_dict() == {
        "record": 0,
        "field": "latency_histogram",
        "message": "counts add up to 9, not to requests (10)",
    }


def test_it_rejects_unknown_slugs_by_record_and_dimension(dims):
    records = [
        make_record(0),
        make_record(1, deployment="nope"),
        make_record(2, team="ghosts", model="gpt-9"),
    ]
    assert errors_of(records) == [(1, "deployment"), (2, "team"), (2, "model")]


def test_it_resolves_slugs_with_one_query_per_dimension(dims, django_assert_max_num_queries):
    records = [make_record(minute, team=("search", "ads", None)[minute % 3]) for minute in range(60)]
    # claim batch, 3 slug lookups, temp table, COPY, INSERT, DROP (+ savepoint bookkeeping)
    with django_assert_max_num_queries(12):
        services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=records)
    assert UsageRecord.objects.count() == 60


def test_a_replayed_batch_is_accepted_even_if_a_slug_was_removed_since(dims):
    services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=[make_record(0)])
    UsageRecord.objects.all().delete()
    dims["ads"].delete()
    assert services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=[make_record(0)]) == (False, 1)


def test_percentiles_become_a_histogram_that_reads_back_in_the_same_buckets(dims):
    record = make_record(0, requests=200, latency_histogram=None, latency_p50_ms=420, latency_p95_ms=1800)
    del record["latency_histogram"]
    services.usage_batch_ingest(reporter="gw", batch_id="b-1", records=[record])
    histogram = UsageRecord.objects.get().latency_histogram
    assert sum(histogram) == 200
    # 420 ms lies in (300, 500], 1800 ms in (1500, 2000]
    assert 300 < histogram_percentile(histogram, 0.5) <= 500
    assert 1500 < histogram_percentile(histogram, 0.95) <= 2000


def test_it_rejects_a_p95_below_the_p50(dims):
    record = make_record(0, latency_p50_ms=900, latency_p95_ms=100)
    del record["latency_histogram"]
    assert errors_of([record]) == [(0, "latency_p95_ms")]


def test_an_hourly_bucket_must_start_on_the_hour(dims):
    assert errors_of([make_record(5, bucket_seconds=3600)]) == [(0, "bucket_start")]
    created, _ = services.usage_batch_ingest(
        reporter="gw", batch_id="h", records=[make_record(0, bucket_seconds=3600)]
    )
    assert created
    assert UsageRecord.objects.get().bucket_start == HOUR


def test_usage_records_upsert_adds_without_a_batch(dims):
    assert services.usage_records_upsert(reporter="cloudwatch", records=[make_record(0), make_record(1)]) == 2
    assert services.usage_records_upsert(reporter="cloudwatch", records=[make_record(0)]) == 1
    assert sorted(UsageRecord.objects.values_list("requests", flat=True)) == [10, 20]
