from __future__ import annotations

import datetime as dt

import pytest

from attribution.models import LATENCY_BUCKET_BOUNDS_MS
from routing.models import Gateway
from routing.services import gateway_token_rotate
from tests.factories import DeploymentFactory, ServedModelFactory, TeamFactory

HOUR = dt.datetime(2026, 10, 1, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def dims(db):
    model = ServedModelFactory(slug="llama-70b", name="Llama 70B")
    return {
        "model": model,
        "deployment": DeploymentFactory(slug="llama-pool", model=model),
        "search": TeamFactory(slug="search", name="Search"),
        "ads": TeamFactory(slug="ads", name="Ads"),
    }


@pytest.fixture
def gateway(db):
    return Gateway.objects.create(name="Envoy prod", slug="gw-envoy-prod", kind="envoy")


@pytest.fixture
def gateway_token(gateway) -> str:
    return gateway_token_rotate(gateway=gateway, actor=None)


def make_record(minute: int = 0, *, team: str | None = "search", requests: int = 10, **overrides) -> dict:
    histogram = [0] * (len(LATENCY_BUCKET_BOUNDS_MS) + 1)
    histogram[3] = requests  # 200-300 ms
    record = {
        "bucket_start": (HOUR + dt.timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
        "bucket_seconds": 60,
        "deployment": "llama-pool",
        "team": team,
        "model": "llama-70b",
        "requests": requests,
        "input_tokens": requests * 100,
        "output_tokens": requests * 30,
        "errors": 0,
        "gpu_seconds": "1.250",
        "latency_ms_sum": requests * 250.0,
        "latency_histogram": histogram,
    }
    record.update(overrides)
    return record
