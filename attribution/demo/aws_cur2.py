"""AWS Data Exports, CUR 2.0 table, delivered as gzipped CSV to S3 (mirrored under --out/aws).

Verified (AWS Data Exports user guide, "Understanding export delivery" and "Data Exports manifest
file reference"; public tools that read real buckets):
- data:     s3://<bucket>/<prefix>/<export-name>/data/BILLING_PERIOD=YYYY-MM/<...>/<export-name>-0000N.csv.gz
- metadata: s3://<bucket>/<prefix>/<export-name>/metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json,
  overwritten by every refresh of the period (so it always describes the latest execution);
- with the "create new data export file" option each execution writes its files into its own
  folder, named `<timestamp>-<execution id>` (e.g. `2024-05-18T20:16:37.306Z-3695a728-...`);
- manifest fields: executionId, exportArn, columns [{name, type}], dataFiles (full s3:// URIs;
  AWS recommends ingesting exactly the files this list names), additionalOutputFiles;
- CUR 2.0 has a fixed snake_case schema; tags, cost categories, discounts and the remaining product
  attributes are map columns (`resource_tags` keys like `user:team`).
Assumed (not found in a primary source here):
- the manifest also carries `billingPeriod` {start, end} and `exportTime` (harmless extras);
- CSV cells of map columns are JSON objects (`{"user:team":"search"}`, `{}` when empty);
- timestamps are written `2026-10-01T00:00:00.000Z`; empty cells for null.
The export is DAILY with resource ids and without split cost allocation data.

Restatement: the month before the end month is delivered twice. The earlier execution (two days
after month end) lacks late usage, credits and tax; the later one is complete and carries the
invoice id. Both data folders stay (as in S3); the manifest names the later one. A copy of the
earlier manifest is kept under `_versions/` at the root of --out for replaying the earlier state.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from attribution.demo.expected import Entry, ExpectedTotals, aws_effective_cost, decimal_text
from attribution.demo.specs import (
    AWS,
    AWS_ML_ACCOUNT,
    AWS_PAYER,
    AWS_PLATFORM_ACCOUNT,
    MANAGED_PER_TOKEN,
    Company,
    DemoRange,
    DeploymentSpec,
    month_after,
    month_end,
    stable_hex,
    stable_uuid,
)
from attribution.demo.usage import tokens_by_hour

TEN = Decimal("0.0000000001")
RATE = Decimal("0.0000001")

# CUR 2.0 table COST_AND_USAGE_REPORT with INCLUDE_RESOURCES=TRUE, in the documented column order.
CUR2_COLUMNS: tuple[tuple[str, str], ...] = (
    ("bill_bill_type", "string"),
    ("bill_billing_entity", "string"),
    ("bill_billing_period_end_date", "timestamp"),
    ("bill_billing_period_start_date", "timestamp"),
    ("bill_invoice_id", "string"),
    ("bill_invoicing_entity", "string"),
    ("bill_payer_account_id", "string"),
    ("bill_payer_account_name", "string"),
    ("cost_category", "map<string,string>"),
    ("discount", "map<string,double>"),
    ("discount_bundled_discount", "double"),
    ("discount_total_discount", "double"),
    ("identity_line_item_id", "string"),
    ("identity_time_interval", "string"),
    ("line_item_availability_zone", "string"),
    ("line_item_blended_cost", "double"),
    ("line_item_blended_rate", "string"),
    ("line_item_currency_code", "string"),
    ("line_item_legal_entity", "string"),
    ("line_item_line_item_description", "string"),
    ("line_item_line_item_type", "string"),
    ("line_item_net_unblended_cost", "double"),
    ("line_item_net_unblended_rate", "string"),
    ("line_item_normalization_factor", "double"),
    ("line_item_normalized_usage_amount", "double"),
    ("line_item_operation", "string"),
    ("line_item_product_code", "string"),
    ("line_item_resource_id", "string"),
    ("line_item_tax_type", "string"),
    ("line_item_unblended_cost", "double"),
    ("line_item_unblended_rate", "string"),
    ("line_item_usage_account_id", "string"),
    ("line_item_usage_account_name", "string"),
    ("line_item_usage_amount", "double"),
    ("line_item_usage_end_date", "timestamp"),
    ("line_item_usage_start_date", "timestamp"),
    ("line_item_usage_type", "string"),
    ("pricing_currency", "string"),
    ("pricing_lease_contract_length", "string"),
    ("pricing_offering_class", "string"),
    ("pricing_public_on_demand_cost", "double"),
    ("pricing_public_on_demand_rate", "string"),
    ("pricing_purchase_option", "string"),
    ("pricing_rate_code", "string"),
    ("pricing_rate_id", "string"),
    ("pricing_term", "string"),
    ("pricing_unit", "string"),
    ("product", "map<string,string>"),
    ("product_comment", "string"),
    ("product_fee_code", "string"),
    ("product_fee_description", "string"),
    ("product_from_location", "string"),
    ("product_from_location_type", "string"),
    ("product_from_region_code", "string"),
    ("product_instance_family", "string"),
    ("product_instance_type", "string"),
    ("product_instancesku", "string"),
    ("product_location", "string"),
    ("product_location_type", "string"),
    ("product_operation", "string"),
    ("product_pricing_unit", "string"),
    ("product_product_family", "string"),
    ("product_region_code", "string"),
    ("product_servicecode", "string"),
    ("product_sku", "string"),
    ("product_to_location", "string"),
    ("product_to_location_type", "string"),
    ("product_to_region_code", "string"),
    ("product_usagetype", "string"),
    ("reservation_amortized_upfront_cost_for_usage", "double"),
    ("reservation_amortized_upfront_fee_for_billing_period", "double"),
    ("reservation_availability_zone", "string"),
    ("reservation_effective_cost", "double"),
    ("reservation_end_time", "string"),
    ("reservation_modification_status", "string"),
    ("reservation_net_amortized_upfront_cost_for_usage", "double"),
    ("reservation_net_amortized_upfront_fee_for_billing_period", "double"),
    ("reservation_net_effective_cost", "double"),
    ("reservation_net_recurring_fee_for_usage", "double"),
    ("reservation_net_unused_amortized_upfront_fee_for_billing_period", "double"),
    ("reservation_net_unused_recurring_fee", "double"),
    ("reservation_net_upfront_value", "double"),
    ("reservation_normalized_units_per_reservation", "string"),
    ("reservation_number_of_reservations", "string"),
    ("reservation_recurring_fee_for_usage", "double"),
    ("reservation_reservation_a_r_n", "string"),
    ("reservation_start_time", "string"),
    ("reservation_subscription_id", "string"),
    ("reservation_total_reserved_normalized_units", "string"),
    ("reservation_total_reserved_units", "string"),
    ("reservation_units_per_reservation", "string"),
    ("reservation_unused_amortized_upfront_fee_for_billing_period", "double"),
    ("reservation_unused_normalized_unit_quantity", "double"),
    ("reservation_unused_quantity", "double"),
    ("reservation_unused_recurring_fee", "double"),
    ("reservation_upfront_value", "double"),
    ("resource_tags", "map<string,string>"),
    ("savings_plan_amortized_upfront_commitment_for_billing_period", "double"),
    ("savings_plan_end_time", "string"),
    ("savings_plan_instance_type_family", "string"),
    ("savings_plan_net_amortized_upfront_commitment_for_billing_period", "double"),
    ("savings_plan_net_recurring_commitment_for_billing_period", "double"),
    ("savings_plan_net_savings_plan_effective_cost", "double"),
    ("savings_plan_offering_type", "string"),
    ("savings_plan_payment_option", "string"),
    ("savings_plan_purchase_term", "string"),
    ("savings_plan_recurring_commitment_for_billing_period", "double"),
    ("savings_plan_region", "string"),
    ("savings_plan_savings_plan_a_r_n", "string"),
    ("savings_plan_savings_plan_effective_cost", "double"),
    ("savings_plan_savings_plan_rate", "double"),
    ("savings_plan_start_time", "string"),
    ("savings_plan_total_commitment_to_date", "double"),
    ("savings_plan_used_commitment", "double"),
)
CUR2_HEADER: tuple[str, ...] = tuple(name for name, _ in CUR2_COLUMNS)

REGION_LOCATION = {
    "us-east-1": "US East (N. Virginia)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
}
# EC2 usage types carry no prefix in us-east-1 and `EU-` in Ireland; most other services use the
# region code prefix everywhere.
EC2_PREFIX = {"us-east-1": "", "us-west-2": "USW2-", "eu-west-1": "EU-"}
SERVICE_PREFIX = {"us-east-1": "USE1-", "us-west-2": "USW2-", "eu-west-1": "EUW1-"}

# A No Upfront, 1-year Compute Savings Plan sized just above the steady on-demand EC2 fleet.
SP_COMMITMENT_PER_HOUR = Decimal("72.00")
SP_DISCOUNT = {"p5.48xlarge": Decimal("0.64"), "g5.12xlarge": Decimal("0.72")}


def _ts(moment: dt.datetime | dt.date) -> str:
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _money(value: Decimal) -> Decimal:
    return value.quantize(TEN)


@dataclass(frozen=True)
class Execution:
    execution_id: str
    started_at: dt.datetime
    complete: bool  # False: the early delivery without late usage, credits and tax

    @property
    def folder(self) -> str:
        return f"{_ts(self.started_at)}-{self.execution_id}"


class _ChunkedCsvGz:
    """Writes rows to <export-name>-0000N.csv.gz files, each with the header; deterministic bytes."""

    def __init__(self, directory: Path, export_name: str) -> None:
        self.directory = directory
        self.export_name = export_name
        self.paths: list[Path] = []
        self._raw = None
        self._gz = None
        self._text = None
        self._writer = None

    def new_chunk(self) -> None:
        self.close()
        path = self.directory / f"{self.export_name}-{len(self.paths) + 1:05d}.csv.gz"
        self.paths.append(path)
        self._raw = path.open("wb")
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
        self._text = io.TextIOWrapper(self._gz, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text, lineterminator="\n")
        self._writer.writerow(CUR2_HEADER)

    def write(self, row: dict[str, str]) -> None:
        self._writer.writerow([row.get(column, "") for column in CUR2_HEADER])

    def close(self) -> None:
        if self._text is not None:
            self._text.close()
            self._gz.close()
            self._raw.close()
            self._text = self._gz = self._raw = self._writer = None


class Cur2Writer:
    def __init__(
        self, *, company: Company, demo_range: DemoRange, out_dir: Path, totals: ExpectedTotals
    ) -> None:
        self.company = company
        self.demo_range = demo_range
        self.out_dir = out_dir
        self.totals = totals
        self.account = company.account(AWS)
        settings = self.account.source_settings
        self.bucket = settings["bucket"]
        self.prefix = settings["prefix"]
        self.export_name = settings["export_name"]
        self.export_root = out_dir / "aws" / self.bucket / self.prefix / self.export_name
        self.export_arn = (
            f"arn:aws:bcm-data-exports:us-east-1:{AWS_PAYER}:export/{self.export_name}-"
            + stable_uuid(company.seed, "export-arn")
        )
        self.savings_plan_arn = f"arn:aws:savingsplans::{AWS_PAYER}:savingsplan/" + stable_uuid(
            company.seed, "sp"
        )
        self.deployments = company.deployments_of(AWS)

    # --- executions ---------------------------------------------------------------------------

    def executions(self, month: dt.date) -> list[Execution]:
        seed = self.company.seed
        period = f"{month:%Y-%m}"
        end = self.demo_range.end
        restated = self.demo_range.is_closed(month) and month_after(month) == end.replace(day=1)
        if not self.demo_range.is_closed(month):
            final_at = dt.datetime.combine(
                end + dt.timedelta(days=1), dt.time(3, 14, 15, 271000), tzinfo=dt.UTC
            )
            return [Execution(stable_uuid(seed, "exec", period, "mtd"), final_at, True)]
        after_close = dt.datetime.combine(month_end(month) + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
        final_at = after_close + dt.timedelta(days=4, hours=5, minutes=7, seconds=42, milliseconds=118)
        final = Execution(stable_uuid(seed, "exec", period, "final"), final_at, True)
        if not restated:
            return [final]
        early_at = after_close + dt.timedelta(days=1, hours=4, minutes=41, seconds=9, milliseconds=604)
        return [Execution(stable_uuid(seed, "exec", period, "early"), early_at, False), final]

    # --- rows --------------------------------------------------------------------------------

    def _base(
        self, *, month: dt.date, execution: Execution, start: dt.datetime, end: dt.datetime
    ) -> dict[str, str]:
        closed = self.demo_range.is_closed(month) and execution.complete
        return {
            "bill_bill_type": "Anniversary",
            "bill_billing_entity": "AWS",
            "bill_billing_period_start_date": _ts(month),
            "bill_billing_period_end_date": _ts(month_after(month)),
            "bill_invoice_id": str(
                int(stable_hex(self.company.seed, "invoice", month, length=12), 16) % 10**10
            )
            if closed
            else "",
            "bill_invoicing_entity": "Amazon Web Services, Inc.",
            "bill_payer_account_id": AWS_PAYER,
            "bill_payer_account_name": "Acme Corp",
            "cost_category": "{}",
            "discount": "{}",
            "identity_time_interval": f"{_ts(start)}/{_ts(end)}",
            "line_item_currency_code": "USD",
            "line_item_legal_entity": "Amazon Web Services, Inc.",
            "line_item_usage_start_date": _ts(start),
            "line_item_usage_end_date": _ts(end),
            "pricing_currency": "USD",
            "product": "{}",
            "resource_tags": "{}",
        }

    @staticmethod
    def _costs(row: dict[str, str], unblended: Decimal, public: Decimal | None = None) -> None:
        text = decimal_text(_money(unblended))
        row["line_item_unblended_cost"] = text
        row["line_item_blended_cost"] = text
        row["line_item_net_unblended_cost"] = text
        if public is not None:
            row["pricing_public_on_demand_cost"] = decimal_text(_money(public))

    def _tags(self, deployment: DeploymentSpec) -> str:
        return json.dumps(
            {f"user:{key}": value for key, value in deployment.tags().items()}, separators=(",", ":")
        )

    def _instance_rows(
        self, deployment: DeploymentSpec, day: dt.date, base: dict, execution: Execution
    ) -> list[dict]:
        """One day of a SageMaker endpoint or EC2 node: Usage, or SP covered usage + negation."""
        hours = sum(1 for hour in range(24) if not deployment.is_down(day, hour))
        if deployment.service == "sagemaker" and not execution.complete and day == month_end(day):
            hours = 18  # the last hours of the month arrive after the early delivery
        quantity = Decimal(hours * deployment.instance_count)
        region = deployment.region
        rate = deployment.on_demand_rate
        public = quantity * rate
        row = dict(base)
        row.update(
            line_item_resource_id=deployment.resource_id,
            line_item_usage_account_id=AWS_ML_ACCOUNT,
            line_item_usage_account_name="acme-ml-prod",
            line_item_usage_amount=decimal_text(quantity),
            line_item_normalization_factor="",
            pricing_public_on_demand_rate=decimal_text(rate),
            pricing_unit="Hrs",
            product_location=REGION_LOCATION[region],
            product_location_type="AWS Region",
            product_region_code=region,
            product_instance_type=deployment.instance_type,
            resource_tags=self._tags(deployment),
            product_sku=stable_hex(
                "sku", deployment.instance_type, region, deployment.pricing_mode, length=16
            ).upper(),
        )
        if deployment.service == "sagemaker":
            usage_type = f"{SERVICE_PREFIX[region]}Host:{deployment.instance_type}"
            row.update(
                line_item_product_code="AmazonSageMaker",
                product_servicecode="AmazonSageMaker",
                line_item_usage_type=usage_type,
                product_usagetype=usage_type,
                line_item_operation="RunInstance",
                product_operation="RunInstance",
                product_product_family="ML Instance",
                product_instance_family=deployment.instance_type.split(".")[1],
                line_item_line_item_type="Usage",
                line_item_unblended_rate=decimal_text(rate),
                line_item_blended_rate=decimal_text(rate),
                line_item_net_unblended_rate=decimal_text(rate),
                line_item_line_item_description=f"${rate} per Hosting {deployment.instance_type} hour in "
                f"{REGION_LOCATION[region]}",
                pricing_term="OnDemand",
                product=json.dumps(
                    {"product_name": "Amazon SageMaker", "region": region}, separators=(",", ":")
                ),
            )
            self._costs(row, public, public)
            return [row]
        zone = f"{region}{'a' if 'spot' not in deployment.slug else 'b'}"
        instance_family = deployment.instance_type.split(".")[0]
        row.update(
            line_item_product_code="AmazonEC2",
            product_servicecode="AmazonEC2",
            line_item_availability_zone=zone,
            product_product_family="Compute Instance",
            product_instance_family="GPU instance",
            line_item_normalization_factor="",
            product=json.dumps(
                {
                    "product_name": "Amazon Elastic Compute Cloud",
                    "region": region,
                    "operating_system": "Linux",
                },
                separators=(",", ":"),
            ),
        )
        if deployment.pricing_mode == "spot":
            spot_rng = random.Random(f"{self.company.seed}:spot:{deployment.slug}:{day.isoformat()}")
            spot_rate = (rate * Decimal(str(round(spot_rng.uniform(0.34, 0.46), 4)))).quantize(RATE)
            usage_type = f"{EC2_PREFIX[region]}SpotUsage:{deployment.instance_type}"
            row.update(
                line_item_usage_type=usage_type,
                product_usagetype=usage_type,
                line_item_operation="RunInstances:SV001",
                product_operation="RunInstances",
                line_item_line_item_type="Usage",
                line_item_unblended_rate=decimal_text(spot_rate),
                line_item_blended_rate=decimal_text(spot_rate),
                line_item_net_unblended_rate=decimal_text(spot_rate),
                line_item_line_item_description=f"${spot_rate} per Linux {deployment.instance_type} "
                "Spot hour",
                pricing_term="Spot",
            )
            self._costs(row, quantity * spot_rate, public)
            return [row]
        usage_type = f"{EC2_PREFIX[region]}BoxUsage:{deployment.instance_type}"
        sp_rate = (rate * SP_DISCOUNT[deployment.instance_type]).quantize(RATE)
        sp_effective = _money(quantity * sp_rate)
        row.update(
            line_item_usage_type=usage_type,
            product_usagetype=usage_type,
            line_item_operation="RunInstances",
            product_operation="RunInstances",
            line_item_line_item_type="SavingsPlanCoveredUsage",
            line_item_unblended_rate=decimal_text(rate),
            line_item_blended_rate=decimal_text(rate),
            line_item_net_unblended_rate=decimal_text(rate),
            line_item_line_item_description=f"${rate} per On Demand Linux {deployment.instance_type} "
            "Instance Hour",
            pricing_term="OnDemand",
            savings_plan_savings_plan_a_r_n=self.savings_plan_arn,
            savings_plan_savings_plan_rate=decimal_text(sp_rate),
            savings_plan_savings_plan_effective_cost=decimal_text(sp_effective),
            savings_plan_net_savings_plan_effective_cost=decimal_text(sp_effective),
            savings_plan_instance_type_family=instance_family,
            savings_plan_region=REGION_LOCATION[region],
            savings_plan_offering_type="ComputeSavingsPlans",
            savings_plan_payment_option="No Upfront",
            savings_plan_purchase_term="1yr",
        )
        self._costs(row, public, public)
        negation = {
            key: value
            for key, value in row.items()
            if not key.startswith("savings_plan_") or key == "savings_plan_savings_plan_a_r_n"
        }
        negation.update(
            line_item_line_item_type="SavingsPlanNegation",
            line_item_usage_amount="0",
            line_item_line_item_description="SavingsPlanCoveredUsage by "
            + self.savings_plan_arn.rsplit("/", 1)[1],
            pricing_public_on_demand_cost="0",
        )
        self._costs(negation, -public)
        negation["pricing_public_on_demand_cost"] = "0"
        return [row, negation]

    def _bedrock_rows(self, deployment: DeploymentSpec, day: dt.date, base: dict) -> list[dict]:
        hours = tokens_by_hour(company=self.company, deployment=deployment, day=day)
        input_tokens = sum(inp for inp, _ in hours.values())
        output_tokens = sum(out for _, out in hours.values())
        rows = []
        prefix = SERVICE_PREFIX[deployment.region]
        for direction, tokens, price in (
            ("input", input_tokens, deployment.input_price_per_1k),
            ("output", output_tokens, deployment.output_price_per_1k),
        ):
            # Bedrock bills per 1,000 tokens; usage amount is in thousands of tokens.
            quantity = Decimal(tokens) / 1000
            cost = quantity * price
            usage_type = f"{prefix}MistralLarge2407-{direction}-tokens"
            row = dict(base)
            row.update(
                line_item_line_item_type="Usage",
                line_item_product_code="AmazonBedrock",
                product_servicecode="AmazonBedrock",
                line_item_usage_type=usage_type,
                product_usagetype=usage_type,
                line_item_operation="InvokeModelInference",
                product_operation="InvokeModelInference",
                line_item_resource_id=deployment.resource_id,
                line_item_usage_account_id=AWS_ML_ACCOUNT,
                line_item_usage_account_name="acme-ml-prod",
                line_item_usage_amount=decimal_text(quantity),
                line_item_unblended_rate=decimal_text(price),
                line_item_blended_rate=decimal_text(price),
                line_item_net_unblended_rate=decimal_text(price),
                line_item_line_item_description=f"${price} per 1K {direction} tokens for "
                "Mistral Large 2 (24.07)",
                pricing_public_on_demand_rate=decimal_text(price),
                pricing_term="OnDemand",
                pricing_unit="1K tokens",
                product_product_family="Amazon Bedrock",
                product_region_code=deployment.region,
                product_location=REGION_LOCATION[deployment.region],
                product_location_type="AWS Region",
                product_sku=stable_hex("sku", usage_type, length=16).upper(),
                product=json.dumps(
                    {"product_name": "Amazon Bedrock", "model": "Mistral Large 2 (24.07)"},
                    separators=(",", ":"),
                ),
                resource_tags=self._tags(deployment),
            )
            self._costs(row, cost, cost)
            rows.append(row)
        return rows

    def _savings_plan_fee_row(self, day: dt.date, base: dict, used: Decimal) -> dict:
        commitment = SP_COMMITMENT_PER_HOUR * 24
        row = dict(base)
        row.update(
            line_item_line_item_type="SavingsPlanRecurringFee",
            line_item_product_code="ComputeSavingsPlans",
            product_servicecode="ComputeSavingsPlans",
            line_item_usage_type="ComputeSP:1yrNoUpfront",
            product_usagetype="ComputeSP:1yrNoUpfront",
            line_item_operation="",
            line_item_resource_id=self.savings_plan_arn,
            line_item_usage_account_id=AWS_PAYER,
            line_item_usage_account_name="acme-payer",
            line_item_usage_amount="24",
            line_item_unblended_rate=decimal_text(SP_COMMITMENT_PER_HOUR),
            line_item_line_item_description="1 year No Upfront Compute Savings Plan",
            product_product_family="Savings Plans",
            savings_plan_savings_plan_a_r_n=self.savings_plan_arn,
            savings_plan_recurring_commitment_for_billing_period=decimal_text(_money(commitment)),
            savings_plan_amortized_upfront_commitment_for_billing_period="0",
            savings_plan_total_commitment_to_date=decimal_text(_money(commitment)),
            savings_plan_used_commitment=decimal_text(_money(used)),
            savings_plan_offering_type="ComputeSavingsPlans",
            savings_plan_payment_option="No Upfront",
            savings_plan_purchase_term="1yr",
            savings_plan_start_time="2026-01-15T00:00:00.000Z",
            savings_plan_end_time="2027-01-14T23:59:59.000Z",
        )
        self._costs(row, commitment)
        return row

    def _platform_rows(self, day: dt.date, base: dict) -> list[dict]:
        """Untagged shared cost: S3, NAT gateway, data transfer, CloudWatch Logs, EKS control planes."""
        rng = random.Random(f"{self.company.seed}:aws-platform:{day.isoformat()}")
        grow = Decimal(1) + Decimal((day - dt.date(2026, 1, 1)).days) * Decimal("0.001")
        items = (
            # product, usage type, operation, resource, quantity, rate, family, unit
            (
                "AmazonS3",
                "TimedStorage-ByteHrs",
                "StandardStorage",
                "arn:aws:s3:::acme-ml-artifacts",
                Decimal(612_000) * grow / 30,
                Decimal("0.023"),
                "Storage",
                "GB-Mo",
                "us-east-1",
            ),
            (
                "AmazonS3",
                "Requests-Tier2",
                "GetObject",
                "arn:aws:s3:::acme-ml-artifacts",
                Decimal(41_000_000),
                Decimal("0.0000004"),
                "API Request",
                "Requests",
                "us-east-1",
            ),
            (
                "AmazonEC2",
                "NatGateway-Bytes",
                "NatGateway",
                f"arn:aws:ec2:us-east-1:{AWS_PLATFORM_ACCOUNT}:natgateway/nat-0"
                + stable_hex(self.company.seed, "nat", length=16),
                Decimal(3_900) * grow,
                Decimal("0.045"),
                "NAT Gateway",
                "GB",
                "us-east-1",
            ),
            (
                "AmazonEC2",
                "NatGateway-Hours",
                "NatGateway",
                f"arn:aws:ec2:us-east-1:{AWS_PLATFORM_ACCOUNT}:natgateway/nat-0"
                + stable_hex(self.company.seed, "nat", length=16),
                Decimal(24),
                Decimal("0.045"),
                "NAT Gateway",
                "Hrs",
                "us-east-1",
            ),
            (
                "AWSDataTransfer",
                "USE1-USW2-AWS-Out-Bytes",
                "",
                "",
                Decimal(2_600) * grow,
                Decimal("0.02"),
                "Data Transfer",
                "GB",
                "us-east-1",
            ),
            (
                "AWSDataTransfer",
                "DataTransfer-Out-Bytes",
                "",
                "",
                Decimal(1_800) * grow,
                Decimal("0.05"),
                "Data Transfer",
                "GB",
                "us-east-1",
            ),
            (
                "AmazonCloudWatch",
                "USE1-DataProcessing-Bytes",
                "PutLogEvents",
                f"arn:aws:logs:us-east-1:{AWS_PLATFORM_ACCOUNT}:log-group:/aws/eks/ml-serving-use1/cluster",
                Decimal(950) * grow,
                Decimal("0.50"),
                "Data Payload",
                "GB",
                "us-east-1",
            ),
        )
        rows = []
        for product, usage_type, operation, resource, quantity, rate, family, unit, region in items:
            quantity = (quantity * Decimal(str(round(rng.uniform(0.9, 1.1), 4)))).quantize(
                Decimal("0.00000001")
            )
            row = dict(base)
            row.update(
                line_item_line_item_type="Usage",
                line_item_product_code=product,
                product_servicecode=product,
                line_item_usage_type=usage_type,
                product_usagetype=usage_type,
                line_item_operation=operation,
                line_item_resource_id=resource,
                line_item_usage_account_id=AWS_PLATFORM_ACCOUNT,
                line_item_usage_account_name="acme-platform",
                line_item_usage_amount=decimal_text(quantity),
                line_item_unblended_rate=decimal_text(rate),
                line_item_blended_rate=decimal_text(rate),
                line_item_net_unblended_rate=decimal_text(rate),
                line_item_line_item_description=f"${rate} per {unit} ({usage_type})",
                pricing_public_on_demand_rate=decimal_text(rate),
                pricing_term="OnDemand",
                pricing_unit=unit,
                product_product_family=family,
                product_region_code=region,
                product_location=REGION_LOCATION[region],
                product_location_type="AWS Region",
                product_sku=stable_hex("sku", product, usage_type, length=16).upper(),
            )
            cost = quantity * rate
            self._costs(row, cost, cost)
            rows.append(row)
        # The one platform resource someone tagged: the Terraform state bucket. It is the evidence
        # that the platform account is the platform team's.
        state = dict(rows[0])
        quantity = Decimal(52) * Decimal(str(round(rng.uniform(0.98, 1.02), 4)))
        state.update(
            line_item_resource_id="arn:aws:s3:::acme-platform-tfstate",
            line_item_usage_amount=decimal_text(quantity),
            resource_tags=json.dumps({"user:team": "platform"}, separators=(",", ":")),
        )
        self._costs(state, quantity * Decimal("0.023"), quantity * Decimal("0.023"))
        rows.append(state)
        for region, cluster in (
            ("us-east-1", "ml-serving-use1"),
            ("us-west-2", "ml-serving-usw2"),
            ("eu-west-1", "ml-serving-euw1"),
        ):
            row = dict(base)
            usage_type = f"{SERVICE_PREFIX[region]}AmazonEKS-Hours:perCluster"
            row.update(
                line_item_line_item_type="Usage",
                line_item_product_code="AmazonEKS",
                product_servicecode="AmazonEKS",
                line_item_usage_type=usage_type,
                product_usagetype=usage_type,
                line_item_operation="CreateOperation",
                line_item_resource_id=f"arn:aws:eks:{region}:{AWS_ML_ACCOUNT}:cluster/{cluster}",
                line_item_usage_account_id=AWS_ML_ACCOUNT,
                line_item_usage_account_name="acme-ml-prod",
                line_item_usage_amount="24",
                line_item_unblended_rate="0.1",
                line_item_blended_rate="0.1",
                line_item_net_unblended_rate="0.1",
                line_item_line_item_description="Amazon EKS cluster usage",
                pricing_public_on_demand_rate="0.1",
                pricing_term="OnDemand",
                pricing_unit="Hours",
                product_product_family="Compute",
                product_region_code=region,
                product_location=REGION_LOCATION[region],
                product_location_type="AWS Region",
                product_sku=stable_hex("sku", "eks", region, length=16).upper(),
            )
            self._costs(row, Decimal("2.4"), Decimal("2.4"))
            rows.append(row)
        return rows

    def _month_end_rows(self, month: dt.date, base: dict, gross_by_product: dict[str, Decimal]) -> list[dict]:
        """Credits (Generative AI credit program on SageMaker and Bedrock) and US sales tax."""
        rows = []
        for product, share in (("AmazonSageMaker", Decimal("0.10")), ("AmazonBedrock", Decimal("0.25"))):
            amount = _money(-gross_by_product.get(product, Decimal(0)) * share)
            if not amount:
                continue
            row = dict(base)
            row.update(
                line_item_line_item_type="Credit",
                line_item_product_code=product,
                product_servicecode=product,
                line_item_usage_account_id=AWS_ML_ACCOUNT,
                line_item_usage_account_name="acme-ml-prod",
                line_item_line_item_description="AWS Credits - Generative AI Accelerator",
                line_item_usage_amount="0",
            )
            self._costs(row, amount)
            rows.append(row)
        for product, gross in sorted(gross_by_product.items()):
            tax = _money(gross * Decimal("0.06"))
            if not tax:
                continue
            row = dict(base)
            row.update(
                line_item_line_item_type="Tax",
                line_item_product_code=product,
                product_servicecode=product,
                line_item_usage_account_id=AWS_ML_ACCOUNT if product != "AmazonS3" else AWS_PLATFORM_ACCOUNT,
                line_item_usage_account_name="acme-ml-prod" if product != "AmazonS3" else "acme-platform",
                line_item_line_item_description="Tax for product code " + product,
                line_item_tax_type="Sales tax",
                line_item_usage_amount="1",
            )
            self._costs(row, tax)
            rows.append(row)
        return rows

    # --- writing -------------------------------------------------------------------------------

    def write(self) -> None:
        for month in self.demo_range.months():
            executions = self.executions(month)
            for index, execution in enumerate(executions):
                self._write_execution(month, execution, current=index == len(executions) - 1)

    def _write_execution(self, month: dt.date, execution: Execution, *, current: bool) -> None:
        period = f"{month:%Y-%m}"
        data_dir = self.export_root / "data" / f"BILLING_PERIOD={period}" / execution.folder
        data_dir.mkdir(parents=True, exist_ok=True)
        entry = self.totals.entry(
            provider=AWS,
            account=self.account.slug,
            billing_period=period,
            dataset="cur2",
            version="current" if current else "superseded",
            extra={"execution_id": execution.execution_id},
        )
        days = self.demo_range.days_of(month)
        chunk_days = min(10, max(1, math.ceil(len(days) / 2)))
        sink = _ChunkedCsvGz(data_dir, self.export_name)
        gross_by_product: dict[str, Decimal] = {}
        line_number = 0

        def emit(row: dict[str, str]) -> None:
            nonlocal line_number
            line_number += 1
            row["identity_line_item_id"] = stable_hex(
                self.company.seed, period, execution.execution_id, line_number, length=52
            )
            if row.get("product_sku") and not row.get("pricing_rate_code"):
                # CUR names the price of every priced line: SKU.OfferTermCode.RateCode and a RateId.
                term = stable_hex("offer-term", row.get("pricing_term", ""), length=10).upper()
                rate_code = stable_hex("rate", row["product_sku"], term, length=10).upper()
                row["pricing_rate_code"] = f"{row['product_sku']}.{term}.{rate_code}"
                row["pricing_rate_id"] = str(
                    int(stable_hex("rate-id", row["pricing_rate_code"], length=8), 16)
                )
            unblended = Decimal(row["line_item_unblended_cost"])
            entry.add(native=unblended, billed=unblended, effective=aws_effective_cost(row))
            # Tax and credits are computed on what each product really costs: covered usage net of
            # its negation, and the Savings Plan fee under its own product code.
            if row["line_item_line_item_type"] not in ("Tax", "Credit"):
                product = row["line_item_product_code"]
                gross_by_product[product] = gross_by_product.get(product, Decimal(0)) + unblended
            sink.write(row)

        for index, day in enumerate(days):
            if index % chunk_days == 0:
                sink.new_chunk()
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            base = self._base(month=month, execution=execution, start=start, end=start + dt.timedelta(days=1))
            used = Decimal(0)
            for deployment in self.deployments:
                if deployment.kind == MANAGED_PER_TOKEN:
                    rows = self._bedrock_rows(deployment, day, base)
                else:
                    rows = self._instance_rows(deployment, day, base, execution)
                for row in rows:
                    if row["line_item_line_item_type"] == "SavingsPlanCoveredUsage":
                        used += Decimal(row["savings_plan_savings_plan_effective_cost"])
                    emit(row)
            for workload in self.company.untagged_of(AWS):  # SageMaker endpoints nobody tagged
                for row in self._instance_rows(workload, day, base, execution):
                    emit(row)
            emit(self._savings_plan_fee_row(day, base, used))
            for row in self._platform_rows(day, base):
                emit(row)
        if self.demo_range.is_closed(month) and execution.complete:
            period_base = self._base(
                month=month,
                execution=execution,
                start=dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC),
                end=dt.datetime.combine(month_after(month), dt.time(0), tzinfo=dt.UTC),
            )
            for row in self._month_end_rows(month, period_base, gross_by_product):
                emit(row)
        sink.close()
        entry.files = [path.relative_to(self.out_dir).as_posix() for path in sink.paths]
        self._write_manifest(month, execution, sink.paths, current=current)

    def _write_manifest(
        self, month: dt.date, execution: Execution, paths: list[Path], *, current: bool
    ) -> None:
        period = f"{month:%Y-%m}"
        manifest = {
            "executionId": execution.execution_id,
            "exportArn": self.export_arn,
            "columns": [{"name": name, "type": kind} for name, kind in CUR2_COLUMNS],
            "dataFiles": [
                f"s3://{self.bucket}/" + path.relative_to(self.out_dir / "aws" / self.bucket).as_posix()
                for path in paths
            ],
            "additionalOutputFiles": [],
            "billingPeriod": {"start": _ts(month), "end": _ts(month_after(month))},
            "exportTime": _ts(execution.started_at),
        }
        text = json.dumps(manifest, indent=2) + "\n"
        if current:
            metadata_dir = self.export_root / "metadata" / f"BILLING_PERIOD={period}"
        else:
            metadata_dir = (
                self.out_dir / "_versions" / "aws" / f"BILLING_PERIOD={period}" / execution.execution_id
            )
        metadata_dir.mkdir(parents=True, exist_ok=True)
        (metadata_dir / f"{self.export_name}-Manifest.json").write_text(text, encoding="utf-8")


def cur2_write(
    *, company: Company, demo_range: DemoRange, out_dir: Path, totals: ExpectedTotals
) -> list[Entry]:
    writer = Cur2Writer(company=company, demo_range=demo_range, out_dir=out_dir, totals=totals)
    writer.write()
    return [entry for entry in totals.entries if entry.provider == AWS]
