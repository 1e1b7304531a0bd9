"""Azure: Cost Management exports in Blob storage, the Query API for month-to-date figures, and
Azure Monitor metrics of Azure ML online endpoints.

Source settings of an Azure account:

    storage_account     name of the storage account the exports are delivered to, or
    account_url         its blob endpoint (https://NAME.blob.core.windows.net), or
    storage_credential  reference ("env:NAME" / "file:/path") to a connection string (tests, SAS).
    container, directory        where the exports write (the export's root folder path).
    actual_export_name, amortized_export_name   the two exports (or focus_export_name alone).
    credentials         Entra ID: "ambient" (managed identity, workload identity, az login via
                        DefaultAzureCredential), or a reference to JSON {tenant_id, client_id,
                        client_secret}, or to a bare access token (short-lived).
    cost_scope          Query API scope, e.g. /providers/Microsoft.Billing/billingAccounts/A/
                        billingProfiles/P or /subscriptions/S; default: built from
                        billing_account_id (+ billing_profile_id).
    month_to_date_query true to fill the current month from the Query API until its export lands.
    management_endpoint ARM endpoint override (tests; default https://management.azure.com).
    ca_bundle           CA file for a TLS-intercepting proxy or the tests' self-signed CA.
    max_throttle_wait_seconds   bounded total wait on HTTP 429 per sync (default 120).
    final_after_days    days into the next month before a month may be final (default 5).

Exports. A run writes <directory>/<export>/<YYYYMMDD-YYYYMMDD>/<runId>/ with the CSV parts and a
manifest.json (`runInfo.runId`, `runInfo.submittedTime`, `runInfo.startDate/endDate`,
`blobs[].blobName`). Per period we take the newest manifest of each export (by submittedTime), so
`source_version` is "actual=<runId>;amortized=<runId>": a new run of either export is a new
version and the whole period is re-read. Files stream with `download_blob().chunks()`.

Finality: a month is final when its newest run covers the month to its last day and was
submitted at least `final_after_days` after the month ended (MCA invoices close in the first
days of the next month; a later run is a restatement).

Query API and exports together. With `month_to_date_query`, a month that has no export run yet
(typically the current one, before the first daily export) gets a delivery built from the Query
API: daily ActualCost grouped by ResourceId and ServiceName, as a CSV the Azure parser reads,
marked non-final with source_version "query:<date>". As soon as an export run exists for that
month its version ("actual=...") differs, so the sync re-ingests the period from the export and
the estimate is replaced whole. A month with an export never uses the Query API (an export is
detailed; the Query API is aggregated).

Usage: Azure Monitor metrics (REST `Microsoft.Insights/metrics`, api-version 2023-10-01) through
azure-core's pipeline: azure-monitor-query 2.x dropped metrics (moved to a separate
azure-monitor-querymetrics package), and one documented GET with the credential we already have
needs no new dependency. RequestsPerMinute (Total per hour, split by statusCodeClass: 4xx and 5xx
count as errors) and RequestLatency (Average, times requests = latency_ms_sum).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from functools import cached_property
from typing import IO, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from django.utils import timezone

from attribution.choices import Provider
from attribution.connectors.base import (
    BillingConnector,
    ChunkStream,
    ConnectionCheck,
    ConnectionReport,
    ConnectorError,
    PeriodDelivery,
    RemoteFile,
    UsageConnector,
)
from attribution.connectors.credentials import CredentialsError, reference_resolve
from attribution.models import Deployment, SyncErrorKind

logger = logging.getLogger(__name__)

MANAGEMENT = "https://management.azure.com"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
_PERIOD_FOLDER = re.compile(r"^(\d{8})-(\d{8})$")
_RETRY_AFTER_HEADER = re.compile(r"^x-ms-ratelimit-microsoft\.costmanagement-.*-retry-after$", re.I)
QUERY_API_VERSION = "2025-03-01"
METRICS_API_VERSION = "2023-10-01"


# --- credentials ---------------------------------------------------------------------------------


def _reference_text(reference: str, *, what: str) -> str:
    """The text an `env:`/`file:` reference points at; a missing one is an authentication problem."""
    try:
        return reference_resolve(reference)
    except CredentialsError as error:
        kind = (
            SyncErrorKind.AUTHENTICATION if reference.startswith(("env:", "file:")) else SyncErrorKind.INVALID
        )
        raise ConnectorError(f"{what}: {error}", error_kind=kind) from None


class _StaticTokenCredential:
    """An access token handed over as is (e.g. `az account get-access-token`); it is not renewed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


def azure_credential(settings: dict[str, Any]):
    reference = str(settings.get("credentials") or "ambient")
    if reference == "ambient":
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    text = _reference_text(reference, what="Azure credentials")
    if not text.startswith("{"):
        return _StaticTokenCredential(text)
    try:
        info = json.loads(text)
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            tenant_id=info["tenant_id"], client_id=info["client_id"], client_secret=info["client_secret"]
        )
    except (ValueError, KeyError) as error:
        raise ConnectorError(
            "Azure credentials: JSON with tenant_id, client_id and client_secret expected "
            f"({type(error).__name__})",
            error_kind=SyncErrorKind.AUTHENTICATION,
        )


def _transport_options(settings: dict[str, Any]) -> dict[str, Any]:
    return {"connection_verify": settings["ca_bundle"]} if settings.get("ca_bundle") else {}


def azure_error(error: Exception, *, doing: str, hint: str = "") -> ConnectorError:
    from azure.core import exceptions as core

    if isinstance(error, ConnectorError):
        return error
    status = getattr(getattr(error, "response", None), "status_code", None) or getattr(
        error, "status_code", None
    )
    code = getattr(error, "error_code", None) or ""
    message = getattr(error, "message", None) or str(error)
    message = message.splitlines()[0] if message else type(error).__name__
    suffix = f"; {hint}" if hint else ""
    if isinstance(error, core.ClientAuthenticationError) and status != 403 or status == 401:
        return ConnectorError(
            f"{doing}: authentication failed ({message})", error_kind=SyncErrorKind.AUTHENTICATION
        )
    # A wrong storage key or SAS: 403 AuthenticationFailed ("Server failed to authenticate the
    # request"), not a missing role.
    if status == 403 and (code == "AuthenticationFailed" or "failed to authenticate" in message):
        return ConnectorError(
            f"{doing}: authentication failed ({message})", error_kind=SyncErrorKind.AUTHENTICATION
        )
    if status == 403:
        return ConnectorError(
            f"{doing}: permission denied ({message}){suffix}", error_kind=SyncErrorKind.PERMISSION
        )
    if isinstance(error, core.ResourceNotFoundError) or status == 404:
        return ConnectorError(f"{doing}: not found ({code or message})", error_kind=SyncErrorKind.NOT_FOUND)
    if (
        status == 429
        or (status or 0) >= 500
        or isinstance(error, core.ServiceRequestError | core.ServiceResponseError)
    ):
        return ConnectorError(f"{doing}: {message}", error_kind=SyncErrorKind.TRANSIENT, transient=True)
    return ConnectorError(f"{doing}: {message}", error_kind=SyncErrorKind.INVALID)


# --- streaming -----------------------------------------------------------------------------------


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


# --- billing -------------------------------------------------------------------------------------


class AzureBillingConnector(BillingConnector):
    provider: ClassVar[str] = Provider.AZURE

    @property
    def exports(self) -> dict[str, str]:
        if self.settings.get("focus_export_name"):
            return {"focus": str(self.settings["focus_export_name"])}
        exports = {
            dataset: str(self.settings[f"{dataset}_export_name"])
            for dataset in ("actual", "amortized")
            if self.settings.get(f"{dataset}_export_name")
        }
        if not exports:
            raise ConnectorError(
                "source_settings need actual_export_name and amortized_export_name (or focus_export_name)",
                error_kind=SyncErrorKind.INVALID,
            )
        return exports

    @property
    def container_name(self) -> str:
        container = self.settings.get("container")
        if not container:
            raise ConnectorError("source_settings.container is required", error_kind=SyncErrorKind.INVALID)
        return str(container)

    @property
    def directory(self) -> str:
        return str(self.settings.get("directory") or "").strip("/")

    @cached_property
    def blob_service(self):
        from azure.storage.blob import BlobServiceClient

        options = _transport_options(self.settings)
        if self.settings.get("storage_credential"):
            connection_string = _reference_text(
                str(self.settings["storage_credential"]), what="storage connection string"
            )
            try:
                return BlobServiceClient.from_connection_string(connection_string, **options)
            except ValueError as error:
                raise ConnectorError(
                    f"storage connection string is not valid ({error})",
                    error_kind=SyncErrorKind.AUTHENTICATION,
                )
        url = self.settings.get("account_url") or (
            f"https://{self.settings['storage_account']}.blob.core.windows.net"
            if self.settings.get("storage_account")
            else None
        )
        if not url:
            raise ConnectorError(
                "source_settings need storage_account, account_url or storage_credential",
                error_kind=SyncErrorKind.INVALID,
            )
        return BlobServiceClient(account_url=url, credential=azure_credential(self.settings), **options)

    @cached_property
    def container(self):
        return self.blob_service.get_container_client(self.container_name)

    def _storage_error(self, error: Exception) -> ConnectorError:
        converted = azure_error(
            error,
            doing=f"reading container {self.container_name}",
            hint=f"grant Storage Blob Data Reader on container {self.container_name}",
        )
        if converted.error_kind == SyncErrorKind.NOT_FOUND:
            converted.args = (
                f"container {self.container_name} not found in storage account "
                f"{self.blob_service.account_name}: check source_settings.container and the export's "
                "destination",
            )
        return converted

    # --- manifests ---

    def _newest_manifests(self, dataset: str, export_name: str) -> dict[dt.date, dict]:
        """The newest run's manifest per billing period of one export."""
        prefix = f"{self.directory}/{export_name}/" if self.directory else f"{export_name}/"
        candidates: dict[dt.date, list] = defaultdict(list)
        try:
            for blob in self.container.list_blobs(name_starts_with=prefix):
                if not blob.name.endswith("/manifest.json"):
                    continue
                parts = blob.name[len(prefix) :].split("/")
                match = _PERIOD_FOLDER.match(parts[0]) if len(parts) == 3 else None
                if not match:
                    continue
                start = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
                candidates[start.replace(day=1)].append(blob)
            manifests = {}
            for period, blobs in candidates.items():
                documents = [json.loads(self.container.download_blob(b.name).readall()) for b in blobs]
                newest = max(documents, key=lambda doc: doc.get("runInfo", {}).get("submittedTime", ""))
                newest["_folder"] = "/".join(
                    next(b.name for b, d in zip(blobs, documents, strict=True) if d is newest).split("/")[:-1]
                )
                manifests[period] = newest
        except ConnectorError:
            raise
        except ValueError as error:
            raise ConnectorError(
                f"a manifest.json of export {export_name} is not valid JSON ({error})",
                error_kind=SyncErrorKind.INVALID,
            )
        except Exception as error:
            raise self._storage_error(error)
        return manifests

    def _blob_file(self, name: str, *, dataset: str) -> RemoteFile:
        try:
            properties = self.container.get_blob_client(name).get_blob_properties()
        except Exception as error:
            raise self._storage_error(error)

        return RemoteFile(
            name=f"azure://{self.container_name}/{name}",
            version=properties.etag,
            open=lambda: self._blob_open(name, properties.etag),
            size=properties.size,
            dataset="actual" if dataset == "focus" else dataset,
        )

    def _blob_open(self, name: str, etag: str) -> IO[bytes]:
        """The blob at exactly this etag, streamed chunk by chunk (download_blob().chunks())."""
        from azure.core.exceptions import ResourceModifiedError

        try:
            # if_match: the parts of one run never change; a mismatch means a new run is being
            # written and the sync will see it next time.
            downloader = self.container.download_blob(name, etag=etag, match_condition=_if_match())
        except ResourceModifiedError:
            raise ConnectorError(
                f"azure://{self.container_name}/{name} changed after the run was planned (etag {etag} is "
                "gone); the next sync loads the new export run",
                error_kind=SyncErrorKind.INVALID,
            ) from None
        except Exception as error:
            raise self._storage_error(error)
        return io.BufferedReader(ChunkStream(iter(downloader.chunks())), buffer_size=1 << 20)

    def open_uri(self, uri: str, version: str, *, seekable: bool = False) -> IO[bytes]:
        """A blob at its etag, or the month-to-date Query API rows again. No ranged reads: a Parquet
        export is copied to an anonymous temporary file by the ingest (attribution.ingest.sources)."""
        blob_prefix = f"azure://{self.container_name}/"
        if uri.startswith(blob_prefix):
            return self._blob_open(uri[len(blob_prefix) :], version)
        query_prefix = f"azure-query://{self.cost_scope.strip('/')}?"
        if uri.startswith(query_prefix):
            from urllib.parse import parse_qs

            query = parse_qs(uri[len(query_prefix) :])
            try:
                period = dt.date.fromisoformat(query["month"][0] + "-01")
                today = dt.date.fromisoformat(query["to"][0])
            except (KeyError, IndexError, ValueError):
                raise ConnectorError(f"{uri} is not a month-to-date query", error_kind=SyncErrorKind.INVALID)
            return self._query_open(period=period, today=today)
        raise ConnectorError(
            f"{uri} is not in container {self.container_name} of this account (did source_settings change?)",
            error_kind=SyncErrorKind.INVALID,
        )

    def _is_final(self, period: dt.date, manifests: list[dict], now: dt.datetime) -> bool:
        last_day = _next_month(period) - dt.timedelta(days=1)
        closes = dt.datetime.combine(_next_month(period), dt.time(), tzinfo=dt.UTC) + dt.timedelta(
            days=int(self.settings.get("final_after_days", 5))
        )
        for manifest in manifests:
            run = manifest.get("runInfo", {})
            try:
                end = dt.datetime.fromisoformat(run.get("endDate", "")[:19]).date()
                submitted = dt.datetime.fromisoformat(run.get("submittedTime", "")[:19]).replace(
                    tzinfo=dt.UTC
                )
            except ValueError:
                return False
            if end < last_day or submitted < closes:
                return False
        return now >= closes

    def discover(self) -> list[PeriodDelivery]:
        now = timezone.now()
        by_period: dict[dt.date, dict[str, dict]] = defaultdict(dict)
        for dataset, export_name in self.exports.items():
            for period, manifest in self._newest_manifests(dataset, export_name).items():
                by_period[period][dataset] = manifest
        deliveries = []
        for period in sorted(by_period, reverse=True):
            manifests = by_period[period]
            files = []
            for dataset, manifest in sorted(manifests.items()):
                for blob in manifest.get("blobs", []):
                    files.append(self._blob_file(blob["blobName"], dataset=dataset))
            deliveries.append(
                PeriodDelivery(
                    billing_period_start=period,
                    source_version=";".join(
                        f"{dataset}={manifest['runInfo']['runId']}"
                        for dataset, manifest in sorted(manifests.items())
                    ),
                    is_final=len(manifests) == len(self.exports)
                    and self._is_final(period, list(manifests.values()), now),
                    files=files,
                    source_format="focus" if "focus" in manifests else "azure-cost-details",
                    details={
                        "runs": {
                            dataset: {
                                "run_id": manifest["runInfo"]["runId"],
                                "submitted": manifest["runInfo"].get("submittedTime"),
                                "rows": manifest.get("dataRowCount"),
                                "folder": manifest["_folder"],
                            }
                            for dataset, manifest in manifests.items()
                        }
                    },
                )
            )
        current = now.date().replace(day=1)
        if self.settings.get("month_to_date_query") and current not in by_period:
            deliveries.insert(0, self.month_to_date_delivery(period=current, today=now.date()))
        return deliveries

    def test_connection(self) -> ConnectionReport:
        checks: list[ConnectionCheck] = []
        kind = SyncErrorKind.NONE
        try:
            exports = self.exports
            self.blob_service  # noqa: B018 - resolves the credential reference
            checks.append(ConnectionCheck("credentials", True))
            try:
                self.container.get_container_properties()
            except Exception as error:
                raise self._storage_error(error)
            checks.append(ConnectionCheck(f"container {self.container_name}", True))
            for dataset, export_name in exports.items():
                if not self._newest_manifests(dataset, export_name):
                    kind = SyncErrorKind.EMPTY
                    checks.append(
                        ConnectionCheck(
                            f"export {export_name}",
                            False,
                            f"no run of export {export_name} under {self.container_name}/{self.directory}: "
                            "run the export once (Cost Management > Exports > Run now)",
                        )
                    )
                else:
                    checks.append(ConnectionCheck(f"export {export_name}", True))
            if self.settings.get("month_to_date_query"):
                today = timezone.now().date()
                next(self._query_rows(period=today.replace(day=1), today=today, probe=True), None)
                checks.append(ConnectionCheck(f"Cost Management query on {self.cost_scope}", True))
        except ConnectorError as error:
            kind = error.error_kind
            checks.append(ConnectionCheck(_check_name(error.error_kind), False, str(error)))
        return ConnectionReport(checks=checks, error_kind=kind)

    # --- Query API (month to date) ---

    @property
    def cost_scope(self) -> str:
        if self.settings.get("cost_scope"):
            return "/" + str(self.settings["cost_scope"]).strip("/")
        account = self.settings.get("billing_account_id")
        if not account:
            raise ConnectorError(
                "source_settings.cost_scope (or billing_account_id) is required for the Query API",
                error_kind=SyncErrorKind.INVALID,
            )
        scope = f"/providers/Microsoft.Billing/billingAccounts/{account}"
        if self.settings.get("billing_profile_id"):
            scope += f"/billingProfiles/{self.settings['billing_profile_id']}"
        return scope

    @cached_property
    def cost_client(self):
        from azure.mgmt.costmanagement import CostManagementClient

        return CostManagementClient(
            azure_credential(self.settings),
            base_url=str(self.settings.get("management_endpoint") or MANAGEMENT),
            **_transport_options(self.settings),
        )

    def _query_parameters(self, period: dt.date, today: dt.date) -> dict:
        end = min(today, _next_month(period) - dt.timedelta(days=1))
        return {
            "type": "ActualCost",
            "timeframe": "Custom",
            "timePeriod": {"from": f"{period:%Y-%m-%d}T00:00:00Z", "to": f"{end:%Y-%m-%d}T23:59:59Z"},
            "dataset": {
                "granularity": "Daily",
                "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
                # The Query API groups by at most two dimensions.
                "grouping": [
                    {"type": "Dimension", "name": "ResourceId"},
                    {"type": "Dimension", "name": "ServiceName"},
                ],
            },
        }

    def _query_page(self, parameters: dict, skiptoken: str | None, waited: list[float]):
        from azure.core.exceptions import HttpResponseError

        budget = float(self.settings.get("max_throttle_wait_seconds", 120))
        while True:
            try:
                kwargs = {"params": {"$skiptoken": skiptoken}} if skiptoken else {}
                return self.cost_client.query.usage(self.cost_scope, parameters, **kwargs)
            except HttpResponseError as error:
                response = error.response
                if response is None or response.status_code != 429:
                    raise azure_error(
                        error,
                        doing=f"Cost Management query on {self.cost_scope}",
                        hint=f"grant Cost Management Reader on {self.cost_scope}",
                    )
                delay = throttle_delay(response.headers)
                if sum(waited) + delay > budget:
                    raise ConnectorError(
                        f"Cost Management throttled the query on {self.cost_scope} (HTTP 429) for longer "
                        f"than {budget:.0f} s; retry after {delay:.0f} s",
                        error_kind=SyncErrorKind.TRANSIENT,
                        transient=True,
                        retry_after=delay,
                    )
                logger.info(
                    "cost management 429 on %s: waiting %.1f s as the headers ask", self.cost_scope, delay
                )
                time.sleep(delay)
                waited.append(delay)

    def _query_rows(
        self, *, period: dt.date, today: dt.date, probe: bool = False
    ) -> Iterator[dict[str, Any]]:
        parameters = self._query_parameters(period, today)
        waited: list[float] = []
        skiptoken = None
        while True:
            result = self._query_page(parameters, skiptoken, waited)
            columns = [column.name for column in result.columns or []]
            for values in result.rows or []:
                yield dict(zip(columns, values, strict=False))
            if probe or not result.next_link:
                return
            token = parse_qs(urlsplit(result.next_link).query).get("$skiptoken")
            if not token:
                raise ConnectorError(
                    f"Cost Management nextLink without $skiptoken: {result.next_link[:120]}",
                    error_kind=SyncErrorKind.INVALID,
                )
            skiptoken = token[0]

    def month_to_date_delivery(self, *, period: dt.date, today: dt.date) -> PeriodDelivery:
        version = f"query:{today:%Y-%m-%d}"

        def opener() -> IO[bytes]:
            return self._query_open(period=period, today=today)

        return PeriodDelivery(
            billing_period_start=period,
            source_version=version,
            is_final=False,
            files=[
                RemoteFile(
                    name=f"azure-query://{self.cost_scope.strip('/')}?month={period:%Y-%m}&to={today:%Y-%m-%d}",
                    version=version,
                    open=opener,
                    dataset="actual",
                )
            ],
            source_format="azure-cost-details",
            details={"estimate": "month-to-date", "source": "Cost Management Query API"},
        )

    def _query_open(self, *, period: dt.date, today: dt.date) -> IO[bytes]:
        return io.BufferedReader(
            ChunkStream(self._query_csv(period=period, today=today)), buffer_size=1 << 16
        )

    def _query_csv(self, *, period: dt.date, today: dt.date) -> Iterator[bytes]:
        """The Query API rows as a CSV in the cost details column names the Azure parser reads."""
        import csv

        header = [
            "Date",
            "CostInBillingCurrency",
            "BillingCurrency",
            "ResourceId",
            "MeterCategory",
            "ChargeType",
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        for row in self._query_rows(period=period, today=today):
            usage_date = str(row.get("UsageDate", ""))
            cost = row.get("Cost", row.get("PreTaxCost", row.get("CostUSD")))
            writer.writerow(
                [
                    f"{usage_date[:4]}-{usage_date[4:6]}-{usage_date[6:8]}",
                    # repr keeps the JSON number's shortest round-trip digits.
                    format(Decimal(repr(cost)) if isinstance(cost, float) else Decimal(str(cost)), "f"),
                    row.get("Currency", ""),
                    row.get("ResourceId", ""),
                    row.get("ServiceName", ""),
                    "Usage",
                ]
            )
            if buffer.tell() > 1 << 16:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()


def throttle_delay(headers) -> float:
    """Seconds to wait from the `x-ms-ratelimit-microsoft.costmanagement-*-retry-after` headers
    (qpu, entity, tenant, client type): the longest of them; else Retry-After; else 10 s."""
    delays = []
    for name, value in headers.items():
        if _RETRY_AFTER_HEADER.match(name):
            try:
                delays.append(float(value))
            except ValueError:
                continue
    if not delays and headers.get("Retry-After", "").strip().isdigit():
        delays.append(float(headers["Retry-After"]))
    return max(delays) if delays else 10.0


def _if_match():
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


def _check_name(error_kind: str) -> str:
    return {
        SyncErrorKind.AUTHENTICATION: "credentials",
        SyncErrorKind.PERMISSION: "permission",
        SyncErrorKind.NOT_FOUND: "export container",
        SyncErrorKind.EMPTY: "export runs",
        SyncErrorKind.TRANSIENT: "reachability",
    }.get(error_kind, "settings")


# --- usage ---------------------------------------------------------------------------------------

_ONLINE_ENDPOINT = re.compile(r"/onlineEndpoints/[^/]+$", re.I)


class AzureUsageConnector(UsageConnector):
    """Hourly requests, errors and latency of Azure ML online endpoints (Azure Monitor metrics).

    Deployments of this account whose resource_id is an online endpoint are read, one metrics
    call per endpoint and metric set."""

    provider: ClassVar[str] = Provider.AZURE
    bucket_seconds = 3600

    @cached_property
    def pipeline(self):
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RetryPolicy,
            UserAgentPolicy,
        )

        return PipelineClient(
            base_url=str(self.settings.get("management_endpoint") or MANAGEMENT),
            policies=[
                HeadersPolicy(),
                UserAgentPolicy("inferensys"),
                RetryPolicy(retry_total=3),
                BearerTokenCredentialPolicy(azure_credential(self.settings), MANAGEMENT_SCOPE),
            ],
        )

    def _metrics(self, resource_id: str, *, names: str, aggregation: str, start, end, dimension_filter=None):
        from azure.core.rest import HttpRequest

        params = {
            "api-version": METRICS_API_VERSION,
            "metricnames": names,
            "aggregation": aggregation,
            "interval": "PT1H",
            "timespan": f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}",
        }
        if dimension_filter:
            params["$filter"] = dimension_filter
        request = HttpRequest("GET", f"{resource_id}/providers/Microsoft.Insights/metrics", params=params)
        request.url = self.pipeline.format_url(request.url)
        try:
            response = self.pipeline.send_request(request, **_transport_options(self.settings))
            response.raise_for_status()
        except Exception as error:
            raise azure_error(
                error,
                doing=f"Azure Monitor metrics of {resource_id}",
                hint="grant Monitoring Reader on the workspace or resource group",
            )
        return response.json().get("value", [])

    def fetch_usage(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[dict[str, Any]]:
        deployments = [
            deployment
            for deployment in Deployment.objects.filter(account=self.account).select_related("model")
            if _ONLINE_ENDPOINT.search(deployment.resource_id or "")
        ]
        for deployment in deployments:
            cells: dict[dt.datetime, dict[str, Any]] = defaultdict(
                lambda: {"requests": 0, "errors": 0, "avg": None}
            )
            for metric in self._metrics(
                deployment.resource_id,
                names="RequestsPerMinute",
                aggregation="Total",
                start=start,
                end=end,
                dimension_filter="statusCodeClass eq '*'",
            ):
                for series in metric.get("timeseries", []):
                    status_class = next(
                        (m.get("value", "") for m in series.get("metadatavalues", [])
                         if m.get("name", {}).get("value", "").lower() == "statuscodeclass"),
                        "",
                    )  # fmt: skip
                    for point in series.get("data", []):
                        count = int(round(point.get("total") or 0))
                        cell = cells[_timestamp(point["timeStamp"])]
                        cell["requests"] += count
                        if status_class in ("4xx", "5xx"):
                            cell["errors"] += count
            for metric in self._metrics(
                deployment.resource_id, names="RequestLatency", aggregation="Average", start=start, end=end
            ):
                for series in metric.get("timeseries", []):
                    for point in series.get("data", []):
                        if point.get("average") is not None:
                            cells[_timestamp(point["timeStamp"])]["avg"] = float(point["average"])
            for bucket_start in sorted(cells):
                cell = cells[bucket_start]
                if not start <= bucket_start < end or not cell["requests"]:
                    continue
                yield {
                    "bucket_start": bucket_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "bucket_seconds": self.bucket_seconds,
                    "deployment": deployment.slug,
                    "model": deployment.model.slug,
                    "team": None,
                    "requests": cell["requests"],
                    "errors": cell["errors"],
                    "latency_ms_sum": round((cell["avg"] or 0.0) * cell["requests"], 3),
                }


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
