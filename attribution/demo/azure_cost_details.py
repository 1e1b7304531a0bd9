"""Azure cost details for a Microsoft Customer Agreement (MCA), actual and amortized datasets, laid
out as Cost Management exports (with file partitioning) write them to a storage container:

    azure/<container>/<directory>/<export-name>/<YYYYMMDD-YYYYMMDD>/<run-id>/part_1_0001.csv
    azure/<container>/<directory>/<export-name>/<YYYYMMDD-YYYYMMDD>/<run-id>/manifest.json

Verified: the MCA camelCase column names (shared/data/billing/azure/koku/camel_azure_version_2.csv,
opencost's EnterpriseCamel header set, Microsoft's "cost and usage details, MCA" schema):
MM/DD/YYYY dates; `tags` as JSON; the actual dataset carries a reservation's payment as a row with
chargeType Purchase and shows reservation-covered usage at cost 0, while the amortized dataset has
no Purchase row, prices covered usage at the reservation rate and adds chargeType
UnusedReservation rows for unused hours (finops-toolkit EA Actual/Amortized samples); the manifest
fields manifestVersion, byteCount, blobCount, dataRowCount, exportConfig{exportName, resourceId,
dataVersion, apiVersion, type, timeFrame, granularity}, deliveryConfig{partitionData,
dataOverwriteBehavior, fileFormat, compressionMode, containerUri, rootFolderPath},
runInfo{executionType, submittedTime, runId, startDate, endDate}, blobs[{blobName, byteCount,
dataRowCount}] (published samples of exports with partitionData).
Assumed: file name `part_1_0001.csv` (one part per run, no BOM, comma-separated); the
`<YYYYMMDD-YYYYMMDD>` folder spans the whole billing month even for month-to-date runs; Azure
OpenAI token meters in units of "1K"; dataVersion "2023-12-01-preview". Real exports sometimes
write tags without the outer braces; the demo keeps valid JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path

from attribution.demo.expected import Entry, ExpectedTotals, decimal_text
from attribution.demo.specs import (
    AZURE,
    AZURE_BILLING_ACCOUNT,
    AZURE_SUBSCRIPTION_ML,
    AZURE_SUBSCRIPTION_PLATFORM,
    MANAGED_PER_TOKEN,
    Company,
    DemoRange,
    DeploymentSpec,
    month_end,
    stable_hex,
    stable_uuid,
)
from attribution.demo.usage import tokens_by_hour

MCA_COLUMNS: tuple[str, ...] = (
    "invoiceId", "previousInvoiceId", "billingAccountId", "billingAccountName", "billingProfileId",
    "billingProfileName", "invoiceSectionId", "invoiceSectionName", "partnerName", "resellerName",
    "resellerMpnId", "costCenter", "billingPeriodEndDate", "billingPeriodStartDate",
    "servicePeriodEndDate", "servicePeriodStartDate", "date", "serviceFamily", "productOrderId",
    "productOrderName", "consumedService", "meterId", "meterName", "meterCategory", "meterSubCategory",
    "meterRegion", "ProductId", "ProductName", "subscriptionId", "subscriptionName", "publisherType",
    "publisherId", "publisherName", "resourceGroupName", "ResourceId", "resourceLocation", "location",
    "effectivePrice", "quantity", "unitOfMeasure", "chargeType", "billingCurrency", "pricingCurrency",
    "costInBillingCurrency", "costInPricingCurrency", "costInUsd", "paygCostInBillingCurrency",
    "paygCostInUsd", "exchangeRatePricingToBilling", "exchangeRateDate", "isAzureCreditEligible",
    "serviceInfo1", "serviceInfo2", "additionalInfo", "tags", "PayGPrice", "frequency", "term",
    "reservationId", "reservationName", "pricingModel", "unitPrice", "costAllocationRuleName",
    "benefitId", "benefitName", "provider",
)  # fmt: skip

TEN = Decimal("0.0000000001")
METER_REGION = {"eastus": "US East", "westeurope": "EU West"}
RESERVATION_DISCOUNT = Decimal("0.63")
BILLING_PROFILE = "K7QX-3RTD-BG7-PGB"
INVOICE_SECTION = "P4LM-8WQZ-PJA-PGB"
VM_SERIES = {
    "Standard_ND96isr_H100_v5": ("NDsrH100v5 Series", "ND96isr H100 v5", 96),
    "Standard_NC24ads_A100_v4": ("NCadsA100v4 Series", "NC24ads A100 v4", 24),
    "Standard_NC4as_T4_v3": ("NCasT4 v3 Series", "NC4as T4 v3", 4),
}


def _date(day: dt.date) -> str:
    return day.strftime("%m/%d/%Y")


def _money(value: Decimal) -> Decimal:
    return value.quantize(TEN)


class AzureWriter:
    def __init__(
        self, *, company: Company, demo_range: DemoRange, out_dir: Path, totals: ExpectedTotals
    ) -> None:
        self.company = company
        self.demo_range = demo_range
        self.out_dir = out_dir
        self.totals = totals
        self.account = company.account(AZURE)
        settings = self.account.source_settings
        self.container = settings["container"]
        self.directory = settings["directory"]
        self.exports = {
            "actual": settings["actual_export_name"],
            "amortized": settings["amortized_export_name"],
        }
        self.deployments = company.deployments_of(AZURE)
        seed = company.seed
        self.reservation_order = stable_uuid(seed, "reservation-order")
        self.reservation_id = stable_uuid(seed, "reservation")
        self.reservation_path = (
            f"/providers/Microsoft.Capacity/reservationOrders/{self.reservation_order}"
            f"/reservations/{self.reservation_id}"
        )

    # --- rows -----------------------------------------------------------------------------------

    def _base(self, month: dt.date, day: dt.date) -> dict[str, str]:
        # Open months have no invoice yet.
        invoice_number = int(stable_hex(self.company.seed, "az-invoice", month, length=10), 16) % 10**9
        invoice_id = f"G{invoice_number:09d}" if self.demo_range.is_closed(month) else ""
        return {
            "invoiceId": invoice_id,
            "billingAccountId": AZURE_BILLING_ACCOUNT,
            "billingAccountName": "Acme Corp",
            "billingProfileId": BILLING_PROFILE,
            "billingProfileName": "Acme Production",
            "invoiceSectionId": INVOICE_SECTION,
            "invoiceSectionName": "ML Platform",
            "costCenter": "ML",
            "billingPeriodStartDate": _date(month),
            "billingPeriodEndDate": _date(month_end(month)),
            "servicePeriodStartDate": _date(month),
            "servicePeriodEndDate": _date(month_end(month)),
            "date": _date(day),
            "subscriptionId": AZURE_SUBSCRIPTION_ML,
            "subscriptionName": "acme-ml-prod",
            "publisherType": "Microsoft",
            "publisherName": "Microsoft",
            "billingCurrency": "USD",
            "pricingCurrency": "USD",
            "exchangeRatePricingToBilling": "1",
            "exchangeRateDate": _date(month),
            "isAzureCreditEligible": "True",
            "frequency": "UsageBased",
            "pricingModel": "OnDemand",
            "chargeType": "Usage",
            "tags": "{}",
            "provider": "Azure",
        }

    @staticmethod
    def _costs(
        row: dict, *, cost: Decimal, payg: Decimal, effective_price: Decimal, unit_price: Decimal
    ) -> dict:
        text = decimal_text(_money(cost))
        row.update(
            costInBillingCurrency=text,
            costInPricingCurrency=text,
            costInUsd=text,
            paygCostInBillingCurrency=decimal_text(_money(payg)),
            paygCostInUsd=decimal_text(_money(payg)),
            effectivePrice=decimal_text(effective_price),
            unitPrice=decimal_text(unit_price),
            PayGPrice=decimal_text(unit_price),
        )
        return row

    def _resource(self, row: dict, deployment: DeploymentSpec) -> None:
        resource_group = deployment.resource_id.split("/resourceGroups/")[1].split("/")[0]
        row.update(
            resourceGroupName=resource_group,
            ResourceId=deployment.resource_id,
            resourceLocation=deployment.region,
            location=METER_REGION[deployment.region],
            meterRegion=METER_REGION[deployment.region],
            tags=json.dumps(deployment.tags(), separators=(",", ":")),
        )

    def _aoai_rows(
        self, base: dict, deployment: DeploymentSpec, day: dt.date
    ) -> list[tuple[dict | None, dict | None]]:
        hours = tokens_by_hour(company=self.company, deployment=deployment, day=day)
        pairs = []
        version = "text-embedding-3-large" if "embedding" in deployment.model else f"{deployment.model}-0806"
        for direction, tokens, price in (
            ("Inp", sum(i for i, _ in hours.values()), deployment.input_price_per_1k),
            ("Outp", sum(o for _, o in hours.values()), deployment.output_price_per_1k),
        ):
            if not tokens:
                continue
            meter = f"{version} Tokens" if "embedding" in version else f"{version}-{direction}-glbl Tokens"
            quantity = Decimal(tokens) / 1000
            cost = quantity * price
            row = dict(base)
            self._resource(row, deployment)
            row.update(
                serviceFamily="AI + Machine Learning",
                consumedService="Microsoft.CognitiveServices",
                meterId=stable_uuid("meter", meter),
                meterName=meter,
                meterCategory="Cognitive Services",
                meterSubCategory="Azure OpenAI",
                ProductId=stable_hex("product", meter, length=12).upper(),
                ProductName=f"Azure OpenAI - {meter}",
                quantity=decimal_text(quantity),
                unitOfMeasure="1K",
                serviceInfo1=deployment.resource_name,
                additionalInfo=json.dumps(
                    {"DeploymentName": deployment.model, "Sku": "GlobalStandard"}, separators=(",", ":")
                ),
            )
            self._costs(row, cost=cost, payg=cost, effective_price=price, unit_price=price)
            pairs.append((row, dict(row)))
        return pairs

    def _vm_rows(
        self, base: dict, deployment: DeploymentSpec, day: dt.date
    ) -> list[tuple[dict | None, dict | None]]:
        sub_category, meter_base, vcpus = VM_SERIES[deployment.instance_type]
        up_hours = sum(1 for hour in range(24) if not deployment.is_down(day, hour))
        quantity = Decimal(up_hours * deployment.instance_count)
        payg_rate = deployment.on_demand_rate
        payg = quantity * payg_rate
        spot = deployment.pricing_mode == "spot"
        meter = f"{meter_base} Spot" if spot else meter_base
        row = dict(base)
        self._resource(row, deployment)
        consumed = "Microsoft.MachineLearningServices" if deployment.service == "aml" else "Microsoft.Compute"
        row.update(
            serviceFamily="Compute",
            consumedService=consumed,
            meterId=stable_uuid("meter", meter, deployment.region),
            meterName=meter,
            meterCategory="Virtual Machines",
            meterSubCategory=sub_category,
            ProductId=stable_hex("product", meter, deployment.region, length=12).upper(),
            ProductName=f"Virtual Machines {sub_category} - {meter} - {METER_REGION[deployment.region]}",
            quantity=decimal_text(quantity),
            unitOfMeasure="1 Hour",
            additionalInfo=json.dumps(
                {
                    "ServiceType": deployment.instance_type,
                    "VMName": deployment.resource_name,
                    "UsageType": "ComputeHR",
                    "VCPUs": vcpus,
                    "ImageType": "Canonical",
                },
                separators=(",", ":"),
            ),
        )
        if spot:
            rng = random.Random(f"{self.company.seed}:az-spot:{deployment.slug}:{day.isoformat()}")
            spot_rate = (payg_rate * Decimal(str(round(rng.uniform(0.18, 0.24), 4)))).quantize(
                Decimal("0.0001")
            )
            row["pricingModel"] = "Spot"
            self._costs(
                row, cost=quantity * spot_rate, payg=payg, effective_price=spot_rate, unit_price=payg_rate
            )
            return [(row, dict(row))]
        if deployment.pricing_mode != "reserved":
            self._costs(row, cost=payg, payg=payg, effective_price=payg_rate, unit_price=payg_rate)
            return [(row, dict(row))]
        # Reservation: 0 in actual (the payment is the Purchase row), amortized rate in amortized.
        reservation_rate = (payg_rate * RESERVATION_DISCOUNT).quantize(Decimal("0.0001"))
        row.update(
            pricingModel="Reservation",
            reservationId=self.reservation_id,
            reservationName="ri-ndh100v5-eastus-1y",
            benefitId=self.reservation_path,
            benefitName="ri-ndh100v5-eastus-1y",
            term="12",
            productOrderId=self.reservation_order,
            productOrderName="Reserved VM Instance, Standard_ND96isr_H100_v5, US East, 1 Year",
        )
        actual = self._costs(
            dict(row), cost=Decimal(0), payg=payg, effective_price=Decimal(0), unit_price=payg_rate
        )
        amortized = self._costs(
            dict(row),
            cost=quantity * reservation_rate,
            payg=payg,
            effective_price=reservation_rate,
            unit_price=payg_rate,
        )
        pairs: list[tuple[dict | None, dict | None]] = [(actual, amortized)]
        unused_hours = Decimal(24 * deployment.instance_count) - quantity
        if unused_hours:
            unused = dict(base)
            unused.update(
                serviceFamily="Compute",
                consumedService="Microsoft.Capacity",
                meterId=row["meterId"],
                meterName=meter_base,
                meterCategory="Virtual Machines",
                meterSubCategory=sub_category,
                meterRegion=METER_REGION[deployment.region],
                ResourceId=self.reservation_path,
                resourceLocation=deployment.region,
                location=METER_REGION[deployment.region],
                quantity=decimal_text(unused_hours),
                unitOfMeasure="1 Hour",
                chargeType="UnusedReservation",
                pricingModel="Reservation",
                reservationId=self.reservation_id,
                reservationName="ri-ndh100v5-eastus-1y",
                benefitId=self.reservation_path,
                benefitName="ri-ndh100v5-eastus-1y",
                term="12",
                productOrderId=self.reservation_order,
                productOrderName="Reserved VM Instance, Standard_ND96isr_H100_v5, US East, 1 Year",
            )
            self._costs(
                unused,
                cost=unused_hours * reservation_rate,
                payg=Decimal(0),
                effective_price=reservation_rate,
                unit_price=payg_rate,
            )
            pairs.append((None, unused))
        return pairs

    def _purchase_row(self, base: dict) -> dict:
        nd = next(d for d in self.deployments if d.pricing_mode == "reserved")
        reservation_rate = (nd.on_demand_rate * RESERVATION_DISCOUNT).quantize(Decimal("0.0001"))
        monthly = reservation_rate * 8760 / 12
        row = dict(base)
        row.update(
            serviceFamily="Compute",
            consumedService="Microsoft.Capacity",
            meterName="ND96isr H100 v5",
            meterCategory="Virtual Machines",
            meterSubCategory="NDsrH100v5 Series",
            meterRegion="US East",
            ResourceId=f"/providers/Microsoft.Capacity/reservationOrders/{self.reservation_order}",
            resourceLocation="eastus",
            location="US East",
            quantity="1",
            unitOfMeasure="1 Hour",
            chargeType="Purchase",
            frequency="Recurring",
            pricingModel="Reservation",
            reservationId=self.reservation_id,
            reservationName="ri-ndh100v5-eastus-1y",
            benefitId=self.reservation_path,
            benefitName="ri-ndh100v5-eastus-1y",
            term="12",
            productOrderId=self.reservation_order,
            productOrderName="Reserved VM Instance, Standard_ND96isr_H100_v5, US East, 1 Year",
            isAzureCreditEligible="False",
        )
        return self._costs(row, cost=monthly, payg=Decimal(0), effective_price=monthly, unit_price=monthly)

    def _platform_rows(self, base: dict, day: dt.date) -> list[tuple[dict | None, dict | None]]:
        rng = random.Random(f"{self.company.seed}:az-platform:{day.isoformat()}")
        noise = Decimal(str(round(rng.uniform(0.9, 1.1), 4)))
        items = (
            (
                "Storage",
                "Microsoft.Storage",
                "Hot LRS Data Stored",
                "Storage",
                "Tiered Block Blob",
                (Decimal(210_000) * noise / 30).quantize(Decimal("0.000001")),
                "1 GB/Month",
                Decimal("0.0184"),
                "rg-platform-eastus",
                "Microsoft.Storage/storageAccounts/acmemlartifacts",
                "eastus",
            ),
            (
                "Networking",
                "Microsoft.Network",
                "Standard Data Transfer Out",
                "Bandwidth",
                "Rtn Preference: MGN",
                (Decimal(2_400) * noise).quantize(Decimal("0.000001")),
                "1 GB",
                Decimal("0.087"),
                "rg-platform-eastus",
                "Microsoft.Network/natGateways/ng-platform-eus",
                "eastus",
            ),
            (
                "Management and Governance",
                "Microsoft.OperationalInsights",
                "Analytics Logs Data Ingestion",
                "Log Analytics",
                "Analytics Logs",
                (Decimal(310) * noise).quantize(Decimal("0.000001")),
                "1 GB",
                Decimal("2.30"),
                "rg-platform-eastus",
                "Microsoft.OperationalInsights/workspaces/law-platform-eus",
                "eastus",
            ),
        )
        pairs = []
        for (
            family,
            consumed,
            meter,
            category,
            sub_category,
            quantity,
            unit,
            price,
            group,
            path,
            region,
        ) in items:
            row = dict(base)
            row.update(
                subscriptionId=AZURE_SUBSCRIPTION_PLATFORM,
                subscriptionName="acme-platform",
                serviceFamily=family,
                consumedService=consumed,
                meterId=stable_uuid("meter", meter),
                meterName=meter,
                meterCategory=category,
                meterSubCategory=sub_category,
                meterRegion=METER_REGION[region],
                ProductName=f"{category} - {meter}",
                resourceGroupName=group,
                ResourceId=f"/subscriptions/{AZURE_SUBSCRIPTION_PLATFORM}/resourceGroups/{group}/providers/{path}",
                resourceLocation=region,
                location=METER_REGION[region],
                quantity=decimal_text(quantity),
                unitOfMeasure=unit,
            )
            cost = quantity * price
            self._costs(row, cost=cost, payg=cost, effective_price=price, unit_price=price)
            pairs.append((row, dict(row)))
        # The one platform resource someone tagged: the Terraform state storage account, the
        # evidence that the platform subscription is the platform team's.
        state = dict(pairs[0][0])
        quantity = (Decimal(60) * noise).quantize(Decimal("0.000001"))
        state.update(
            ResourceId=f"/subscriptions/{AZURE_SUBSCRIPTION_PLATFORM}/resourceGroups/rg-platform-eastus/providers/"
            "Microsoft.Storage/storageAccounts/acmeplatformtfstate",
            quantity=decimal_text(quantity),
            tags=json.dumps({"team": "platform"}, separators=(",", ":")),
        )
        price = Decimal("0.0184")
        self._costs(
            state, cost=quantity * price, payg=quantity * price, effective_price=price, unit_price=price
        )
        pairs.append((state, dict(state)))
        for region, cluster, group in (
            ("eastus", "aks-ml-eus", "rg-ml-serving"),
            ("westeurope", "aks-ml-weu", "rg-ml-serving"),
        ):
            row = dict(base)
            row.update(
                serviceFamily="Compute",
                consumedService="Microsoft.ContainerService",
                meterId=stable_uuid("meter", "uptime-sla", region),
                meterName="Standard Uptime SLA",
                meterCategory="Azure Kubernetes Service",
                meterSubCategory="Standard",
                meterRegion=METER_REGION[region],
                ProductName="Azure Kubernetes Service - Standard Uptime SLA",
                resourceGroupName=group,
                ResourceId=f"/subscriptions/{AZURE_SUBSCRIPTION_ML}/resourceGroups/{group}/providers/"
                f"Microsoft.ContainerService/managedClusters/{cluster}",
                resourceLocation=region,
                location=METER_REGION[region],
                quantity="24",
                unitOfMeasure="1 Hour",
            )
            self._costs(
                row,
                cost=Decimal("2.4"),
                payg=Decimal("2.4"),
                effective_price=Decimal("0.1"),
                unit_price=Decimal("0.1"),
            )
            pairs.append((row, dict(row)))
        return pairs

    # --- writing --------------------------------------------------------------------------------

    def write(self) -> None:
        for month in self.demo_range.months():
            self._write_month(month)

    def _write_month(self, month: dt.date) -> None:
        seed = self.company.seed
        period = f"{month:%Y-%m}"
        folder = f"{month:%Y%m%d}-{month_end(month):%Y%m%d}"
        entries: dict[str, Entry] = {}
        handles = {}
        writers = {}
        paths = {}
        run_ids = {}
        for dataset, export_name in self.exports.items():
            run_id = stable_uuid(seed, "azure-run", dataset, period)
            run_ids[dataset] = run_id
            directory = (
                self.out_dir / "azure" / self.container / self.directory / export_name / folder / run_id
            )
            directory.mkdir(parents=True, exist_ok=True)
            paths[dataset] = directory / "part_1_0001.csv"
            handles[dataset] = paths[dataset].open("w", encoding="utf-8", newline="")
            writers[dataset] = csv.writer(handles[dataset], lineterminator="\r\n")
            writers[dataset].writerow(MCA_COLUMNS)
            entries[dataset] = self.totals.entry(
                provider=AZURE,
                account=self.account.slug,
                billing_period=period,
                dataset=dataset,
                extra={"run_id": run_id},
            )

        def emit(dataset: str, row: dict | None) -> None:
            if row is None:
                return
            cost = Decimal(row["costInBillingCurrency"])
            entries[dataset].add(native=cost, billed=Decimal(0), effective=Decimal(0))
            writers[dataset].writerow([row.get(column, "") for column in MCA_COLUMNS])

        days = self.demo_range.days_of(month)
        emit("actual", self._purchase_row(self._base(month, month)))
        for day in days:
            base = self._base(month, day)
            pairs: list[tuple[dict | None, dict | None]] = []
            for deployment in self.deployments:
                if deployment.kind == MANAGED_PER_TOKEN:
                    pairs.extend(self._aoai_rows(base, deployment, day))
                else:
                    pairs.extend(self._vm_rows(base, deployment, day))
            for workload in self.company.untagged_of(AZURE):  # an Azure OpenAI account nobody tagged
                pairs.extend(self._aoai_rows(base, workload, day))
            pairs.extend(self._platform_rows(base, day))
            for actual, amortized in pairs:
                emit("actual", actual)
                emit("amortized", amortized)
        for handle in handles.values():
            handle.close()
        billed = entries["actual"].native_cost_sum
        effective = entries["amortized"].native_cost_sum
        for dataset, entry in entries.items():
            entry.billed_cost = billed
            entry.effective_cost = effective
            entry.files = [paths[dataset].relative_to(self.out_dir).as_posix()]
            self._write_manifest(dataset, month, folder, run_ids[dataset], paths[dataset], entry.row_count)

    def _write_manifest(
        self, dataset: str, month: dt.date, folder: str, run_id: str, path: Path, rows: int
    ) -> None:
        export_name = self.exports[dataset]
        size = path.stat().st_size
        end = min(month_end(month), self.demo_range.end)
        submitted = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(2, 31, 7), tzinfo=dt.UTC)
        blob_name = f"{self.directory}/{export_name}/{folder}/{run_id}/{path.name}"
        manifest = {
            "manifestVersion": "2024-04-01",
            "byteCount": size,
            "blobCount": 1,
            "dataRowCount": rows,
            "exportConfig": {
                "exportName": export_name,
                "resourceId": f"/providers/Microsoft.Billing/billingAccounts/{AZURE_BILLING_ACCOUNT}"
                "/billingProfiles/"
                f"{BILLING_PROFILE}/providers/Microsoft.CostManagement/exports/{export_name}",
                "dataVersion": "2023-12-01-preview",
                "apiVersion": "2023-07-01-preview",
                "type": "ActualCost" if dataset == "actual" else "AmortizedCost",
                "timeFrame": "MonthToDate" if not self.demo_range.is_closed(month) else "TheLastBillingMonth",
                "granularity": "Daily",
            },
            "deliveryConfig": {
                "partitionData": True,
                "dataOverwriteBehavior": "OverwritePreviousReport",
                "fileFormat": "Csv",
                "compressionMode": "None",
                "containerUri": f"/subscriptions/{AZURE_SUBSCRIPTION_PLATFORM}/resourceGroups/rg-finops"
                "/providers/"
                f"Microsoft.Storage/storageAccounts/{self.account.source_settings['storage_account']}",
                "rootFolderPath": self.directory,
            },
            "runInfo": {
                "executionType": "Scheduled",
                "submittedTime": submitted.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
                "runId": run_id,
                "startDate": f"{month:%Y-%m-%d}T00:00:00",
                "endDate": f"{end:%Y-%m-%d}T00:00:00",
            },
            "blobs": [{"blobName": blob_name, "byteCount": size, "dataRowCount": rows}],
        }
        (path.parent / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def azure_write(
    *, company: Company, demo_range: DemoRange, out_dir: Path, totals: ExpectedTotals
) -> list[Entry]:
    AzureWriter(company=company, demo_range=demo_range, out_dir=out_dir, totals=totals).write()
    return [entry for entry in totals.entries if entry.provider == AZURE]
