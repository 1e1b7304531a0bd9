"""SageMaker usage from CloudWatch (moto server) into UsageRecord, exactly once per bucket."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import boto3
from django.db.models import Sum
from django.utils import timezone

from attribution.connectors.aws import AwsUsageConnector
from attribution.connectors.services import account_usage_sync
from attribution.models import RunState, UsageRecord

SEARCH = ("us-east-1", "llama-3-1-70b-search", "aws-use1-llama70b-sagemaker")
SUPPORT = ("us-west-2", "llama-3-1-8b-support", "aws-usw2-llama8b-sagemaker")


def put(region: str, namespace: str, endpoint: str, variant: str, metric: str, points) -> None:
    client = boto3.client("cloudwatch", region_name=region)
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": variant},
                ],
                "Timestamp": moment,
                "Value": value,
            }
            for moment, value in points
        ],
    )


def publish(hour: dt.datetime) -> None:
    """Two hours of minute samples on two endpoints; the search endpoint has two variants."""
    minute = dt.timedelta(minutes=1)
    for offset, (invocations, errors4, errors5, latency_us, gpu) in enumerate(
        [(120, 2, 1, 150_000.0, 50.0), (80, 0, 1, 250_500.0, 75.5)]
    ):
        moment = hour + offset * dt.timedelta(hours=1) + 7 * minute
        for variant in ("AllTraffic", "Canary"):
            put(
                SEARCH[0],
                "AWS/SageMaker",
                SEARCH[1],
                variant,
                "Invocations",
                [(moment, invocations), (moment + minute, 10)],
            )
            put(SEARCH[0], "AWS/SageMaker", SEARCH[1], variant, "Invocation4XXErrors", [(moment, errors4)])
            put(SEARCH[0], "AWS/SageMaker", SEARCH[1], variant, "Invocation5XXErrors", [(moment, errors5)])
            put(SEARCH[0], "AWS/SageMaker", SEARCH[1], variant, "ModelLatency", [(moment, latency_us)])
            put(
                SEARCH[0],
                "/aws/sagemaker/Endpoints",
                SEARCH[1],
                variant,
                "GPUUtilization",
                [(moment, gpu), (moment + minute, gpu)],
            )
    put(SUPPORT[0], "AWS/SageMaker", SUPPORT[1], "AllTraffic", "Invocations", [(hour + 5 * minute, 42)])
    put(
        SUPPORT[0], "AWS/SageMaker", SUPPORT[1], "AllTraffic", "ModelLatency", [(hour + 5 * minute, 84_000.0)]
    )
    # Another endpoint that is no deployment of ours: ignored.
    put(SUPPORT[0], "AWS/SageMaker", "someone-elses-endpoint", "AllTraffic", "Invocations", [(hour, 999)])


def configure(account) -> None:
    account.source_settings = {
        **account.source_settings,
        "sagemaker_variants": {SEARCH[1]: ["AllTraffic", "Canary"]},
        "usage_bucket_seconds": 3600,
    }
    account.save()


def test_the_usage_connector_yields_gateway_records_with_exact_sums(moto, demo_company):
    configure(demo_company)
    hour = dt.datetime(2026, 11, 20, 0, tzinfo=dt.UTC)
    publish(hour)

    records = list(
        AwsUsageConnector(demo_company).fetch_usage(
            start=hour + dt.timedelta(minutes=13), end=hour + dt.timedelta(hours=3)
        )
    )

    by_key = {(r["deployment"], r["bucket_start"]): r for r in records}
    first = by_key[(SEARCH[2], hour)]
    # Two variants, each 120 + 10 requests in the first hour.
    assert first["requests"] == 260
    assert first["errors"] == 6
    assert first["latency_ms_sum"] == 300.0  # 2 x 150,000 microseconds
    assert first["gpu_seconds"] == Decimal("120.000")  # 4 samples of 50 % over 60 s
    assert first["model"] == "llama-3-1-70b-instruct" and first["team"] is None
    assert first["bucket_seconds"] == 3600 and first["input_tokens"] == 0
    second = by_key[(SEARCH[2], hour + dt.timedelta(hours=1))]
    assert (second["requests"], second["errors"], second["latency_ms_sum"]) == (180, 2, 501.0)
    assert second["gpu_seconds"] == Decimal("181.200")  # 4 x 75.5 % x 60 s
    support = by_key[(SUPPORT[2], hour)]
    assert (support["requests"], support["latency_ms_sum"], support["gpu_seconds"]) == (
        42,
        84.0,
        Decimal("0.000"),
    )
    assert len(records) == 3


def test_usage_lands_in_usage_records_exactly_once(moto, demo_company):
    configure(demo_company)
    now = timezone.now()
    hour = (now - dt.timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    publish(hour)

    run = account_usage_sync(account_id=demo_company.pk, trigger="manual")

    assert run.state == RunState.SUCCEEDED, run.error
    assert run.usage_records == 3
    rows = UsageRecord.objects.filter(reporter="aws-metrics:aws-prod")
    totals = rows.aggregate(
        requests=Sum("requests"), errors=Sum("errors"), gpu=Sum("gpu_seconds"), latency=Sum("latency_ms_sum")
    )
    assert totals == {"requests": 260 + 180 + 42, "errors": 8, "gpu": Decimal("301.200"), "latency": 885.0}
    assert rows.get(deployment__slug=SUPPORT[2]).bucket_start == hour

    # The next sync starts where this one stopped: nothing is counted twice.
    again = account_usage_sync(account_id=demo_company.pk, trigger="manual")
    assert again.state == RunState.SUCCEEDED
    assert again.details["window_start"] == run.details["window_end"]
    assert rows.aggregate(requests=Sum("requests"))["requests"] == 482
