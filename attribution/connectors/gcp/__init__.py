"""Google Cloud: the Cloud Billing export in BigQuery, and Vertex AI endpoint metrics.

Source settings of a GCP account:

    table           "project.dataset.table" of the billing export: standard
                    (gcp_billing_export_v1_*) or detailed (gcp_billing_export_resource_v1_*), a
                    table or a view over one; or the FOCUS table/view (gcp_billing_export_focus_*).
    schema          "focus", "standard" or "detailed"; default: FOCUS when the table has a
                    BilledCost column (tables.get), the standard/detailed export otherwise.
    project         billing project the query jobs run (and are paid) in; default: the table's.
    location        dataset location, e.g. "US" (default "US").
    credentials     "ambient" (ADC: workload identity, GOOGLE_APPLICATION_CREDENTIALS, metadata
                    server), "file:/path/key.json" (service-account or authorized-user JSON) or
                    "env:NAME" (the variable holds such JSON, or a short-lived OAuth access token).
    api_endpoint    BigQuery endpoint override (tests, Private Service Connect).
    rescan_days     late-row window re-read behind the watermark (default 3).
    final_after_days    days into the next month before a month may be final (default 5).
    final_quiet_days    days without a new export_time before a month may be final (default 3).
    max_bytes_billed    refuse a row query whose dry run estimates more bytes (default: no cap).
    metrics_projects    projects whose Vertex AI endpoints are read (default: [project]).
    monitoring_endpoint Cloud Monitoring endpoint override (tests).

Versions. The export appends rows; a row never changes, a correction is a new row with a later
`export_time`. So the version of an invoice month is its max `export_time`. Discovery runs one
aggregate query per sync over the partitions since (watermark - rescan window): `_PARTITIONTIME`
on an ingestion-time partitioned table (cheap: it prunes partitions), `export_time` on a view or a
table without it. A month whose max export_time moved is re-read whole (the loader swaps a period
atomically); a month with no row in the window kept the version we stored.

Finality. Google closes an invoice in the first days of the next month (usually by the 5th); rows
with export_time after that are rare corrections. A month is final once
`now >= first day of next month + final_after_days` and its last export_time is older than
`final_quiet_days`. A later row still arrives as a new version; the sync then flags the period
"restated after close".

FOCUS. The FOCUS table (or Google's FOCUS view over the detailed export) is read per billing
period (the month of BillingPeriodStart) and streamed as FOCUS CSV (header + rows, Tags as a JSON
object) into the FOCUS parser, selecting only the columns it reads. Its version is, when the table
has `x_ExportTime`, the month's max x_ExportTime, with the same watermark / re-scan window / bounded
re-read as above; without that column it is a fingerprint "sha256:..." of (row count,
SUM(CAST(BilledCost AS NUMERIC))) per month, computed by the discovery aggregate (a full scan of
the FOCUS columns it names, every sync). A re-read of a fingerprinted month recomputes the
fingerprint while streaming and fails the run if the month changed since discovery; a
restatement that keeps both the row count and the sum is not seen (it changes no total). Without
x_ExportTime a month is final `final_after_days + final_quiet_days` after its end.

Usage metrics. google-cloud-monitoring ships only gRPC transports (no `transport="rest"`), so
the Vertex AI metrics are read with the documented REST method `projects.timeSeries.list`
(https://monitoring.googleapis.com/v3/...) through google-auth's AuthorizedSession, with the same
credentials as BigQuery and nothing new to install.
"""

# Layout: auth.py (credentials, API errors), rows.py (row encodings), billing.py (the billing
# connector), usage.py (the usage connector). The registry in attribution/connectors/__init__.py
# names the connectors by this package's path.
from attribution.connectors.gcp.billing import FOCUS_COLUMNS, GcpBillingConnector
from attribution.connectors.gcp.rows import focus_fingerprint
from attribution.connectors.gcp.usage import VERTEX_METRICS, GcpUsageConnector

__all__ = ["FOCUS_COLUMNS", "VERTEX_METRICS", "GcpBillingConnector", "GcpUsageConnector", "focus_fingerprint"]
