"""python manage.py ingest_file PATH [PATH ...] --account SLUG [--provider aws|gcp|azure|oci]
[--format auto|aws-cur2|aws-cur-legacy|gcp-bigquery|azure-cost-details] [--dataset actual|amortized]
[--period YYYY-MM]"""

from __future__ import annotations

import datetime as dt
import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attribution.choices import COST_COLUMNS, Provider
from attribution.ingest import services
from attribution.ingest.errors import IngestError, PeriodBusyError
from attribution.ingest.formats import PARSERS_BY_NAME
from attribution.models import IngestRun


def period_parse(value: str) -> dt.date:
    try:
        return dt.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise CommandError(f"--period {value!r}: expected YYYY-MM") from None


class ProgressBar:
    """tqdm on a terminal only; silent when output is piped or captured."""

    def __init__(self, stream, total: int, label: str) -> None:
        self.bar = None
        if hasattr(stream, "isatty") and stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=label, file=stream, leave=False)

    def __call__(self, run: IngestRun) -> None:
        if self.bar is not None:
            self.bar.n = run.bytes_processed
            self.bar.set_postfix(rows=run.rows_processed)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_summary(run: IngestRun) -> str:
    sums = ", ".join(f"{column}={run.database_sums.get(column, '-')}" for column in COST_COLUMNS)
    return (
        f"{run.account.slug} {run.billing_period_start:%Y-%m} run #{run.pk} {run.state}: "
        f"{run.rows_loaded} rows loaded, {run.rows_rejected} rejected of {run.rows_in_source}; {sums}"
    )


class Command(BaseCommand):
    help = "Ingest billing export files for one cloud account (one run per billing period found)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--account", required=True, help="CloudAccount slug (created if missing)")
        parser.add_argument("--provider", choices=Provider.values)
        parser.add_argument("--format", default="auto", choices=["auto", *PARSERS_BY_NAME])
        parser.add_argument("--dataset", choices=["actual", "amortized"], default="")
        parser.add_argument("--period", help="YYYY-MM the files must belong to (needed for empty files)")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            account = services.cloud_account_get_or_create(
                slug=options["account"], provider=options["provider"]
            )
            runs = services.ingest_runs_create(
                account=account,
                paths=options["paths"],
                source_format=options["format"],
                dataset=options["dataset"],
                billing_period=period_parse(options["period"]) if options["period"] else None,
            )
        except IngestError as error:
            raise CommandError(str(error)) from None
        if not runs:
            self.stdout.write("No rows and no --period: nothing to ingest.")
            return
        failures = []
        queue = list(runs)
        while queue:
            run = queue.pop(0)
            if run.state == "succeeded":
                self.stdout.write(f"unchanged (same files as run #{run.pk}): " + run_summary(run))
                continue
            bar = ProgressBar(sys.stderr, run.bytes_total, f"{account.slug} {run.billing_period_start:%Y-%m}")
            try:
                run = services.ingest_run_execute(
                    run_id=run.pk, progress=bar, executor=services.executor_describe("command")
                )
            except IngestError as error:
                failures.append(str(error))
                continue
            except PeriodBusyError as error:
                # A live process is loading this period: leave no pending run behind; rerun later.
                services.ingest_run_cancel(run_id=run.pk, reason=f"not started: {error}")
                failures.append(
                    f"{account.slug} {run.billing_period_start:%Y-%m}: {error}; "
                    "run the command again once it has finished"
                )
                continue
            finally:
                bar.close()
            self.stdout.write(run_summary(run))
            # Periods found beyond the files' first rows: their runs were planned by this one.
            followups = services.ingest_run_followups(run=run)
            queue.extend(followups)
            runs.extend(followups)
            for rejected in run.rejected_rows.all()[:10]:
                self.stdout.write(
                    f"  rejected {rejected.file_path}:{rejected.line_number}: {rejected.reason}"
                )
        periods = ", ".join(f"{run.billing_period_start:%Y-%m}" for run in runs)
        self.stdout.write(f"periods touched: {periods}; {time.monotonic() - started:.1f} s")
        if failures:
            raise CommandError("\n".join(failures))
