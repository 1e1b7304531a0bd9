"""The governance API of issue 11 in the OpenAPI schema: every operation a client writes or reads
through is documented with an example, and every list can be filtered and paginated."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db
COLLECTIONS = ["budgets", "thresholds", "quotas", "alerts", "channels", "audit-events"]


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operation(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/budgets"), ("put", "/api/v1/budgets/{id}"),
        ("get", "/api/v1/thresholds"), ("post", "/api/v1/thresholds"), ("put", "/api/v1/thresholds/{id}"),
        ("get", "/api/v1/quotas"), ("post", "/api/v1/quotas"), ("put", "/api/v1/quotas/{id}"),
        ("get", "/api/v1/alerts"), ("post", "/api/v1/alerts/{id}/ack"),
        ("post", "/api/v1/channels"), ("put", "/api/v1/channels/{id}"),
        ("get", "/api/v1/audit-events"),
        ("post", "/api/v1/leases"),
    ],
)  # fmt: skip
def test_the_operation_carries_an_example(schema, method, path):
    assert '"examples"' in json.dumps(_operation(schema, method, path)), f"{method.upper()} {path}"


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_each_list_is_paginated_and_filtered(schema, collection):
    parameters = {p["name"] for p in _operation(schema, "get", f"/api/v1/{collection}").get("parameters", [])}
    assert {"limit", "offset"} <= parameters
    assert parameters - {"limit", "offset"}, f"/api/v1/{collection} has no filter"
