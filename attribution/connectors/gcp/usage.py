"""Vertex AI endpoint usage from Cloud Monitoring."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from functools import cached_property
from typing import Any, ClassVar

from attribution.choices import Provider
from attribution.connectors.base import (
    ConnectorError,
    UsageConnector,
)
from attribution.connectors.gcp.auth import gcp_credentials, gcp_error
from attribution.models import Deployment, SyncErrorKind

logger = logging.getLogger(__name__)


# --- usage ---------------------------------------------------------------------------------------

VERTEX_METRICS = {
    "requests": "aiplatform.googleapis.com/prediction/online/prediction_count",
    "errors": "aiplatform.googleapis.com/prediction/online/error_count",
    "latency": "aiplatform.googleapis.com/prediction/online/prediction_latencies",
}
_ENDPOINT_IN_RESOURCE_ID = re.compile(r"/locations/([^/]+)/endpoints/([^/]+)$")


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GcpUsageConnector(UsageConnector):
    """Hourly requests, errors and latency of Vertex AI online endpoints from Cloud Monitoring.

    One `timeSeries.list` per metric (aligned to 1 h: ALIGN_SUM for the DELTA counts, ALIGN_DELTA
    for the latency distribution, whose count x mean gives latency_ms_sum), paged with
    nextPageToken. Series are mapped to deployments of this account by the endpoint in their
    `resource_id` (.../locations/L/endpoints/ID); series of unknown endpoints are skipped."""

    provider: ClassVar[str] = Provider.GCP
    bucket_seconds = 3600

    @cached_property
    def session(self):
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(gcp_credentials(self.settings))

    @property
    def endpoint(self) -> str:
        return str(self.settings.get("monitoring_endpoint") or "https://monitoring.googleapis.com").rstrip(
            "/"
        )

    def _projects(self) -> list[str]:
        projects = self.settings.get("metrics_projects") or [self.settings.get("project")]
        return [str(project) for project in projects if project]

    def _deployments(self) -> dict[tuple[str, str], Deployment]:
        by_endpoint = {}
        for deployment in Deployment.objects.filter(account=self.account).select_related("model"):
            match = _ENDPOINT_IN_RESOURCE_ID.search(deployment.resource_id or "")
            if match:
                by_endpoint[match.groups()] = deployment
        return by_endpoint

    def _series(self, *, project: str, metric: str, aligner: str, start: dt.datetime, end: dt.datetime):
        params: dict[str, str] = {
            "filter": f'metric.type = "{metric}" AND resource.type = "aiplatform.googleapis.com/Endpoint"',
            "interval.startTime": _rfc3339(start),
            "interval.endTime": _rfc3339(end),
            "aggregation.alignmentPeriod": f"{self.bucket_seconds}s",
            "aggregation.perSeriesAligner": aligner,
            "view": "FULL",
        }
        url = f"{self.endpoint}/v3/projects/{project}/timeSeries"
        while True:
            from requests import exceptions as http

            try:
                response = self.session.get(url, params=params, timeout=60)
            except (http.ConnectionError, http.Timeout) as error:
                raise ConnectorError(
                    f"Cloud Monitoring unreachable ({type(error).__name__})",
                    error_kind=SyncErrorKind.TRANSIENT,
                    transient=True,
                )
            except Exception as error:
                raise gcp_error(error, doing="reading Cloud Monitoring")
            if response.status_code != 200:
                raise _monitoring_error(response, project=project)
            document = response.json()
            yield from document.get("timeSeries", [])
            token = document.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    def fetch_usage(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[dict[str, Any]]:
        deployments = self._deployments()
        buckets: dict[tuple[str, dt.datetime], dict[str, Any]] = defaultdict(
            lambda: {"requests": 0, "errors": 0, "latency_ms_sum": 0.0}
        )
        skipped: set[tuple[str, str]] = set()
        plan = (
            ("requests", VERTEX_METRICS["requests"], "ALIGN_SUM"),
            ("errors", VERTEX_METRICS["errors"], "ALIGN_SUM"),
            ("latency", VERTEX_METRICS["latency"], "ALIGN_DELTA"),
        )
        for project in self._projects():
            for field_name, metric, aligner in plan:
                for series in self._series(
                    project=project, metric=metric, aligner=aligner, start=start, end=end
                ):
                    labels = series.get("resource", {}).get("labels", {})
                    key = (labels.get("location", ""), labels.get("endpoint_id", ""))
                    deployment = deployments.get(key)
                    if deployment is None:
                        skipped.add(key)
                        continue
                    for point in series.get("points", []):
                        bucket_end = dt.datetime.fromisoformat(
                            point["interval"]["endTime"].replace("Z", "+00:00")
                        )
                        bucket_start = bucket_end - dt.timedelta(seconds=self.bucket_seconds)
                        cell = buckets[(deployment.slug, bucket_start)]
                        cell["deployment"] = deployment
                        value = point.get("value", {})
                        if field_name == "latency":
                            distribution = value.get("distributionValue", {})
                            cell["latency_ms_sum"] += float(distribution.get("mean", 0)) * int(
                                distribution.get("count", 0)
                            )
                        else:
                            cell[field_name] += int(value.get("int64Value", 0))
        if skipped:
            logger.info(
                "gcp usage %s: series of unmapped endpoints skipped: %s", self.account.slug, sorted(skipped)
            )
        for (slug, bucket_start), cell in sorted(buckets.items(), key=lambda item: (item[0][1], item[0][0])):
            if not start <= bucket_start < end:
                continue
            deployment = cell["deployment"]
            yield {
                "bucket_start": _rfc3339(bucket_start),
                "bucket_seconds": self.bucket_seconds,
                "deployment": slug,
                "model": deployment.model.slug,
                "team": None,
                "requests": cell["requests"],
                "errors": min(cell["errors"], cell["requests"]),
                "latency_ms_sum": round(cell["latency_ms_sum"], 3),
            }


def _monitoring_error(response, *, project: str) -> ConnectorError:
    try:
        message = response.json().get("error", {}).get("message", "")
    except ValueError:
        message = response.text[:200]
    status = response.status_code
    if status == 401:
        return ConnectorError(
            f"Cloud Monitoring: authentication failed ({message})", error_kind=SyncErrorKind.AUTHENTICATION
        )
    if status == 403:
        return ConnectorError(
            f"Cloud Monitoring: permission denied on project {project} ({message}); "
            "grant roles/monitoring.viewer",
            error_kind=SyncErrorKind.PERMISSION,
        )
    if status == 404:
        return ConnectorError(
            f"Cloud Monitoring: project {project} not found ({message})", error_kind=SyncErrorKind.NOT_FOUND
        )
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After")
        return ConnectorError(
            f"Cloud Monitoring: HTTP {status} ({message})",
            error_kind=SyncErrorKind.TRANSIENT,
            transient=True,
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    return ConnectorError(f"Cloud Monitoring: HTTP {status} ({message})", error_kind=SyncErrorKind.INVALID)
