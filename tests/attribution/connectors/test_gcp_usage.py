"""Vertex AI endpoint metrics from the loopback Cloud Monitoring REST server into usage records."""

from __future__ import annotations

import datetime as dt

import pytest

from attribution.connectors.base import ConnectorError
from attribution.connectors.gcp import VERTEX_METRICS, GcpUsageConnector
from tests.factories import CloudAccountFactory, DeploymentFactory, ServedModelFactory

pytest_plugins = ["tests.standins.gcp_monitoring"]
pytestmark = pytest.mark.django_db

PROJECT = "acme-ml-prod"
START = dt.datetime(2026, 10, 1, 0, tzinfo=dt.UTC)


def _series(metric: str, endpoint: str, values: list, *, deployed_model: str = "1") -> dict:
    points = []
    for hour, value in enumerate(values):
        end = START + dt.timedelta(hours=hour + 1)
        interval = {
            "startTime": f"{end - dt.timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}",
            "endTime": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        }
        if isinstance(value, tuple):
            count, mean = value
            points.append(
                {"interval": interval, "value": {"distributionValue": {"count": str(count), "mean": mean}}}
            )
        else:
            points.append({"interval": interval, "value": {"int64Value": str(value)}})
    return {
        "metric": {"type": metric, "labels": {"deployed_model_id": deployed_model}},
        "resource": {
            "type": "aiplatform.googleapis.com/Endpoint",
            "labels": {"resource_container": PROJECT, "location": "us-central1", "endpoint_id": endpoint},
        },
        "metricKind": "DELTA",
        "valueType": "DISTRIBUTION" if isinstance(values[0], tuple) else "INT64",
        "points": list(reversed(points)),  # newest first, as the API returns them
    }


@pytest.fixture
def account(monitoring_server, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_GCP_TOKEN", monitoring_server.state.token)
    account = CloudAccountFactory(
        provider="gcp",
        slug="gcp-prod",
        source_settings={
            "table": "acme-billing.billing_export.t",
            "project": "acme-billing",
            "metrics_projects": [PROJECT],
            "credentials": "env:INFERENSYS_TEST_GCP_TOKEN",
            "monitoring_endpoint": monitoring_server.url,
        },
    )
    model = ServedModelFactory(slug="llama-3-1-8b-instruct", name="Llama 3.1 8B")
    DeploymentFactory(
        slug="gcp-usc1-llama-8b-vertex",
        model=model,
        account=account,
        provider="gcp",
        region="us-central1",
        resource_id=f"//aiplatform.googleapis.com/projects/{PROJECT}/locations/us-central1/endpoints/4417",
    )
    return account


def test_it_turns_vertex_metrics_into_hourly_usage_records(account, monitoring_server):
    monitoring_server.state.series = [
        # Two deployed models behind one endpoint: their counts add up.
        _series(VERTEX_METRICS["requests"], "4417", [1200, 900, 0], deployed_model="1"),
        _series(VERTEX_METRICS["requests"], "4417", [300, 100, 50], deployed_model="2"),
        _series(VERTEX_METRICS["errors"], "4417", [3, 0, 1]),
        _series(VERTEX_METRICS["latency"], "4417", [(1500, 412.5), (1000, 380.0), (50, 1000.0)]),
        # An endpoint nobody mapped to a deployment is skipped.
        _series(VERTEX_METRICS["requests"], "9999", [77, 77, 77]),
    ]
    records = list(GcpUsageConnector(account).fetch_usage(start=START, end=START + dt.timedelta(hours=3)))

    assert records == [
        {
            "bucket_start": "2026-10-01T00:00:00Z",
            "bucket_seconds": 3600,
            "deployment": "gcp-usc1-llama-8b-vertex",
            "model": "llama-3-1-8b-instruct",
            "team": None,
            "requests": 1500,
            "errors": 3,
            "latency_ms_sum": 618750.0,
        },
        {
            "bucket_start": "2026-10-01T01:00:00Z",
            "bucket_seconds": 3600,
            "deployment": "gcp-usc1-llama-8b-vertex",
            "model": "llama-3-1-8b-instruct",
            "team": None,
            "requests": 1000,
            "errors": 0,
            "latency_ms_sum": 380000.0,
        },
        {
            "bucket_start": "2026-10-01T02:00:00Z",
            "bucket_seconds": 3600,
            "deployment": "gcp-usc1-llama-8b-vertex",
            "model": "llama-3-1-8b-instruct",
            "team": None,
            "requests": 50,
            "errors": 1,
            "latency_ms_sum": 50000.0,
        },
    ]
    assert sum(r["requests"] for r in records) == 2550
    # One page per series: the client followed nextPageToken.
    assert any("pageToken" in r.query for r in monitoring_server.requests)
    first = monitoring_server.requests[0].query
    assert first["aggregation.perSeriesAligner"] == ["ALIGN_SUM"] and first["interval.startTime"] == [
        "2026-10-01T00:00:00Z"
    ]


def test_it_rejects_a_bad_token(account, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_GCP_TOKEN", "ya29.wrong")
    with pytest.raises(ConnectorError) as raised:
        list(GcpUsageConnector(account).fetch_usage(start=START, end=START + dt.timedelta(hours=1)))
    assert raised.value.error_kind == "authentication" and "ya29" not in str(raised.value)
