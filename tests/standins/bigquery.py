"""A loopback BigQuery REST server for the real google-cloud-bigquery client.

It answers what the client sends for `client.get_table`, `client.query(...)` and
`job.result(page_size=...)`, in the wire format of the BigQuery REST API v2:

- GET  /bigquery/v2/projects/P/datasets/D/tables/T            tables.get (schema, type, partitioning)
- POST /bigquery/v2/projects/P/jobs                           jobs.insert (also dry runs)
- GET  /bigquery/v2/projects/P/jobs/ID                        jobs.get: RUNNING once, then DONE
- GET  /bigquery/v2/projects/P/queries/ID?pageToken=...       jobs.getQueryResults, paged

Cells are strings in `{"f": [{"v": ...}]}`; TIMESTAMP is int64 microseconds as a string (the
client asks for `formatOptions.useInt64Timestamp`); RECORD is `{"v": {"f": [...]}}` and REPEATED
RECORD `{"v": [{"v": {"f": [...]}}]}` (checked against shared/data/billing/gcp/bigquery-rest-examples
and the client's own parser).

It is not a SQL engine: it evaluates the two query shapes the connector sends, recognised by a
marker comment (`-- inferensys:discover`, `-- inferensys:period YYYYMM`), but honestly — the
select list is parsed and only the selected columns (and STRUCT sub-fields) are returned, a name
that is not in the table's schema is a 400 `invalidQuery`, `_PARTITIONTIME` on a view is refused,
and WHERE bounds (lower `>=` on the partition column, upper `export_time <=`) are applied to the
rows. Rows come from the demo's detailed export files.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.standins.http import SeenRequest, Standin, StandinHandler, standin_start


def _f(name: str, kind: str = "STRING", mode: str = "NULLABLE", fields: list | None = None) -> dict:
    field_ = {"name": name, "type": kind, "mode": mode}
    if fields:
        field_["fields"] = fields
    return field_


KEY_VALUE = [_f("key"), _f("value")]
# The detailed (resource-level) export's schema, as `bq show --schema` prints it (the fields the
# demo writes; types from the Cloud Billing docs "Structure of Detailed data export").
DETAILED_SCHEMA: list[dict] = [
    _f("billing_account_id"),
    _f("service", "RECORD", fields=[_f("id"), _f("description")]),
    _f("sku", "RECORD", fields=[_f("id"), _f("description")]),
    _f("usage_start_time", "TIMESTAMP"),
    _f("usage_end_time", "TIMESTAMP"),
    _f(
        "project",
        "RECORD",
        fields=[
            _f("id"),
            _f("number"),
            _f("name"),
            _f("labels", "RECORD", "REPEATED", KEY_VALUE),
            _f("ancestry_numbers"),
            _f("ancestors", "RECORD", "REPEATED", [_f("resource_name"), _f("display_name")]),
        ],
    ),
    _f("labels", "RECORD", "REPEATED", KEY_VALUE),
    _f("system_labels", "RECORD", "REPEATED", KEY_VALUE),
    _f("location", "RECORD", fields=[_f("location"), _f("country"), _f("region"), _f("zone")]),
    _f("resource", "RECORD", fields=[_f("name"), _f("global_name")]),
    _f("subscription", "RECORD", fields=[_f("instance_id")]),
    _f(
        "price",
        "RECORD",
        fields=[
            _f("effective_price", "NUMERIC"),
            _f("tier_start_amount", "NUMERIC"),
            _f("unit"),
            _f("pricing_unit_quantity", "NUMERIC"),
        ],
    ),
    _f("export_time", "TIMESTAMP"),
    _f("cost", "FLOAT"),
    _f("currency"),
    _f("currency_conversion_rate", "FLOAT"),
    _f(
        "usage",
        "RECORD",
        fields=[
            _f("amount", "FLOAT"),
            _f("unit"),
            _f("amount_in_pricing_units", "FLOAT"),
            _f("pricing_unit"),
        ],
    ),
    _f(
        "credits",
        "RECORD",
        "REPEATED",
        [_f("name"), _f("amount", "FLOAT"), _f("full_name"), _f("id"), _f("type")],
    ),
    _f("invoice", "RECORD", fields=[_f("month"), _f("publisher_type")]),
    _f("cost_type"),
    _f("cost_at_list", "FLOAT"),
]
# The standard export has no resource or subscription fields (and older tables lack cost_at_list).
_DETAILED_ONLY = ("resource", "subscription", "cost_at_list")
STANDARD_SCHEMA = [f for f in DETAILED_SCHEMA if f["name"] not in _DETAILED_ONLY]

_TIMESTAMP_TEXT = "%Y-%m-%d %H:%M:%S UTC"

# Google's FOCUS table/view (billing docs "Structure of FOCUS data export"): the columns the demo
# maps, with x_ columns the connector must not read. `x_ExportTime` is dropped by tests that
# exercise the fingerprint version.
FOCUS_SCHEMA: list[dict] = [
    _f("BilledCost", "NUMERIC"),
    _f("EffectiveCost", "NUMERIC"),
    _f("ListCost", "NUMERIC"),
    _f("ContractedCost", "NUMERIC"),
    _f("BillingCurrency"),
    _f("ChargePeriodStart", "TIMESTAMP"),
    _f("ChargePeriodEnd", "TIMESTAMP"),
    _f("BillingPeriodStart", "TIMESTAMP"),
    _f("BillingPeriodEnd", "TIMESTAMP"),
    _f("ChargeCategory"),
    _f("ChargeClass"),
    _f("ChargeDescription"),
    _f("ProviderName"),
    _f("PublisherName"),
    _f("InvoiceIssuerName"),
    _f("BillingAccountId"),
    _f("SubAccountId"),
    _f("SubAccountName"),
    _f("RegionId"),
    _f("ResourceId"),
    _f("ResourceName"),
    _f("ServiceName"),
    _f("ServiceCategory"),
    _f("SkuId"),
    _f("PricingCategory"),
    _f("PricingQuantity", "NUMERIC"),
    _f("PricingUnit"),
    _f("ConsumedQuantity", "NUMERIC"),
    _f("ConsumedUnit"),
    _f("ListUnitPrice", "NUMERIC"),
    _f("Tags", "RECORD", "REPEATED", [_f("key"), _f("value"), _f("inherited", "BOOLEAN"), _f("namespace")]),
    _f("x_CostType"),
    _f("x_Credits", "RECORD", "REPEATED", [_f("name"), _f("amount", "NUMERIC"), _f("type")]),
    _f("x_ExportTime", "TIMESTAMP"),
]
_FOCUS_CATEGORY = {
    "regular": "Usage",
    "tax": "Tax",
    "adjustment": "Adjustment",
    "rounding_error": "Adjustment",
}


def timestamp_parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIMESTAMP_TEXT).replace(tzinfo=dt.UTC)


def _micros(moment: dt.datetime) -> str:
    return str(int(moment.timestamp()) * 1_000_000 + moment.microsecond)


def _scalar(value: Any, kind: str) -> str | None:
    if value is None:
        return None
    if kind == "TIMESTAMP":
        moment = value if isinstance(value, dt.datetime) else timestamp_parse(value)
        return _micros(moment)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cell(value: Any, schema_field: dict) -> dict:
    """One value in the REST row format."""
    repeated = schema_field.get("mode") == "REPEATED"
    if schema_field["type"] in ("RECORD", "STRUCT"):
        sub_fields = schema_field["fields"]

        def record(item: dict | None) -> dict | None:
            if item is None:
                return None
            return {"f": [cell(item.get(sub["name"]), sub) for sub in sub_fields]}

        if repeated:
            return {"v": [{"v": record(item)} for item in (value or [])]}
        return {"v": record(value)}
    if repeated:
        return {"v": [{"v": _scalar(item, schema_field["type"])} for item in (value or [])]}
    return {"v": _scalar(value, schema_field["type"])}


def focus_rows(rows: list[dict]) -> list[dict]:
    """The demo's detailed-export rows as Google's FOCUS view shows them: BilledCost =
    EffectiveCost = cost + SUM(credits.amount), ListCost = cost_at_list, the billing period the
    invoice month, Tags the resource labels then the project's (inherited)."""
    out = []
    for row in rows:
        month = row["invoice"]["month"]
        start = dt.datetime(int(month[:4]), int(month[4:]), 1, tzinfo=dt.UTC)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        billed = Decimal(str(row["cost"])) + sum(
            (Decimal(str(credit["amount"])) for credit in row.get("credits") or []), Decimal(0)
        )
        project = row.get("project") or {}
        tags = [{**label, "inherited": False, "namespace": None} for label in row.get("labels") or []]
        own = {label["key"] for label in tags}
        tags += [
            {**label, "inherited": True, "namespace": None}
            for label in project.get("labels") or []
            if label["key"] not in own
        ]
        usage = row.get("usage") or {}
        out.append(
            {
                "BilledCost": billed,
                "EffectiveCost": billed,
                "ListCost": row.get("cost_at_list"),
                "ContractedCost": billed,
                "BillingCurrency": row["currency"],
                "ChargePeriodStart": row["usage_start_time"],
                "ChargePeriodEnd": row["usage_end_time"],
                "BillingPeriodStart": start,
                "BillingPeriodEnd": end,
                "ChargeCategory": _FOCUS_CATEGORY.get(row.get("cost_type") or "regular", "Usage"),
                "ChargeClass": None,
                "ChargeDescription": (row.get("sku") or {}).get("description"),
                "ProviderName": "Google Cloud",
                "PublisherName": "Google Cloud",
                "InvoiceIssuerName": "Google Cloud",
                "BillingAccountId": row["billing_account_id"],
                "SubAccountId": project.get("id"),
                "SubAccountName": project.get("name"),
                "RegionId": (row.get("location") or {}).get("region"),
                "ResourceId": (row.get("resource") or {}).get("global_name"),
                "ResourceName": (row.get("resource") or {}).get("name"),
                "ServiceName": (row.get("service") or {}).get("description"),
                "ServiceCategory": "AI and Machine Learning",
                "SkuId": (row.get("sku") or {}).get("id"),
                "PricingCategory": "Standard",
                "PricingQuantity": usage.get("amount_in_pricing_units"),
                "PricingUnit": usage.get("pricing_unit"),
                "ConsumedQuantity": usage.get("amount"),
                "ConsumedUnit": usage.get("unit"),
                "ListUnitPrice": (row.get("price") or {}).get("effective_price"),
                "Tags": tags,
                "x_CostType": row.get("cost_type"),
                "x_Credits": row.get("credits") or [],
                "x_ExportTime": row["export_time"],
            }
        )
    return out


_FOCUS_MONTH = re.compile(r"BillingPeriodStart\s*>=\s*TIMESTAMP\('(\d{4})-(\d{2})-01'\)")
_FOCUS_LOWER = re.compile(r"\bx_ExportTime\s*>=\s*TIMESTAMP\('([^']+)'\)")
_FOCUS_UPPER = re.compile(r"\bx_ExportTime\s*<=\s*TIMESTAMP\('([^']+)'\)")


def _moment(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else timestamp_parse(value)


def focus_query_evaluate(table: Table, sql: str) -> tuple[list[dict], list[list[dict]], int]:
    """The FOCUS connector's two shapes: the per-month aggregate and a month's rows."""
    names = {f["name"] for f in table.schema}
    rows = table.rows
    for pattern, keep in ((_FOCUS_LOWER, lambda m, b: m >= b), (_FOCUS_UPPER, lambda m, b: m <= b)):
        if match := pattern.search(sql):
            if "x_ExportTime" not in names:
                raise _unrecognized("x_ExportTime")
            bound = dt.datetime.fromisoformat(match.group(1))
            rows = [row for row in rows if keep(_moment(row["x_ExportTime"]), bound)]
    if "-- inferensys:focus-discover" in sql:
        by_export = "MAX(x_ExportTime)" in sql
        if by_export and "x_ExportTime" not in names:
            raise _unrecognized("x_ExportTime")
        if not by_export and "SUM(CAST(BilledCost AS NUMERIC))" not in sql:
            raise BigQueryError(400, "invalidQuery", "stand-in: FOCUS discovery without a version column")
        groups: dict[str, list] = {}
        for row in rows:
            month = f"{row['BillingPeriodStart']:%Y%m}"
            group = groups.setdefault(month, [None, Decimal(0), 0])
            if by_export:
                moment = _moment(row["x_ExportTime"])
                group[0] = max(group[0], moment) if group[0] else moment
            group[1] += Decimal(str(row["BilledCost"]))
            group[2] += 1
        version_field = _f("last_export_time", "TIMESTAMP") if by_export else _f("billed_cost", "NUMERIC")
        schema = [_f("billing_month"), version_field, _f("row_count", "INTEGER")]
        result = [
            [
                {"v": month},
                {"v": _micros(latest) if by_export else format(billed, "f")},
                {"v": str(count)},
            ]
            for month, (latest, billed, count) in sorted(groups.items(), reverse=True)
        ]
        return schema, result, len(rows) * 24
    period = re.search(r"-- inferensys:focus-period (\d{6})", sql)
    month_filter = _FOCUS_MONTH.search(sql)
    if not period or not month_filter or "".join(month_filter.groups()) != period.group(1):
        raise BigQueryError(400, "invalidQuery", "stand-in: FOCUS period query without its month filter")
    columns = projection(sql, table.schema)
    selected = [row for row in rows if f"{row['BillingPeriodStart']:%Y%m}" == period.group(1)]
    return (
        [schema_field for _n, schema_field, _s in columns],
        [_project_row(row, columns) for row in selected],
        sum(_row_bytes(row, columns) for row in selected),
    )


class BigQueryError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def document(self) -> dict:
        statuses = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
        }
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                "status": statuses.get(self.status, "UNKNOWN"),
            }
        }


@dataclass
class Table:
    schema: list[dict]
    rows: list[dict]
    kind: str = "TABLE"  # or VIEW (no _PARTITIONTIME)

    def partition_time(self, row: dict) -> dt.datetime:
        # Ingestion-time partitioning by day: the day the row was exported.
        return timestamp_parse(row["export_time"]).replace(hour=0, minute=0, second=0)


@dataclass
class Job:
    project: str
    job_id: str
    location: str
    sql: str
    schema: list[dict]
    rows: list[list[dict]]  # already in cell format
    bytes_processed: int
    polls: int = 0


@dataclass
class BigQueryState:
    tables: dict[str, Table] = field(default_factory=dict)  # "project.dataset.table" -> Table
    jobs: dict[str, Job] = field(default_factory=dict)
    token: str | None = None  # when set, requests must carry "Bearer <token>"
    denied_job_projects: set[str] = field(default_factory=set)  # no bigquery.jobs.create there
    queries: list[str] = field(default_factory=list)
    dry_runs: list[str] = field(default_factory=list)
    page_sizes: list[int] = field(default_factory=list)


# --- the few SQL shapes the connector sends ------------------------------------------------------

_FROM = re.compile(r"\bFROM\s+`([^`]+)`", re.I)
_LOWER_BOUND = re.compile(r"\b(_PARTITIONTIME|export_time)\s*>=\s*TIMESTAMP\('([^']+)'\)", re.I)
_UPPER_BOUND = re.compile(r"\bexport_time\s*<=\s*TIMESTAMP\('([^']+)'\)", re.I)
_MONTH_FILTER = re.compile(r"\binvoice\.month\s*=\s*'(\d{6})'", re.I)
_STRUCT_ITEM = re.compile(r"^STRUCT\((.*)\)\s+AS\s+(\w+)$", re.I | re.S)
_SUB_ITEM = re.compile(r"^(\w+)\.(\w+)\s+AS\s+(\w+)$", re.I)


def _split_top_level(text: str) -> list[str]:
    items, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        items.append("".join(current).strip())
    return items


def _unrecognized(name: str) -> BigQueryError:
    return BigQueryError(400, "invalidQuery", f"Unrecognized name: {name} at [1:1]")


def _select_list(sql: str) -> str:
    body = re.sub(r"--[^\n]*", "", sql)
    match = re.search(r"\bSELECT\b(.*?)\bFROM\b", body, re.I | re.S)
    if not match:
        raise BigQueryError(400, "invalidQuery", "Syntax error: expected SELECT ... FROM")
    return match.group(1)


def projection(sql: str, schema: list[dict]) -> list[tuple[str, dict, list[tuple[str, str]] | None]]:
    """(output name, output schema field, [(source sub-field, output sub-field)] or None) per
    select item; refuses `*` so a test notices a connector that reads every column."""
    by_name = {f["name"]: f for f in schema}
    out = []
    for item in _split_top_level(_select_list(sql)):
        if item == "*" or item.endswith(".*"):
            raise BigQueryError(400, "invalidQuery", "stand-in: SELECT * is not served; name the columns")
        struct = _STRUCT_ITEM.match(item)
        if struct:
            parent_name = None
            subs = []
            sub_schema = []
            for sub in _split_top_level(struct.group(1)):
                sub_match = _SUB_ITEM.match(sub)
                if not sub_match:
                    raise BigQueryError(400, "invalidQuery", f"stand-in: cannot read {sub!r}")
                parent_name, source, alias = sub_match.groups()
                parent = by_name.get(parent_name)
                if parent is None:
                    raise _unrecognized(parent_name)
                source_field = next((f for f in parent["fields"] if f["name"] == source), None)
                if source_field is None:
                    raise BigQueryError(
                        400,
                        "invalidQuery",
                        f"Field name {source} does not exist in STRUCT<...> {parent_name}",
                    )
                subs.append((source, alias))
                sub_schema.append({**source_field, "name": alias})
            out.append(
                (f"{parent_name}:{struct.group(2)}", _f(struct.group(2), "RECORD", fields=sub_schema), subs)
            )
            continue
        if not re.fullmatch(r"\w+", item):
            raise BigQueryError(400, "invalidQuery", f"stand-in: cannot read select item {item!r}")
        if item not in by_name:
            raise _unrecognized(item)
        out.append((item, by_name[item], None))
    return out


def _project_row(row: dict, columns: list) -> list[dict]:
    cells = []
    for name, schema_field, subs in columns:
        if subs is None:
            cells.append(cell(row.get(name), schema_field))
        else:
            parent = row.get(name.split(":")[0]) or {}
            cells.append(cell({alias: parent.get(source) for source, alias in subs}, schema_field))
    return cells


def _row_bytes(row: dict, columns: list) -> int:
    # A rough bytes-scanned estimate: the JSON size of the selected columns.
    return sum(len(json.dumps(row.get(name.split(":")[0]), default=str)) for name, _s, _u in columns)


def query_evaluate(state: BigQueryState, sql: str) -> tuple[list[dict], list[list[dict]], int]:
    table_match = _FROM.search(sql)
    if not table_match:
        raise BigQueryError(400, "invalidQuery", "stand-in: no FROM `project.dataset.table`")
    table_id = table_match.group(1)
    table = state.tables.get(table_id)
    if table is None:
        project, _, rest = table_id.partition(".")
        raise BigQueryError(
            404, "notFound", f"Not found: Table {project}:{rest} was not found in location US"
        )
    if "-- inferensys:focus-" in sql:
        return focus_query_evaluate(table, sql)
    rows = table.rows
    bound = _LOWER_BOUND.search(sql)
    if bound:
        column, since_text = bound.groups()
        since = dt.datetime.fromisoformat(since_text)
        if column.upper() == "_PARTITIONTIME":
            if table.kind == "VIEW":
                raise _unrecognized("_PARTITIONTIME")
            rows = [row for row in rows if table.partition_time(row) >= since]
        else:
            rows = [row for row in rows if timestamp_parse(row["export_time"]) >= since]
    upper = _UPPER_BOUND.search(sql)
    if upper:
        until = dt.datetime.fromisoformat(upper.group(1))
        rows = [row for row in rows if timestamp_parse(row["export_time"]) <= until]
    if "-- inferensys:discover" in sql:
        groups: dict[str, list] = {}
        for row in rows:
            month = row["invoice"]["month"]
            latest, count = groups.get(month, (None, 0))
            moment = timestamp_parse(row["export_time"])
            groups[month] = (max(latest, moment) if latest else moment, count + 1)
        schema = [_f("invoice_month"), _f("last_export_time", "TIMESTAMP"), _f("row_count", "INTEGER")]
        result = [
            [{"v": month}, {"v": _micros(latest)}, {"v": str(count)}]
            for month, (latest, count) in sorted(groups.items(), reverse=True)
        ]
        return schema, result, len(rows) * 40
    period = re.search(r"-- inferensys:period (\d{6})", sql)
    if period:
        month_filter = _MONTH_FILTER.search(sql)
        if not month_filter or month_filter.group(1) != period.group(1):
            raise BigQueryError(
                400, "invalidQuery", "stand-in: period query without its invoice.month filter"
            )
        columns = projection(sql, table.schema)
        selected = [row for row in rows if row["invoice"]["month"] == period.group(1)]
        return (
            [schema_field for _n, schema_field, _s in columns],
            [_project_row(row, columns) for row in selected],
            sum(_row_bytes(row, columns) for row in selected),
        )
    raise BigQueryError(400, "invalidQuery", "stand-in: unknown query shape (no inferensys marker)")


class BigQueryHandler(StandinHandler):
    def handle_request(self, request: SeenRequest) -> None:
        state: BigQueryState = self.standin.state  # type: ignore[attr-defined]
        try:
            if state.token is not None and request.headers.get("authorization") != f"Bearer {state.token}":
                raise BigQueryError(
                    401,
                    "authError",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                    "login cookie or other valid authentication credential.",
                )
            self.route(state, request)
        except BigQueryError as error:
            self.send_json(error.status, error.document())

    def route(self, state: BigQueryState, request: SeenRequest) -> None:
        path = request.path.removeprefix("/bigquery/v2")
        if match := re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)", path):
            project, dataset, table_name = match.groups()
            table = state.tables.get(f"{project}.{dataset}.{table_name}")
            if table is None:
                raise BigQueryError(404, "notFound", f"Not found: Table {project}:{dataset}.{table_name}")
            resource = {
                "kind": "bigquery#table",
                "id": f"{project}:{dataset}.{table_name}",
                "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table_name},
                "schema": {"fields": table.schema},
                "type": table.kind,
                "location": "US",
            }
            if table.kind == "TABLE":
                resource["timePartitioning"] = {"type": "DAY"}
                resource["numRows"] = str(len(table.rows))
            self.send_json(200, resource)
            return
        if request.method == "POST" and (match := re.fullmatch(r"/projects/([^/]+)/jobs", path)):
            self.job_insert(state, match.group(1), request.body or {})
            return
        if match := re.fullmatch(r"/projects/([^/]+)/jobs/([^/]+)", path):
            job = self.job_get(state, match.group(2))
            job.polls += 1
            self.send_json(200, self.job_resource(job, done=job.polls > 1))
            return
        if match := re.fullmatch(r"/projects/([^/]+)/queries/([^/]+)", path):
            self.query_results(state, self.job_get(state, match.group(2)), request)
            return
        raise BigQueryError(404, "notFound", f"stand-in: no route for {request.method} {request.path}")

    def job_get(self, state: BigQueryState, job_id: str) -> Job:
        job = state.jobs.get(job_id)
        if job is None:
            raise BigQueryError(404, "notFound", f"Not found: Job {job_id}")
        return job

    def job_resource(self, job: Job, *, done: bool, dry_run: bool = False) -> dict:
        statistics = {
            "creationTime": "1790000000000",
            "totalBytesProcessed": str(job.bytes_processed),
            "query": {"totalBytesProcessed": str(job.bytes_processed), "statementType": "SELECT"},
        }
        return {
            "kind": "bigquery#job",
            "id": f"{job.project}:{job.location}.{job.job_id}",
            "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": job.location},
            "configuration": {"query": {"query": job.sql, "useLegacySql": False}, "dryRun": dry_run},
            "status": {"state": "DONE" if done else "RUNNING"},
            "statistics": statistics,
        }

    def job_insert(self, state: BigQueryState, project: str, body: dict) -> None:
        if project in state.denied_job_projects:
            raise BigQueryError(
                403,
                "accessDenied",
                f"Access Denied: Project {project}: User does not have bigquery.jobs.create permission "
                f"in project {project}.",
            )
        configuration = body.get("configuration", {})
        sql = configuration.get("query", {}).get("query", "")
        if configuration.get("query", {}).get("useLegacySql", False):
            raise BigQueryError(400, "invalidQuery", "stand-in: legacy SQL is not served")
        schema, rows, bytes_processed = query_evaluate(state, sql)
        reference = body.get("jobReference", {})
        job = Job(
            project=project,
            job_id=reference.get("jobId") or f"job_{len(state.jobs)}",
            location=reference.get("location") or "US",
            sql=sql,
            schema=schema,
            rows=rows,
            bytes_processed=bytes_processed,
        )
        dry_run = bool(configuration.get("dryRun"))
        if dry_run:
            state.dry_runs.append(sql)
            self.send_json(200, self.job_resource(job, done=True, dry_run=True))
            return
        state.queries.append(sql)
        state.jobs[job.job_id] = job
        self.send_json(200, self.job_resource(job, done=False))

    def query_results(self, state: BigQueryState, job: Job, request: SeenRequest) -> None:
        # The first look at a running job reports it incomplete, as a real job would be.
        job.polls += 1
        complete = job.polls > 1
        document: dict[str, Any] = {
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": job.location},
            "jobComplete": complete,
        }
        if not complete:
            self.send_json(200, document)
            return
        start = int(request.query.get("pageToken", ["0"])[0] or 0)
        if "startIndex" in request.query and "pageToken" not in request.query:
            start = int(request.query["startIndex"][0])
        size = int(request.query.get("maxResults", [str(len(job.rows))])[0])
        if size:
            state.page_sizes.append(size)
        page = job.rows[start : start + size]
        document.update(
            schema={"fields": job.schema},
            totalRows=str(len(job.rows)),
            totalBytesProcessed=str(job.bytes_processed),
            cacheHit=False,
        )
        if page:
            document["rows"] = [{"f": cells} for cells in page]
        if size and start + size < len(job.rows):
            document["pageToken"] = str(start + size)
        self.send_json(200, document)


def demo_table_rows(paths: list[Path]) -> list[dict]:
    """The demo export's rows, numbers kept as the exact decimal text written."""
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    rows.append(json.loads(line, parse_float=Decimal))
    return rows


def bigquery_start(state: BigQueryState) -> Standin:
    standin = standin_start(BigQueryHandler)
    standin.state = state  # type: ignore[attr-defined]
    return standin


@pytest.fixture
def bigquery_server():
    """A fresh BigQuery stand-in with no tables; add them to `server.state.tables`."""
    standin = bigquery_start(BigQueryState())
    yield standin
    standin.stop()


def restated(rows: list[dict], *, month: str, export_time: dt.datetime, extra_cost: Decimal) -> list[dict]:
    """A late correction for `month`: one more row of the first row's kind, exported later."""
    template = next(row for row in rows if row["invoice"]["month"] == month)
    correction = json.loads(json.dumps(template, default=str), parse_float=Decimal)
    correction.update(
        cost=extra_cost,
        cost_at_list=extra_cost,
        credits=[],
        export_time=export_time.strftime(_TIMESTAMP_TEXT),
        cost_type="adjustment",
    )
    return [*rows, correction]


__all__ = [
    "BigQueryState",
    "DETAILED_SCHEMA",
    "FOCUS_SCHEMA",
    "STANDARD_SCHEMA",
    "Table",
    "bigquery_server",
    "demo_table_rows",
    "focus_rows",
    "restated",
]
