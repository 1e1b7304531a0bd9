"""Azure ML online endpoint metrics from the loopback https Azure Monitor stand-in into usage records."""

from __future__ import annotations

import datetime as dt

import pytest

from attribution.connectors.azure import AzureUsageConnector
from attribution.connectors.base import ConnectorError
from tests.factories import CloudAccountFactory, DeploymentFactory, ServedModelFactory

pytest_plugins = ["tests.standins.azure_management"]
pytestmark = pytest.mark.django_db

ENDPOINT = (
    "/subscriptions/6f1c2a7e-0000-4000-8000-000000000001/resourceGroups/rg-ml-serving/providers/"
    "Microsoft.MachineLearningServices/workspaces/mlw-prod-weu/onlineEndpoints/mistral-large-search"
)


def _points(key: str, values: list[float]) -> list[dict]:
    return [{"timeStamp": f"2026-10-01T{hour:02d}:00:00Z", key: value} for hour, value in enumerate(values)]


@pytest.fixture
def account(management_server, local_ca, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_AZURE_TOKEN", management_server.state.token)
    account = CloudAccountFactory(
        provider="azure",
        slug="azure-prod",
        source_settings={
            "credentials": "env:INFERENSYS_TEST_AZURE_TOKEN",
            "management_endpoint": management_server.url,
            "ca_bundle": str(local_ca.ca_pem),
        },
    )
    DeploymentFactory(
        slug="azure-weu-mistral-large-aml",
        model=ServedModelFactory(slug="mistral-large", name="Mistral Large"),
        account=account,
        provider="azure",
        region="westeurope",
        resource_id=ENDPOINT,
    )
    management_server.state.metrics[ENDPOINT.lower()] = {
        "RequestsPerMinute": [
            {"metadatavalues": [{"name": {"value": "statusCodeClass"}, "value": "2xx"}],
             "data": _points("total", [600.0, 540.0])},
            {"metadatavalues": [{"name": {"value": "statusCodeClass"}, "value": "4xx"}],
             "data": _points("total", [4.0, 0.0])},
            {"metadatavalues": [{"name": {"value": "statusCodeClass"}, "value": "5xx"}],
             "data": _points("total", [2.0, 1.0])},
        ],
        "RequestLatency": [{"metadatavalues": [], "data": _points("average", [250.5, 300.0])}],
    }  # fmt: skip
    return account


def test_it_turns_endpoint_metrics_into_hourly_usage_records(account, management_server):
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    records = list(AzureUsageConnector(account).fetch_usage(start=start, end=start + dt.timedelta(hours=2)))

    assert [(r["bucket_start"], r["requests"], r["errors"], r["latency_ms_sum"]) for r in records] == [
        ("2026-10-01T00:00:00Z", 606, 6, 151803.0),
        ("2026-10-01T01:00:00Z", 541, 1, 162300.0),
    ]
    assert {r["deployment"] for r in records} == {"azure-weu-mistral-large-aml"}
    assert {r["model"] for r in records} == {"mistral-large"} and all(
        r["bucket_seconds"] == 3600 for r in records
    )
    requests_call = management_server.requests[0]
    assert requests_call.query["metricnames"] == ["RequestsPerMinute"]
    assert requests_call.query["interval"] == ["PT1H"] and requests_call.query["aggregation"] == ["Total"]
    assert requests_call.query["$filter"] == ["statusCodeClass eq '*'"]


def test_it_rejects_a_bad_token(account, monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_AZURE_TOKEN", "wrong")
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    with pytest.raises(ConnectorError) as raised:
        list(AzureUsageConnector(account).fetch_usage(start=start, end=start + dt.timedelta(hours=1)))
    assert raised.value.error_kind == "authentication"
