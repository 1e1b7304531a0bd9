"""A loopback Cloud Monitoring REST server: `GET /v3/projects/P/timeSeries` (projects.timeSeries.list)
with the documented query parameters (filter, interval.startTime/endTime, aggregation.*,
pageToken) and response shape (timeSeries[].metric/resource/metricKind/valueType/points[] with
interval {startTime, endTime} and value {int64Value | distributionValue}), one series a page so
nextPageToken paging is exercised."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from tests.standins.http import SeenRequest, StandinHandler, standin_start

_METRIC = re.compile(r'metric\.type\s*=\s*"([^"]+)"')


@dataclass
class MonitoringState:
    token: str = "ya29.monitoring"
    series: list[dict] = field(default_factory=list)  # full TimeSeries documents


class MonitoringHandler(StandinHandler):
    def handle_request(self, request: SeenRequest) -> None:
        state: MonitoringState = self.standin.state  # type: ignore[attr-defined]
        if request.headers.get("authorization") != f"Bearer {state.token}":
            self.send_json(401, {"error": {"code": 401, "message": "Request had invalid authentication "
                                           "credentials.", "status": "UNAUTHENTICATED"}})  # fmt: skip
            return
        match = re.fullmatch(r"/v3/projects/([^/]+)/timeSeries", request.path)
        if not match or request.method != "GET":
            self.send_json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
            return
        project = match.group(1)
        metric = _METRIC.search(request.query.get("filter", [""])[0])
        if not metric or request.query.get("aggregation.alignmentPeriod") != ["3600s"]:
            self.send_json(400, {"error": {"code": 400, "message": "bad filter or alignment",
                                           "status": "INVALID_ARGUMENT"}})  # fmt: skip
            return
        start = request.query["interval.startTime"][0]
        end = request.query["interval.endTime"][0]
        matching = []
        for series in state.series:
            if series["metric"]["type"] != metric.group(1):
                continue
            if series["resource"]["labels"]["resource_container"] != project:
                continue
            points = [p for p in series["points"] if start < p["interval"]["endTime"] <= end]
            if points:
                matching.append({**series, "points": points})
        index = int(request.query.get("pageToken", ["0"])[0] or 0)
        document: dict = {"timeSeries": matching[index : index + 1], "unit": ""}
        if index + 1 < len(matching):
            document["nextPageToken"] = str(index + 1)
        self.send_json(200, document)


@pytest.fixture
def monitoring_server():
    standin = standin_start(MonitoringHandler)
    standin.state = MonitoringState()  # type: ignore[attr-defined]
    yield standin
    standin.stop()
