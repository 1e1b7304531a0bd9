"""Google Cloud billing: the Cloud Billing export (standard or detailed) or Google's FOCUS table in
BigQuery, discovered per invoice month and streamed into the ingest. See the package docstring.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from functools import cached_property
from typing import IO, ClassVar

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
)
from attribution.connectors.gcp.auth import gcp_credentials, gcp_error
from attribution.connectors.gcp.rows import focus_cell, focus_fingerprint, focus_tags, nano, row_json
from attribution.models import BillingPeriodVersion, SyncErrorKind

logger = logging.getLogger(__name__)

_TABLE_ID = re.compile(r"^[A-Za-z0-9_:.-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_$-]+$")
PAGE_SIZE = 5_000

# What attribution/ingest/formats/gcp_bigquery.py reads, per top-level column. A whole column is
# selected when every sub-field is needed; otherwise a STRUCT of just the needed sub-fields.
_WHOLE_COLUMNS = (
    "billing_account_id",
    "sku",
    "usage_start_time",
    "usage_end_time",
    "labels",
    "system_labels",
    "location",
    "resource",
    "export_time",
    "cost",
    "currency",
    "usage",
    "credits",
    "cost_type",
    "cost_at_list",
)
_STRUCT_COLUMNS = {
    "service": ("description",),
    "project": ("id", "name", "labels"),
    "invoice": ("month",),
    # ContractedUnitPrice, ListUnitPrice (newer exports) and SkuPriceDetails (FOCUS 1.2).
    "price": ("effective_price", "list_price", "tier_start_amount", "unit", "pricing_unit_quantity"),
    # The commitment a fee row is billed for (detailed export) and Google's corrections (ChargeClass).
    "subscription": ("instance_id",),
    "adjustment_info": ("id", "type", "mode", "description"),
}
# What attribution/ingest/formats/focus.py reads; only those present in the table are selected.
FOCUS_COLUMNS = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingCurrency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ProviderName",
    "ServiceProviderName",
    "PublisherName",
    "HostProviderName",
    "InvoiceIssuerName",
    "BillingAccountId",
    "BillingAccountName",
    "SubAccountId",
    "SubAccountName",
    "RegionId",
    "RegionName",
    "AvailabilityZone",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceName",
    "ServiceCategory",
    "SkuId",
    "SkuPriceId",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "CommitmentDiscountId",
    "Tags",
    # FOCUS 1.2 conditional and recommended columns (stored since migration 0022).
    "ServiceSubcategory",
    "InvoiceId",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "PricingCurrency",
    "PricingCurrencyListUnitPrice",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "SkuMeter",
    "SkuPriceDetails",
    "BillingAccountType",
    "SubAccountType",
    "CommitmentDiscountName",
    "CommitmentDiscountCategory",
    "CommitmentDiscountType",
    "CommitmentDiscountStatus",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountUnit",
    "CapacityReservationId",
    "CapacityReservationStatus",
)
FOCUS_REQUIRED = ("BilledCost", "EffectiveCost", "ChargePeriodStart", "BillingPeriodStart", "ChargeCategory")
FOCUS_EXPORT_TIME = "x_ExportTime"
_REQUIRED_COLUMNS = ("billing_account_id", "cost", "currency", "usage_start_time", "invoice", "export_time")


# --- billing -------------------------------------------------------------------------------------


def _month_start(invoice_month: str) -> dt.date:
    return dt.date(int(invoice_month[:4]), int(invoice_month[4:]), 1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


class GcpBillingConnector(BillingConnector):
    provider: ClassVar[str] = Provider.GCP

    # --- settings and client ---

    @cached_property
    def table_id(self) -> str:
        table = str(self.settings.get("table") or "")
        if not _TABLE_ID.match(table):
            raise ConnectorError(
                f"source_settings.table {table!r} must be 'project.dataset.table' (the billing export table)",
                error_kind=SyncErrorKind.INVALID,
            )
        return table

    @property
    def job_project(self) -> str:
        return str(self.settings.get("project") or self.table_id.split(".")[0])

    def _setting_int(self, name: str, default: int) -> int:
        try:
            return int(self.settings.get(name, default))
        except (TypeError, ValueError):
            raise ConnectorError(
                f"source_settings.{name} must be a whole number", error_kind=SyncErrorKind.INVALID
            )

    @cached_property
    def client(self):
        from google.cloud import bigquery

        options = (
            {"api_endpoint": self.settings["api_endpoint"]} if self.settings.get("api_endpoint") else None
        )
        return bigquery.Client(
            project=self.job_project,
            credentials=gcp_credentials(self.settings),
            location=self.settings.get("location") or "US",
            client_options=options,
        )

    @cached_property
    def table(self):
        try:
            return self.client.get_table(self.table_id)
        except Exception as error:
            converted = gcp_error(error, doing=f"reading BigQuery table {self.table_id}")
            if converted.error_kind == SyncErrorKind.NOT_FOUND:
                converted.args = (
                    f"BigQuery table {self.table_id} not found: check source_settings.table and that the "
                    "Cloud Billing export to BigQuery is enabled for this billing account",
                )
            elif converted.error_kind == SyncErrorKind.PERMISSION:
                converted.args = (
                    f"{converted}; grant roles/bigquery.dataViewer on dataset "
                    f"{'.'.join(self.table_id.split('.')[:2])} "
                    "(bigquery.tables.get, bigquery.tables.getData)",
                )
            raise converted

    @property
    def column_names(self) -> set[str]:
        return {schema_field.name for schema_field in self.table.schema}

    @property
    def partition_column(self) -> str:
        """_PARTITIONTIME on an ingestion-time partitioned table; export_time otherwise (a view, or
        a copy partitioned by a column)."""
        partitioning = self.table.time_partitioning
        if self.table.table_type == "TABLE" and partitioning is not None and not partitioning.field:
            return "_PARTITIONTIME"
        return "export_time"

    # --- SQL ---

    def discovery_sql(self, since: dt.datetime | None) -> str:
        where = f"WHERE {self.partition_column} >= TIMESTAMP('{since.isoformat()}')\n" if since else ""
        # The table id is validated against _TABLE_ID and `since` is a datetime: no injection.
        return (
            "-- inferensys:discover\n"
            "SELECT invoice.month AS invoice_month, MAX(export_time) AS last_export_time,\n"
            "COUNT(*) AS row_count\n"
            f"FROM `{self.table_id}`\n"  # noqa: S608
            f"{where}"
            "GROUP BY invoice_month\n"
            "ORDER BY invoice_month DESC"
        )

    def period_sql(self, invoice_month: str, until: dt.datetime | None = None) -> str:
        present = self.column_names
        missing = [column for column in _REQUIRED_COLUMNS if column not in present]
        if missing:
            raise ConnectorError(
                f"BigQuery table {self.table_id} has no column {', '.join(missing)}: is it a Cloud Billing "
                "standard or detailed usage cost export?",
                error_kind=SyncErrorKind.INVALID,
            )
        items = []
        for column in _WHOLE_COLUMNS:
            if column in present:
                items.append(column)
        schema = {schema_field.name: schema_field for schema_field in self.table.schema}
        for column, wanted in _STRUCT_COLUMNS.items():
            if column not in present:
                continue
            available = {sub.name for sub in schema[column].fields}
            subs = [f"{column}.{sub} AS {sub}" for sub in wanted if sub in available]
            items.append(f"STRUCT({', '.join(subs)}) AS {column}")
        # Rows of a month are exported from its first (Pacific) hours on; two days of slack prune
        # every older partition without ever missing one.
        since = dt.datetime.combine(_month_start(invoice_month), dt.time(), tzinfo=dt.UTC) - dt.timedelta(
            days=2
        )
        return (
            f"-- inferensys:period {invoice_month}\n"
            f"SELECT {', '.join(items)}\n"
            f"FROM `{self.table_id}`\n"  # noqa: S608 - validated identifier, digits-only month
            f"WHERE {self.partition_column} >= TIMESTAMP('{since.isoformat()}')\n"
            f"AND invoice.month = '{invoice_month}'"
            # The month's version is its max export_time: bounded by it, a later re-read (the
            # ingest worker's) returns the same rows even after new rows were exported.
            + (f"\nAND export_time <= TIMESTAMP('{until.astimezone(dt.UTC).isoformat()}')" if until else "")
        )

    # --- FOCUS ---

    @cached_property
    def is_focus(self) -> bool:
        schema = str(self.settings.get("schema") or "").lower()
        if schema in ("standard", "detailed"):
            return False
        if schema and schema != "focus":
            raise ConnectorError(
                f"source_settings.schema {schema!r} must be 'focus', 'standard' or 'detailed'",
                error_kind=SyncErrorKind.INVALID,
            )
        return schema == "focus" or "BilledCost" in self.column_names

    @property
    def focus_export_time(self) -> str | None:
        return FOCUS_EXPORT_TIME if FOCUS_EXPORT_TIME in self.column_names else None

    def focus_discovery_sql(self, since: dt.datetime | None) -> str:
        export_time = self.focus_export_time
        if export_time:
            version = f"MAX({export_time}) AS last_export_time"
            where = f"WHERE {export_time} >= TIMESTAMP('{since.isoformat()}')\n" if since else ""
        else:
            # NUMERIC sums exactly and in any order; a FLOAT64 sum may differ between runs.
            version = "SUM(CAST(BilledCost AS NUMERIC)) AS billed_cost"
            where = ""
        return (
            "-- inferensys:focus-discover\n"
            "SELECT FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart) AS billing_month, "
            f"{version}, COUNT(*) AS row_count\n"
            f"FROM `{self.table_id}`\n"  # noqa: S608 - validated identifier, datetime bound
            f"{where}"
            "GROUP BY billing_month\n"
            "ORDER BY billing_month DESC"
        )

    def focus_columns(self) -> list[str]:
        present = self.column_names
        missing = [column for column in FOCUS_REQUIRED if column not in present]
        if missing:
            raise ConnectorError(
                f"BigQuery table {self.table_id} has no column {', '.join(missing)}: is it the Cloud "
                "Billing FOCUS table or view?",
                error_kind=SyncErrorKind.INVALID,
            )
        return [column for column in FOCUS_COLUMNS if column in present]

    def focus_period_sql(self, billing_month: str, until: dt.datetime | None = None) -> str:
        start = _month_start(billing_month)
        bound = (
            f"\nAND {self.focus_export_time} <= TIMESTAMP('{until.astimezone(dt.UTC).isoformat()}')"
            if until and self.focus_export_time
            else ""
        )
        return (
            f"-- inferensys:focus-period {billing_month}\n"
            f"SELECT {', '.join(self.focus_columns())}\n"
            f"FROM `{self.table_id}`\n"  # noqa: S608 - validated identifier, digits-only month
            f"WHERE BillingPeriodStart >= TIMESTAMP('{start.isoformat()}')\n"
            f"AND BillingPeriodStart < TIMESTAMP('{_next_month(start).isoformat()}')" + bound
        )

    def _focus_discover(self) -> list[PeriodDelivery]:
        from google.cloud import bigquery

        now = timezone.now()
        export_time = self.focus_export_time
        stored = self._stored_versions() if export_time else {}
        watermark = self._watermark(stored) if export_time else None
        since = watermark - dt.timedelta(days=self._setting_int("rescan_days", 3)) if watermark else None
        try:
            job = self.client.query(
                self.focus_discovery_sql(since),
                job_config=bigquery.QueryJobConfig(use_query_cache=False),
                project=self.job_project,
            )
            rows = list(job.result())
        except Exception as error:
            raise gcp_error(error, doing=f"discovering billing periods in the FOCUS table {self.table_id}")
        found = {_month_start(row["billing_month"]): row for row in rows}
        wanted = set(found)
        if export_time:
            current = now.date().replace(day=1)
            wanted |= {
                month
                for month, version in stored.items()
                if version.source_version and (not version.is_final or month >= _previous_month(current))
            }
        deliveries = []
        for month in sorted(wanted, reverse=True):
            row = found.get(month)
            billing_month = f"{month:%Y%m}"
            until: dt.datetime | None = None
            if export_time:
                until = (
                    row["last_export_time"]
                    if row is not None
                    else (stored[month].watermark or dt.datetime.fromisoformat(stored[month].source_version))
                )
                source_version = until.astimezone(dt.UTC).isoformat()
                is_final = self._is_final(month, until, now)
                details = {"watermark": source_version, "scan_since": since.isoformat() if since else None}
            else:
                source_version = focus_fingerprint(row["row_count"], row["billed_cost"])
                closes = dt.datetime.combine(_next_month(month), dt.time(), tzinfo=dt.UTC) + dt.timedelta(
                    days=self._setting_int("final_after_days", 5) + self._setting_int("final_quiet_days", 3)
                )
                is_final = now >= closes
                details = {"fingerprint": source_version}
            details["rows_in_scan"] = row["row_count"] if row is not None else None
            deliveries.append(
                PeriodDelivery(
                    billing_period_start=month,
                    source_version=source_version,
                    is_final=is_final,
                    files=[
                        RemoteFile(
                            name=f"bigquery://{self.table_id}?billing_period={billing_month}",
                            version=source_version,
                            open=lambda billing_month=billing_month, version=source_version: self.open_uri(
                                f"bigquery://{self.table_id}?billing_period={billing_month}", version
                            ),
                        )
                    ],
                    source_format="focus",
                    details=details,
                )
            )
        logger.info(
            "gcp FOCUS discovery %s: %d billing periods (version by %s)",
            self.account.slug,
            len(deliveries),
            export_time or "row count and SUM(BilledCost)",
        )
        return deliveries

    def focus_period_open(self, billing_month: str, *, version: str) -> IO[bytes]:
        """FOCUS CSV of one billing period, streamed page by page: bounded by x_ExportTime when
        the version is one, else checked against the fingerprint once the last row is read."""
        until = None
        if not version.startswith("sha256:"):
            try:
                until = dt.datetime.fromisoformat(version)
            except ValueError:
                raise ConnectorError(
                    f"{version!r} is not a FOCUS period version", error_kind=SyncErrorKind.INVALID
                ) from None
            if until.tzinfo is None:
                until = until.replace(tzinfo=dt.UTC)
        columns = self.focus_columns()
        rows = self._rows_query(
            self.focus_period_sql(billing_month, until), what=f"billing period {billing_month} (FOCUS)"
        )

        def chunks() -> Iterator[bytes]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
            count, billed = 0, Decimal(0)
            try:
                for page in rows.pages:
                    for row in page:
                        writer.writerow(
                            [
                                focus_tags(row["Tags"]) if name == "Tags" else focus_cell(row[name])
                                for name in columns
                            ]
                        )
                        count += 1
                        if row["BilledCost"] is not None:
                            billed += nano(row["BilledCost"])
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            except Exception as error:
                raise gcp_error(error, doing=f"reading the FOCUS rows of billing period {billing_month}")
            if buffer.getvalue():
                yield buffer.getvalue().encode()
            if until is None and focus_fingerprint(count, billed) != version:
                # Raised before the reader sees the end of the stream: the run fails, nothing lands.
                raise ConnectorError(
                    f"FOCUS billing period {billing_month} of {self.table_id} changed since it was "
                    f"discovered ({count} rows now); the next sync reads the new version",
                    error_kind=SyncErrorKind.INVALID,
                )

        return io.BufferedReader(ChunkStream(chunks()), buffer_size=1 << 20)

    def _rows_query(self, sql: str, *, what: str):
        """Dry run (its estimate logged, refused above max_bytes_billed), then the paged rows."""
        from google.cloud import bigquery

        max_bytes = self.settings.get("max_bytes_billed")
        try:
            dry = self.client.query(
                sql,
                job_config=bigquery.QueryJobConfig(dry_run=True, use_query_cache=False),
                project=self.job_project,
            )
        except Exception as error:
            raise gcp_error(error, doing=f"estimating the query of {what}")
        estimate = dry.total_bytes_processed or 0
        logger.info("gcp %s %s: dry run estimates %d bytes processed", self.account.slug, what, estimate)
        if max_bytes and estimate > int(max_bytes):
            raise ConnectorError(
                f"the query of {what} would process {estimate} bytes, above "
                f"source_settings.max_bytes_billed ({max_bytes})",
                error_kind=SyncErrorKind.INVALID,
            )
        config = bigquery.QueryJobConfig(use_query_cache=False)
        if max_bytes:
            config.maximum_bytes_billed = int(max_bytes)
        try:
            job = self.client.query(sql, job_config=config, project=self.job_project)
            return job.result(page_size=PAGE_SIZE)
        except Exception as error:
            raise gcp_error(error, doing=f"querying {what}")

    # --- contract ---

    def test_connection(self) -> ConnectionReport:
        checks: list[ConnectionCheck] = []
        kind = SyncErrorKind.NONE
        try:
            self.table_id  # noqa: B018 - validates the setting
            gcp_credentials(self.settings)
            checks.append(ConnectionCheck("credentials", True))
            table = self.table
            checks.append(ConnectionCheck(f"bigquery.tables.get on {self.table_id}", True, table.table_type))
            from google.cloud import bigquery

            try:
                self.client.query(
                    self.focus_discovery_sql(None) if self.is_focus else self.discovery_sql(None),
                    job_config=bigquery.QueryJobConfig(dry_run=True, use_query_cache=False),
                    project=self.job_project,
                )
            except Exception as error:
                converted = gcp_error(error, doing=f"bigquery.jobs.create in project {self.job_project}")
                if converted.error_kind == SyncErrorKind.PERMISSION:
                    converted.args = (
                        f"{converted}; grant roles/bigquery.jobUser on project {self.job_project}",
                    )
                raise converted
            checks.append(ConnectionCheck(f"bigquery.jobs.create in project {self.job_project}", True))
            if table.table_type == "TABLE" and not table.num_rows:
                kind = SyncErrorKind.EMPTY
                checks.append(
                    ConnectionCheck(
                        "export has rows",
                        False,
                        f"{self.table_id} is empty: the billing export starts filling a few hours after it "
                        "is enabled",
                    )
                )
            else:
                checks.append(ConnectionCheck("export has rows", True, f"{table.num_rows or '?'} rows"))
        except ConnectorError as error:
            kind = error.error_kind
            checks.append(ConnectionCheck(_check_name(error.error_kind), False, str(error)))
        return ConnectionReport(checks=checks, error_kind=kind)

    def _stored_versions(self) -> dict[dt.date, BillingPeriodVersion]:
        return {
            version.billing_period_start: version
            for version in BillingPeriodVersion.objects.filter(account=self.account)
        }

    def _watermark(self, stored: dict[dt.date, BillingPeriodVersion]) -> dt.datetime | None:
        marks = []
        for version in stored.values():
            if version.watermark:
                marks.append(version.watermark)
            else:
                try:
                    marks.append(dt.datetime.fromisoformat(version.source_version))
                except ValueError:
                    continue
        return max(marks) if marks else None

    def _is_final(self, month: dt.date, last_export: dt.datetime, now: dt.datetime) -> bool:
        closes = dt.datetime.combine(_next_month(month), dt.time(), tzinfo=dt.UTC) + dt.timedelta(
            days=self._setting_int("final_after_days", 5)
        )
        quiet = dt.timedelta(days=self._setting_int("final_quiet_days", 3))
        return now >= closes and now - last_export >= quiet

    def discover(self) -> list[PeriodDelivery]:
        from google.cloud import bigquery

        if self.is_focus:
            return self._focus_discover()
        now = timezone.now()
        stored = self._stored_versions()
        watermark = self._watermark(stored)
        since = watermark - dt.timedelta(days=self._setting_int("rescan_days", 3)) if watermark else None
        sql = self.discovery_sql(since)
        try:
            job = self.client.query(
                sql, job_config=bigquery.QueryJobConfig(use_query_cache=False), project=self.job_project
            )
            rows = list(job.result())
        except Exception as error:
            raise gcp_error(error, doing=f"discovering invoice months in {self.table_id}")
        found: dict[dt.date, tuple[dt.datetime, int]] = {
            _month_start(row["invoice_month"]): (row["last_export_time"], row["row_count"]) for row in rows
        }
        deliveries = []
        current = now.date().replace(day=1)
        wanted = set(found) | {
            month
            for month, version in stored.items()
            # Months quiet in the scan window keep their stored version (the sync skips them), so
            # the current and previous months are always reported while they are open.
            if version.source_version and (not version.is_final or month >= _previous_month(current))
        }
        for month in sorted(wanted, reverse=True):
            if month in found:
                last_export, count = found[month]
            else:
                version = stored[month]
                last_export = version.watermark or dt.datetime.fromisoformat(version.source_version)
                count = None
            invoice_month = f"{month:%Y%m}"
            source_version = last_export.astimezone(dt.UTC).isoformat()
            deliveries.append(
                PeriodDelivery(
                    billing_period_start=month,
                    source_version=source_version,
                    is_final=self._is_final(month, last_export, now),
                    files=[
                        RemoteFile(
                            name=f"bigquery://{self.table_id}?invoice_month={invoice_month}",
                            version=source_version,
                            open=lambda invoice_month=invoice_month, until=last_export: self.period_open(
                                invoice_month, until=until
                            ),
                        )
                    ],
                    source_format="gcp-bigquery",
                    details={
                        "watermark": source_version,
                        "rows_in_scan": count,
                        "scan_since": since.isoformat() if since else None,
                        "scan_column": self.partition_column,
                    },
                )
            )
        logger.info(
            "gcp discovery %s: %d months (%d in the scan since %s)",
            self.account.slug,
            len(deliveries),
            len(found),
            since.isoformat() if since else "the beginning",
        )
        return deliveries

    def open_uri(self, uri: str, version: str, *, seekable: bool = False) -> IO[bytes]:
        """Re-run the month's row query, bounded by its version (max export_time). NDJSON is never
        read as Parquet, so `seekable` is not offered. A FOCUS period (`?billing_period=`) is
        re-read as FOCUS CSV."""
        focus_prefix = f"bigquery://{self.table_id}?billing_period="
        if uri.startswith(focus_prefix) and re.fullmatch(r"\d{6}", uri[len(focus_prefix) :]):
            return self.focus_period_open(uri[len(focus_prefix) :], version=version)
        prefix = f"bigquery://{self.table_id}?invoice_month="
        invoice_month = uri[len(prefix) :] if uri.startswith(prefix) else ""
        if not re.fullmatch(r"\d{6}", invoice_month):
            raise ConnectorError(
                f"{uri} is not an invoice month of {self.table_id} (did source_settings.table change?)",
                error_kind=SyncErrorKind.INVALID,
            )
        try:
            until = dt.datetime.fromisoformat(version)
        except ValueError:
            raise ConnectorError(
                f"{version!r} is not an export_time version", error_kind=SyncErrorKind.INVALID
            ) from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        return self.period_open(invoice_month, until=until)

    def period_open(self, invoice_month: str, *, until: dt.datetime | None = None) -> IO[bytes]:
        """NDJSON of one invoice month in the export's row shape, streamed page by page; with
        `until`, only rows exported up to that time (the version the run was planned with)."""

        # Iterating `pages` reads jobs.getQueryResults over REST, one page in memory at a time
        # (the Storage API is only used by to_arrow/to_dataframe, which we never call).
        rows = self._rows_query(self.period_sql(invoice_month, until), what=f"invoice month {invoice_month}")

        def chunks() -> Iterator[bytes]:
            try:
                for page in rows.pages:
                    yield b"".join(row_json(row) for row in page)
            except Exception as error:
                raise gcp_error(error, doing=f"reading the rows of invoice month {invoice_month}")

        return io.BufferedReader(ChunkStream(chunks()), buffer_size=1 << 20)


def _previous_month(month: dt.date) -> dt.date:
    return (month - dt.timedelta(days=1)).replace(day=1)


def _check_name(error_kind: str) -> str:
    return {
        SyncErrorKind.AUTHENTICATION: "credentials",
        SyncErrorKind.PERMISSION: "permission",
        SyncErrorKind.NOT_FOUND: "billing export table",
        SyncErrorKind.EMPTY: "export has rows",
        SyncErrorKind.TRANSIENT: "reachability",
    }.get(error_kind, "settings")
