"""python manage.py ingest_exports DIR [--async] [--timeout SECONDS]

Walks an exports tree laid out as the clouds deliver (see `demo_exports`) and ingests each
(account, billing period) once, through the same services as ingest_file:

  aws/**/data/BILLING_PERIOD=YYYY-MM/<execution-id>/*.csv[.gz]      -> account aws-prod
      (CUR 2.0 Data Exports; each execution folder is a full version of the period: the files
      named by metadata/BILLING_PERIOD=YYYY-MM/*-Manifest.json `dataFiles` win; without a manifest,
      the newest execution folder by modification time)
  gcp/<table>/invoice_month=YYYYMM/*.json                          -> account gcp-prod
  azure/<container>/<dir...>/<export>/<YYYYMMDD-YYYYMMDD>/<run-id>/*.csv -> account azure-prod
      (newest run folder per export and date range; exports whose name contains "amortized"
      are the amortized dataset, others actual; both datasets of one range form one run)

Tolerant by design: folders that do not match are skipped with a note, and a period whose files
fail is reported without stopping the others. The folder's period is stated to the pipeline, so a
file holding rows of another period is an error rather than a silent split.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import defaultdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attribution.ingest import services
from attribution.ingest.errors import IngestError, PeriodBusyError
from attribution.management.commands.ingest_file import run_summary
from attribution.models import IngestRun

_AWS_PERIOD = re.compile(r"^BILLING_PERIOD=(\d{4})-(\d{2})$")
_GCP_PERIOD = re.compile(r"^invoice_month=(\d{4})(\d{2})$")
_AZURE_RANGE = re.compile(r"^(\d{4})(\d{2})\d{2}-\d{8}$")


def _newest_dir(directories: list[Path]) -> Path | None:
    return max(directories, key=lambda d: d.stat().st_mtime, default=None)


def _aws_manifest_files(period_dir: Path) -> list[Path] | None:
    """The data files the period's current Data Exports manifest names, or None without one.

    <export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json lists `dataFiles` as s3:// URIs;
    the part after `/data/` locates each file under <export>/data/ here.
    """
    export_root = period_dir.parent.parent
    manifests = sorted((export_root / "metadata" / period_dir.name).glob("*Manifest.json"))
    if not manifests:
        return None
    try:
        data_files = json.loads(manifests[-1].read_text()).get("dataFiles") or []
    except (OSError, ValueError):
        return None
    paths = [export_root / "data" / uri.split("/data/", 1)[1] for uri in data_files if "/data/" in uri]
    return sorted(p for p in paths if p.is_file()) or None


def exports_plan(root: Path) -> list[dict]:
    """[{account, provider, period, paths, dataset_by_path}] found under root."""
    plans: list[dict] = []
    for period_dir in sorted((root / "aws").glob("**/BILLING_PERIOD=*")):
        match = _AWS_PERIOD.match(period_dir.name)
        if not match or not period_dir.is_dir() or "metadata" in period_dir.parts:
            continue
        paths = _aws_manifest_files(period_dir)
        if paths is None:
            newest = _newest_dir([d for d in period_dir.iterdir() if d.is_dir()]) or period_dir
            paths = sorted(p for p in newest.iterdir() if p.name.endswith((".csv", ".csv.gz")))
        if paths:
            period = dt.date(int(match[1]), int(match[2]), 1)
            plans.append(
                {"account": "aws-prod", "provider": "aws", "period": period, "groups": [(paths, "")]}
            )
    for period_dir in sorted((root / "gcp").glob("*/invoice_month=*")):
        match = _GCP_PERIOD.match(period_dir.name)
        paths = sorted(period_dir.glob("*.json")) if match else []
        if paths:
            period = dt.date(int(match[1]), int(match[2]), 1)
            plans.append(
                {"account": "gcp-prod", "provider": "gcp", "period": period, "groups": [(paths, "")]}
            )
    by_range: dict[dt.date, list] = defaultdict(list)
    for range_dir in sorted((root / "azure").glob("**/*-*")):
        match = _AZURE_RANGE.match(range_dir.name)
        if not match or not range_dir.is_dir():
            continue
        newest = _newest_dir([d for d in range_dir.iterdir() if d.is_dir()])
        paths = sorted(newest.glob("*.csv")) if newest else []
        if paths:
            dataset = "amortized" if "amortized" in range_dir.parent.name.lower() else "actual"
            by_range[dt.date(int(match[1]), int(match[2]), 1)].append((paths, dataset))
    for period, groups in sorted(by_range.items()):
        plans.append({"account": "azure-prod", "provider": "azure", "period": period, "groups": groups})
    return plans


class Command(BaseCommand):
    help = "Ingest every (account, billing period) found in an exports tree."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory")
        parser.add_argument("--async", dest="run_async", action="store_true", help="run on Celery workers")
        parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait with --async")

    def handle(self, *args, **options) -> None:
        root = Path(options["directory"])
        if not root.is_dir():
            raise CommandError(f"{root}: no such directory")
        plans = exports_plan(root)
        if not plans:
            self.stdout.write(f"No exports found under {root}.")
            return
        failures: list[str] = []
        runs: list[IngestRun] = []
        for plan in plans:
            try:
                account = services.cloud_account_get_or_create(
                    slug=plan["account"], provider=plan["provider"]
                )
                paths = [path for group_paths, _dataset in plan["groups"] for path in group_paths]
                datasets = {dataset for _paths, dataset in plan["groups"]}
                # Azure: one dataset for all files, or each file's dataset from its export's name.
                runs.extend(
                    services.ingest_runs_create(
                        account=account,
                        paths=paths,
                        dataset=datasets.pop() if len(datasets) == 1 else "",
                        billing_period=plan["period"],
                    )
                )
            except IngestError as error:
                failures.append(f"{plan['account']} {plan['period']:%Y-%m}: {error}")
        pending = [run for run in runs if run.state == "pending"]
        for run in runs:
            if run.state == "succeeded":
                self.stdout.write("unchanged: " + run_summary(run))
        if options["run_async"]:
            failures += self._run_async(pending, options["timeout"])
        else:
            queue = list(pending)
            while queue:
                run = queue.pop(0)
                try:
                    run = services.ingest_run_execute(
                        run_id=run.pk, executor=services.executor_describe("command")
                    )
                    self.stdout.write(run_summary(run))
                    queue.extend(services.ingest_run_followups(run=run))
                except (IngestError, PeriodBusyError) as error:
                    failures.append(str(error))
        if failures:
            raise CommandError("\n".join(failures))

    def _run_async(self, runs: list[IngestRun], timeout: float) -> list[str]:
        from attribution.ingest.tasks import ingest_run_execute_task

        for run in runs:
            ingest_run_execute_task.delay(run.pk)
        waiting = {run.pk for run in runs}
        deadline = time.monotonic() + timeout
        failures: list[str] = []
        while waiting and time.monotonic() < deadline:
            time.sleep(0.5)
            for run in IngestRun.objects.filter(pk__in=waiting).select_related("account"):
                if run.state in ("succeeded", "superseded"):
                    self.stdout.write(run_summary(run))
                    waiting.discard(run.pk)
                elif run.state == "failed":
                    failures.append(f"run #{run.pk}: {run.error}")
                    waiting.discard(run.pk)
                elif run.state == "running" and run.bytes_total:
                    self.stdout.write(f"  run #{run.pk}: {run.rows_processed} rows, {run.progress:.0%}")
        failures += [f"run #{pk}: still not finished after {timeout:.0f} s" for pk in sorted(waiting)]
        return failures
