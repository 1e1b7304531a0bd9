"""A loopback https stand-in for the two Azure Resource Manager APIs the connectors call:

- POST {scope}/providers/Microsoft.CostManagement/query?api-version=...   (Cost Management Query)
  answers like shared/data/billing/azure/cost-management-query-api-examples: `properties.columns`
  and `properties.rows` (UsageDate as a number like 20261001), `properties.nextLink` with a
  $skiptoken while rows remain; one HTTP 429 with the
  `x-ms-ratelimit-microsoft.costmanagement-*-retry-after` headers when asked; 401 for a wrong token.
- GET {resourceId}/providers/Microsoft.Insights/metrics?api-version=...     (Azure Monitor metrics)

TLS uses a self-signed CA made with the openssl CLI (session fixture `local_ca`); the clients get
it as `connection_verify` (setting `ca_bundle`), as bearer tokens are refused over plain http.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.standins.http import SeenRequest, Standin, StandinHandler, local_ca_make, standin_start

QUERY_PATH = re.compile(r"^(?P<scope>/.+)/providers/Microsoft\.CostManagement/query$", re.I)
QUERY_ID = "6a0d6a3f-0f3c-4b5b-9f5e-5c7c3c1e2a10"
METRICS_PATH = re.compile(r"^(?P<resource>/.+)/providers/Microsoft\.Insights/metrics$", re.I)


@dataclass
class ManagementState:
    token: str = "azure-test-token"
    # Query API: rows as [Cost, UsageDate, ResourceId, ServiceName, Currency]
    query_rows: list[list[Any]] = field(default_factory=list)
    page_size: int = 2
    throttle_once_seconds: float | None = None  # next query answers 429 with these headers
    throttled: int = 0
    denied_scopes: set[str] = field(default_factory=set)
    # Metrics: resource id (lower case) -> metric name -> list of timeseries documents
    metrics: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    query_bodies: list[dict] = field(default_factory=list)


class ManagementHandler(StandinHandler):
    def handle_request(self, request: SeenRequest) -> None:
        state: ManagementState = self.standin.state  # type: ignore[attr-defined]
        if request.headers.get("authorization") != f"Bearer {state.token}":
            self.send_json(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "The access token is invalid.",
                    }
                },
                headers={
                    "WWW-Authenticate": 'Bearer authorization_uri="https://login.example/", '
                    'error="invalid_token"'
                },
            )
            return
        if match := QUERY_PATH.match(request.path):
            self.query(state, match.group("scope"), request)
            return
        if match := METRICS_PATH.match(request.path):
            self.metrics(state, match.group("resource"), request)
            return
        self.send_json(404, {"error": {"code": "NotFound", "message": f"no route {request.path}"}})

    def query(self, state: ManagementState, scope: str, request: SeenRequest) -> None:
        if request.method != "POST" or "api-version" not in request.query:
            self.send_json(400, {"error": {"code": "BadRequest", "message": "api-version is required"}})
            return
        if scope in state.denied_scopes:
            self.send_json(
                403,
                {
                    "error": {
                        "code": "RBACAccessDenied",
                        "message": "The client does not have authorization to perform action "
                        "'Microsoft.CostManagement/query/action' over scope " + scope,
                    }
                },
            )
            return
        if state.throttle_once_seconds is not None:
            seconds = state.throttle_once_seconds
            state.throttle_once_seconds = None
            state.throttled += 1
            self.send_json(
                429,
                {"error": {"code": "429", "message": "Too many requests. Please retry."}},
                headers={
                    "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": str(int(seconds)),
                    "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": str(int(seconds)),
                    "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after": "0",
                },
            )
            return
        state.query_bodies.append(request.body)
        start = int(request.query.get("$skiptoken", ["0"])[0])
        page = state.query_rows[start : start + state.page_size]
        next_link = None
        if start + state.page_size < len(state.query_rows):
            host = self.headers.get("Host")
            next_link = (
                f"https://{host}{scope}/providers/Microsoft.CostManagement/query?"
                f"api-version={request.query['api-version'][0]}&$skiptoken={start + state.page_size}"
            )
        self.send_json(
            200,
            {
                "id": f"{scope}/providers/Microsoft.CostManagement/query/{QUERY_ID}",
                "name": QUERY_ID,
                "type": "Microsoft.CostManagement/query",
                "location": None,
                "sku": None,
                "eTag": None,
                "properties": {
                    "nextLink": next_link,
                    "columns": [
                        {"name": "Cost", "type": "Number"},
                        {"name": "UsageDate", "type": "Number"},
                        {"name": "ResourceId", "type": "String"},
                        {"name": "ServiceName", "type": "String"},
                        {"name": "Currency", "type": "String"},
                    ],
                    "rows": page,
                },
            },
        )

    def metrics(self, state: ManagementState, resource: str, request: SeenRequest) -> None:
        wanted = request.query.get("metricnames", [""])[0].split(",")
        interval = request.query.get("interval", ["PT1M"])[0]
        series_by_name = state.metrics.get(resource.lower())
        if series_by_name is None:
            self.send_json(404, {"error": {"code": "ResourceNotFound", "message": f"{resource} not found"}})
            return
        split = "statusCodeClass eq '*'" in request.query.get("$filter", [""])[0]
        value = []
        for name in wanted:
            timeseries = series_by_name.get(name, [])
            if not split:
                # Without a dimension filter Azure Monitor returns one series, the aggregate.
                merged: dict[str, dict] = {}
                for series in timeseries:
                    for point in series["data"]:
                        target = merged.setdefault(point["timeStamp"], {"timeStamp": point["timeStamp"]})
                        for key, number in point.items():
                            if key != "timeStamp":
                                target[key] = number if key == "average" else target.get(key, 0) + number
                timeseries = [{"metadatavalues": [], "data": [merged[k] for k in sorted(merged)]}]
            value.append(
                {
                    "id": f"{resource}/providers/Microsoft.Insights/metrics/{name}",
                    "type": "Microsoft.Insights/metrics",
                    "name": {"value": name, "localizedValue": name},
                    "displayDescription": "",
                    "unit": "Count" if name == "RequestsPerMinute" else "Milliseconds",
                    "timeseries": timeseries,
                    "errorCode": "Success",
                }
            )
        self.send_json(
            200,
            {
                "cost": 0,
                "timespan": request.query.get("timespan", [""])[0],
                "interval": interval,
                "value": value,
                "namespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
                "resourceregion": "westeurope",
            },
        )


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory):
    return local_ca_make(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def management_server(local_ca):
    standin: Standin = standin_start(ManagementHandler, ssl_context=local_ca.server_context())
    standin.state = ManagementState()  # type: ignore[attr-defined]
    yield standin
    standin.stop()
