"""Google Cloud detailed (resource-level) billing export, as the rows BigQuery returns, dumped as
newline-delimited JSON, one folder per invoice month:

    gcp/acme-billing.billing_export.gcp_billing_export_resource_v1_<BILLING_ACCOUNT>/
        invoice_month=YYYYMM/rows-00001.json, rows-00002.json, ...

Verified (Cloud Billing docs "Structure of Detailed data export", BigQuery docs, koku fixtures in
shared/data/billing/gcp/): the field set and nesting of the detailed table (service, sku,
usage_start_time, usage_end_time, project{id, number, name, labels, ancestry_numbers, ancestors},
labels[{key, value}], system_labels[], location{location, country, region, zone},
resource{name, global_name}, price{...}, export_time, cost, currency, currency_conversion_rate,
usage{amount, unit, amount_in_pricing_units, pricing_unit}, credits[{name, amount, full_name, id,
type}], invoice{month}, cost_type, cost_at_list, subscription{instance_id} on commitment fee
rows); `invoice.month` is in US Pacific time, so the first hours of a UTC month belong to the
previous invoice; credits are negative and kept inside the row (net = cost +
sum(credits.amount)); `bq extract` writes TIMESTAMP as "2026-10-01 07:00:00 UTC" (the koku CSVs
show the same instants as "+00:00" after pandas).
Assumed: as in BigQuery's JSON export, NULL fields are omitted, FLOAT64 values are JSON numbers
and NUMERIC values (price.*) are strings; tax and rounding rows (closed months only) name the
taxed service and carry no SKU usage; Gemini token SKUs use unit "count" per 1,000.

Rows are hourly, as the real export is. The billing period of a row is its invoice.month.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from attribution.demo.expected import Entry, ExpectedTotals
from attribution.demo.specs import (
    GCP,
    GCP_BILLING_ACCOUNT,
    GCP_ML_PROJECT,
    GCP_PLATFORM_PROJECT,
    MANAGED_PER_TOKEN,
    Company,
    DemoRange,
    DeploymentSpec,
    stable_hex,
    stable_uuid,
)
from attribution.demo.usage import tokens_by_hour

PACIFIC = ZoneInfo("America/Los_Angeles")
MICRO = Decimal("0.000001")
ROWS_PER_FILE = 20_000

SERVICES = {
    "compute": ("6F81-5844-456A", "Compute Engine"),
    "vertex": ("C7E2-9256-1C43", "Vertex AI"),
    "gke": ("CCD8-9BF1-090E", "Kubernetes Engine"),
    "storage": ("95FF-2EF5-5EA1", "Cloud Storage"),
    "network": ("E505-1604-58F8", "Networking"),
    "logging": ("5490-F7B7-8DF6", "Cloud Logging"),
}
PROJECTS = {
    GCP_ML_PROJECT: (
        "482019365571",
        [{"key": "env", "value": "prod"}, {"key": "cost-center", "value": "ml"}],
    ),
    GCP_PLATFORM_PROJECT: ("195728364019", [{"key": "env", "value": "prod"}]),
}
ORGANIZATION = "734209581632"
AREA = {"us-central1": "Americas", "europe-west4": "EMEA"}
COUNTRY = {"us-central1": "US", "europe-west4": "NL"}
# machine type: (vCPUs, GiB RAM, GPU SKU name, family) for the demo's VMs.
MACHINES = {
    "a3-highgpu-8g": (208, 1872, "Nvidia H100 80GB GPU", "A3"),
    "g2-standard-24": (24, 96, "Nvidia L4 GPU", "G2"),
    "g2-standard-8": (8, 32, "Nvidia L4 GPU", "G2"),
    "a2-highgpu-8g": (96, 680, "NVIDIA Tesla A100 GPU", "A2"),
    "n1-standard-8": (8, 30, "NVIDIA Tesla T4 GPU", "N1 Predefined"),
}
# Share of a machine's hourly price in its GPU, cores and RAM SKUs.
SHARE_GPU, SHARE_CORE = Decimal("0.86"), Decimal("0.09")


def _number(value: Decimal) -> str:
    return format(value, "f")


_NUMBER_MARK = "\x01"
_MARKED_NUMBER = re.compile(r'"\\u0001(-?[0-9.]+)"')


def _mark_decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return _NUMBER_MARK + format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(row: dict) -> str:
    """JSON as BigQuery's extract writes it: Decimals as bare numbers (the C encoder does the work;
    Decimals come through `default` as marked strings and are unquoted afterwards)."""
    text = json.dumps(row, default=_mark_decimal, separators=(",", ":"))
    return _MARKED_NUMBER.sub(r"\1", text)


def _without_nulls(record: dict) -> dict:
    # BigQuery's JSON export omits NULL fields.
    return {key: value for key, value in record.items() if value is not None}


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@lru_cache(maxsize=512)
def _sku_id(*parts: object) -> str:
    raw = stable_hex("gcp-sku", *parts, length=12).upper()
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


class GcpWriter:
    def __init__(
        self, *, company: Company, demo_range: DemoRange, out_dir: Path, totals: ExpectedTotals
    ) -> None:
        self.company = company
        self.demo_range = demo_range
        self.out_dir = out_dir
        self.totals = totals
        self.account = company.account(GCP)
        table = self.account.source_settings["table"]
        self.table_dir = out_dir / "gcp" / table
        self.deployments = company.deployments_of(GCP)
        # subscription.instance_id is a GUID (Cloud Billing CUD export: "769c55ea-c50f-4258-...").
        self._commitment_subscription = stable_uuid("gcp-cud-subscription", company.seed)
        self._entries: dict[str, Entry] = {}
        self._file = None
        self._file_rows = 0
        self._month: str | None = None
        self._month_files: list[Path] = []

    # --- output ---------------------------------------------------------------------------------

    def _open_month(self, invoice_month: str) -> None:
        self._close_month()
        self._month = invoice_month
        self._month_files = []
        self._entries[invoice_month] = self.totals.entry(
            provider=GCP,
            account=self.account.slug,
            billing_period=f"{invoice_month[:4]}-{invoice_month[4:]}",
            dataset="resource_v1",
        )
        self._new_file()

    def _new_file(self) -> None:
        if self._file is not None:
            self._file.close()
        directory = self.table_dir / f"invoice_month={self._month}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"rows-{len(self._month_files) + 1:05d}.json"
        self._month_files.append(path)
        self._file = path.open("w", encoding="utf-8", newline="\n")
        self._file_rows = 0

    def _close_month(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._month is not None:
            entry = self._entries[self._month]
            entry.files = [path.relative_to(self.out_dir).as_posix() for path in self._month_files]

    def _emit(self, row: dict, invoice_month: str) -> None:
        if invoice_month != self._month:
            self._open_month(invoice_month)
        elif self._file_rows >= ROWS_PER_FILE:
            self._new_file()
        cost = row["cost"]
        net = cost + sum((credit["amount"] for credit in row["credits"]), Decimal(0))
        self._entries[invoice_month].add(native=cost, billed=net, effective=net)
        self._file.write(_json(row))
        self._file.write("\n")
        self._file_rows += 1

    # --- rows -----------------------------------------------------------------------------------

    def _row(
        self,
        *,
        start: dt.datetime,
        end: dt.datetime,
        invoice_month: str,
        service: str,
        sku: str,
        project: str,
        region: str | None,
        zone: str | None = None,
        labels: dict[str, str] | None = None,
        system_labels: dict[str, str] | None = None,
        resource: tuple[str, str] | None = None,
        cost: Decimal,
        credits: list[dict] | None = None,
        usage: tuple[Decimal, str, Decimal, str] | None = None,
        price: tuple[Decimal, str] | None = None,
        cost_type: str = "regular",
        subscription: str | None = None,
    ) -> dict:
        service_id, service_name = SERVICES[service]
        number, project_labels = PROJECTS[project]
        if region in COUNTRY:
            location = _without_nulls(
                {"location": zone or region, "country": COUNTRY[region], "region": region, "zone": zone}
            )
        elif region:
            location = {"location": region, "country": "US"}
        else:
            location = None
        amount, unit, pricing_amount, pricing_unit = usage or (Decimal(0), None, Decimal(0), None)
        return _without_nulls(
            {
                "billing_account_id": GCP_BILLING_ACCOUNT,
                "service": {"id": service_id, "description": service_name},
                "sku": {"id": _sku_id(service, sku), "description": sku}
                if sku
                else {"id": "", "description": ""},
                "usage_start_time": _ts(start),
                "usage_end_time": _ts(end),
                "project": {
                    "id": project,
                    "number": number,
                    "name": project,
                    "labels": project_labels,
                    "ancestry_numbers": f"/{ORGANIZATION}/",
                    "ancestors": [
                        {"resource_name": f"projects/{number}", "display_name": project},
                        {"resource_name": f"organizations/{ORGANIZATION}", "display_name": "acme.example"},
                    ],
                },
                "labels": [{"key": key, "value": value} for key, value in (labels or {}).items()],
                "system_labels": [
                    {"key": key, "value": value} for key, value in (system_labels or {}).items()
                ],
                "location": location,
                "resource": {"name": resource[0], "global_name": resource[1]} if resource else None,
                "price": {
                    "effective_price": _number(price[0]),
                    "tier_start_amount": "0",
                    "unit": price[1],
                    "pricing_unit_quantity": "1",
                }
                if price
                else None,
                # The commitment a fee row is billed for (detailed export, since January 2024).
                "subscription": {"instance_id": subscription} if subscription else None,
                # Exports land a few hours after usage, at a time that varies by SKU.
                "export_time": _ts(
                    end + dt.timedelta(hours=4, minutes=17, seconds=(start.hour * 7 + len(sku)) % 60)
                ),
                "cost": cost,
                "currency": "USD",
                "currency_conversion_rate": Decimal("1.0"),
                "usage": _without_nulls(
                    {
                        "amount": amount,
                        "unit": unit,
                        "amount_in_pricing_units": pricing_amount,
                        "pricing_unit": pricing_unit,
                    }
                ),
                "credits": credits or [],
                "invoice": {"month": invoice_month, "publisher_type": "GOOGLE"},
                "cost_type": cost_type,
                "cost_at_list": cost,
            }
        )

    def _gemini_rows(
        self, deployment: DeploymentSpec, start: dt.datetime, invoice_month: str, tokens: tuple[int, int]
    ) -> list[dict]:
        rows = []
        model_label = "Gemini 1.5 Pro" if "pro" in deployment.model else "Gemini 1.5 Flash"
        area = AREA[deployment.region]
        promo = (
            "pro" in deployment.model
            and deployment.region == "us-central1"
            and invoice_month < f"{self.demo_range.end:%Y%m}"
        )
        for direction, count, price in (
            ("Input", tokens[0], deployment.input_price_per_1k),
            ("Output", tokens[1], deployment.output_price_per_1k),
        ):
            thousands = Decimal(count) / 1000
            cost = (thousands * price).quantize(MICRO)
            credits = []
            if promo and cost:
                credits.append(
                    {
                        "name": "Gemini onboarding credit",
                        "amount": (-cost * Decimal("0.2")).quantize(MICRO),
                        "full_name": "Vertex AI Gemini promotional credit (20%)",
                        "id": "PromotionalCredit-" + stable_uuid_short(self.company.seed, "gemini-promo"),
                        "type": "PROMOTION",
                    }
                )
            rows.append(
                self._row(
                    start=start,
                    end=start + dt.timedelta(hours=1),
                    invoice_month=invoice_month,
                    service="vertex",
                    sku=f"{model_label} {direction} Text Tokens running in {area}",
                    project=GCP_ML_PROJECT,
                    region=deployment.region,
                    labels=deployment.tags(),
                    system_labels={"aiplatform.googleapis.com/model_id": deployment.resource_name},
                    resource=(deployment.resource_name, deployment.resource_id),
                    cost=cost,
                    credits=credits,
                    usage=(Decimal(count), "count", thousands, "count"),
                    price=(price, "count"),
                )
            )
        return rows

    def _machine_rows(
        self, deployment: DeploymentSpec, start: dt.datetime, invoice_month: str, spot_factor: Decimal
    ) -> list[dict]:
        cores, ram, gpu_sku, family = MACHINES[deployment.instance_type]
        n = deployment.instance_count
        rate = deployment.on_demand_rate * spot_factor
        area = AREA[deployment.region]
        vertex = deployment.service == "vertex_endpoint"
        spot = deployment.pricing_mode == "spot"
        prefix = "Vertex AI: Online/Batch Prediction " if vertex else ("Spot Preemptible " if spot else "")
        region_words = "Netherlands" if deployment.region == "europe-west4" else "Americas"
        zone = None if vertex else deployment.resource_id.split("/zones/")[1].split("/")[0]
        labels = dict(deployment.tags())
        if deployment.service == "gke":
            cluster = f"ml-serving-{'usc1' if deployment.region == 'us-central1' else 'euw4'}"
            labels = {"goog-k8s-cluster-name": cluster, "goog-k8s-node-pool-name": deployment.pool, **labels}
        system_labels = (
            None
            if vertex
            else {
                "compute.googleapis.com/machine_spec": deployment.instance_type,
                "compute.googleapis.com/cores": str(cores),
                "compute.googleapis.com/memory": str(ram * 1024),
            }
        )
        parts = (
            (
                f"{prefix}{gpu_sku} running in {area}",
                deployment.gpus_per_instance,
                rate * SHARE_GPU / deployment.gpus_per_instance,
                "hour",
                "gpu",
            ),
            (
                f"{prefix}{family} Instance Core running in {region_words}",
                cores,
                rate * SHARE_CORE / cores,
                "hour",
                "core",
            ),
            (
                f"{prefix}{family} Instance Ram running in {region_words}",
                ram,
                rate * (1 - SHARE_GPU - SHARE_CORE) / ram,
                "gibibyte hour",
                "ram",
            ),
        )
        day_of_month = start.astimezone(PACIFIC).day
        rows = []
        for sku, units_per_instance, unit_price, pricing_unit, part in parts:
            unit_price = unit_price.quantize(MICRO)
            units = Decimal(units_per_instance * n)
            cost = (units * unit_price).quantize(MICRO)
            credits = []
            if deployment.pricing_mode == "reserved" and part == "gpu":
                credits.append(
                    {
                        "name": "Committed use discount: GPU",
                        "amount": -cost,
                        "full_name": "Committed Usage Discount - Nvidia H100 80GB GPU",
                        "id": "CommitmentV1-" + stable_uuid_short(self.company.seed, "cud-h100"),
                        "type": "COMMITTED_USAGE_DISCOUNT",
                    }
                )
            if deployment.pricing_mode == "on_demand" and not vertex and day_of_month > 7:
                credits.append(
                    {
                        "name": "Sustained Usage Discount",
                        "amount": (-cost * Decimal("0.2")).quantize(MICRO),
                        "id": "SustainedUsageDiscount-"
                        + stable_uuid_short(self.company.seed, "sud", deployment.slug),
                        "type": "SUSTAINED_USAGE_DISCOUNT",
                    }
                )
            seconds = units * 3600
            usage = (
                (seconds, "seconds", units, "hour")
                if pricing_unit == "hour"
                else (seconds * 1024**3, "byte-seconds", units, "gibibyte hour")
            )
            rows.append(
                self._row(
                    start=start,
                    end=start + dt.timedelta(hours=1),
                    invoice_month=invoice_month,
                    service="vertex" if vertex else "compute",
                    sku=sku,
                    project=GCP_ML_PROJECT,
                    region=deployment.region,
                    zone=zone,
                    labels=labels,
                    system_labels=system_labels,
                    resource=(deployment.resource_name, deployment.resource_id),
                    cost=cost,
                    credits=credits,
                    usage=usage,
                    price=(unit_price, pricing_unit),
                )
            )
        return rows

    def _hourly_shared_rows(self, start: dt.datetime, invoice_month: str, rng: random.Random) -> list[dict]:
        end = start + dt.timedelta(hours=1)
        rows = []
        # The resource-based commitment for the A3 pool's GPUs: billed every hour, used or not.
        a3 = next(d for d in self.deployments if d.instance_type == "a3-highgpu-8g")
        gpu_price = (a3.on_demand_rate * SHARE_GPU / a3.gpus_per_instance).quantize(MICRO)
        fee_unit = (gpu_price * Decimal("0.55")).quantize(MICRO)
        rows.append(
            self._row(
                start=start,
                end=end,
                invoice_month=invoice_month,
                service="compute",
                sku="Commitment v1: Nvidia H100 80GB GPU in Americas for 1 Year",
                project=GCP_ML_PROJECT,
                region="us-central1",
                cost=(fee_unit * 8).quantize(MICRO),
                usage=(Decimal(8 * 3600), "seconds", Decimal(8), "hour"),
                price=(fee_unit, "hour"),
                subscription=self._commitment_subscription,
            )
        )
        for region, cluster in (("us-central1", "ml-serving-usc1"), ("europe-west4", "ml-serving-euw4")):
            rows.append(
                self._row(
                    start=start,
                    end=end,
                    invoice_month=invoice_month,
                    service="gke",
                    sku="Regional Kubernetes Clusters",
                    project=GCP_ML_PROJECT,
                    region=region,
                    resource=(
                        cluster,
                        f"//container.googleapis.com/projects/{GCP_ML_PROJECT}/locations/{region}/clusters/{cluster}",
                    ),
                    cost=Decimal("0.100000"),
                    usage=(Decimal(3600), "seconds", Decimal(1), "hour"),
                    price=(Decimal("0.1"), "hour"),
                )
            )
        noise = Decimal(str(round(rng.uniform(0.85, 1.15), 4)))
        stored_gib = Decimal(480_000) * noise
        rows.append(
            self._row(
                start=start,
                end=end,
                invoice_month=invoice_month,
                service="storage",
                sku="Standard Storage US Multi-region",
                project=GCP_PLATFORM_PROJECT,
                region="us",
                resource=("acme-ml-datasets", "//storage.googleapis.com/projects/_/buckets/acme-ml-datasets"),
                cost=(stored_gib * Decimal("0.026") / 730).quantize(MICRO),
                usage=(
                    (stored_gib * 1024**3 * 3600).quantize(Decimal(1)),
                    "byte-seconds",
                    (stored_gib / 730).quantize(MICRO),
                    "gibibyte month",
                ),
                price=(Decimal("0.026"), "gibibyte month"),
            )
        )
        egress = Decimal(160) * noise
        rows.append(
            self._row(
                start=start,
                end=end,
                invoice_month=invoice_month,
                service="network",
                sku="Network Inter Region Data Transfer Out from Americas to EMEA",
                project=GCP_PLATFORM_PROJECT,
                region="us-central1",
                cost=(egress * Decimal("0.05")).quantize(MICRO),
                usage=((egress * 1024**3).quantize(Decimal(1)), "bytes", egress.quantize(MICRO), "gibibyte"),
                price=(Decimal("0.05"), "gibibyte"),
            )
        )
        logs = Decimal(42) * noise
        rows.append(
            self._row(
                start=start,
                end=end,
                invoice_month=invoice_month,
                service="logging",
                sku="Log Storage cost",
                project=GCP_PLATFORM_PROJECT,
                region="global",
                cost=(logs * Decimal("0.5")).quantize(MICRO),
                usage=((logs * 1024**3).quantize(Decimal(1)), "bytes", logs.quantize(MICRO), "gibibyte"),
                price=(Decimal("0.5"), "gibibyte"),
            )
        )
        # The one platform resource someone labelled: the Terraform state bucket, the evidence
        # that the platform project is the platform team's.
        state_gib = Decimal(40) * noise
        rows.append(
            self._row(
                start=start,
                end=end,
                invoice_month=invoice_month,
                service="storage",
                sku="Standard Storage US Multi-region",
                project=GCP_PLATFORM_PROJECT,
                region="us",
                labels={"team": "platform"},
                resource=(
                    "acme-platform-tfstate",
                    "//storage.googleapis.com/projects/_/buckets/acme-platform-tfstate",
                ),
                cost=(state_gib * Decimal("0.026") / 730).quantize(MICRO),
                usage=(
                    (state_gib * 1024**3 * 3600).quantize(Decimal(1)),
                    "byte-seconds",
                    (state_gib / 730).quantize(MICRO),
                    "gibibyte month",
                ),
                price=(Decimal("0.026"), "gibibyte month"),
            )
        )
        return rows

    def _month_close_rows(
        self, invoice_month: str, month_start: dt.datetime, month_end: dt.datetime
    ) -> list[dict]:
        entry = self._entries[invoice_month]
        rows = []
        tax = (entry.billed_cost * Decimal("0.0425")).quantize(Decimal("0.01"))
        for service, share in (("vertex", Decimal("0.55")), ("compute", Decimal("0.45"))):
            rows.append(
                self._row(
                    start=month_start,
                    end=month_end,
                    invoice_month=invoice_month,
                    service=service,
                    sku="",
                    project=GCP_ML_PROJECT,
                    region=None,
                    cost=(tax * share).quantize(MICRO),
                    cost_type="tax",
                )
            )
        rows.append(
            self._row(
                start=month_start,
                end=month_end,
                invoice_month=invoice_month,
                service="compute",
                sku="",
                project=GCP_ML_PROJECT,
                region=None,
                cost=Decimal("0.000004"),
                cost_type="rounding_error",
            )
        )
        return rows

    # --- driver ---------------------------------------------------------------------------------

    def write(self) -> None:
        first_hour = dt.datetime.combine(self.demo_range.start, dt.time(0), tzinfo=PACIFIC).astimezone(dt.UTC)
        stop = dt.datetime.combine(self.demo_range.end + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
        day = first_hour.date()
        per_token = [d for d in self.deployments if d.kind == MANAGED_PER_TOKEN]
        machines = [d for d in self.deployments if d.kind != MANAGED_PER_TOKEN]
        month_bounds: dict[str, tuple[dt.datetime, dt.datetime]] = {}
        while day <= self.demo_range.end:
            tokens = {d.slug: tokens_by_hour(company=self.company, deployment=d, day=day) for d in per_token}
            rng = random.Random(f"{self.company.seed}:gcp-platform:{day.isoformat()}")
            spot_rng = random.Random(f"{self.company.seed}:gcp-spot:{day:%Y-%m}")
            spot_factor = Decimal(str(round(spot_rng.uniform(0.3, 0.4), 3)))
            for hour in range(24):
                start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)
                if start < first_hour or start >= stop:
                    continue
                invoice_month = f"{start.astimezone(PACIFIC):%Y%m}"
                bounds = month_bounds.get(invoice_month)
                month_bounds[invoice_month] = (bounds[0] if bounds else start, start + dt.timedelta(hours=1))
                for deployment in per_token:
                    count = tokens[deployment.slug].get(hour)
                    if count:
                        for row in self._gemini_rows(deployment, start, invoice_month, count):
                            self._emit(row, invoice_month)
                for deployment in machines:
                    if deployment.is_down(day, hour):
                        continue
                    factor = spot_factor if deployment.pricing_mode == "spot" else Decimal(1)
                    for row in self._machine_rows(deployment, start, invoice_month, factor):
                        self._emit(row, invoice_month)
                for row in self._hourly_shared_rows(start, invoice_month, rng):
                    self._emit(row, invoice_month)
                next_month = f"{(start + dt.timedelta(hours=1)).astimezone(PACIFIC):%Y%m}"
                if next_month != invoice_month and start + dt.timedelta(hours=1) < stop:
                    # The invoice month closed within the range: its tax and rounding rows follow.
                    for row in self._month_close_rows(invoice_month, *month_bounds[invoice_month]):
                        self._emit(row, invoice_month)
            day += dt.timedelta(days=1)
        self._close_month()


def stable_uuid_short(*parts: object) -> str:
    return stable_hex(*parts, length=12)


def gcp_write(
    *, company: Company, demo_range: DemoRange, out_dir: Path, totals: ExpectedTotals
) -> list[Entry]:
    GcpWriter(company=company, demo_range=demo_range, out_dir=out_dir, totals=totals).write()
    return [entry for entry in totals.entries if entry.provider == GCP]
