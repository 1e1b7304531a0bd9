"""`manage.py sync_account SLUG [--wait]`: sync one account's billing exports (and usage metrics).

Without --wait the sync is enqueued on Celery (a worker runs it and fans out one ingest per changed
period). With --wait it runs in this process, ingests the changed periods here too, and prints the
outcome: no worker needed, handy for a first import or for debugging.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from attribution.connectors.base import ConnectorError
from attribution.connectors.services import SyncBusyError, account_sync, account_usage_sync, sync_run_request
from attribution.models import CloudAccount, IngestRun, RunState, SyncKind


class Command(BaseCommand):
    help = "Sync a cloud account's billing exports now (enqueued, or in this process with --wait)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Cloud account slug, e.g. aws-prod")
        parser.add_argument("--wait", action="store_true", help="Run here and wait for the ingests.")
        parser.add_argument("--no-usage", action="store_true", help="Billing only, skip usage metrics.")

    def handle(self, *args, slug: str, wait: bool, no_usage: bool, **options) -> None:
        account = CloudAccount.objects.filter(slug=slug).first()
        if account is None:
            raise CommandError(f"No cloud account {slug!r}.")
        if not wait:
            from attribution.connectors.tasks import account_sync_task, account_usage_sync_task

            with transaction.atomic():
                run = sync_run_request(account_id=account.pk, kind=SyncKind.BILLING, trigger="command")
                transaction.on_commit(lambda: account_sync_task.delay(account.pk, run.pk, "command"))
                if not no_usage:
                    transaction.on_commit(lambda: account_usage_sync_task.delay(account.pk))
            self.stdout.write(
                f"Enqueued billing sync run #{run.pk} of {slug}; follow it in /api/v1/sync-runs."
            )
            return
        try:
            run = account_sync(account_id=account.pk, trigger="command", inline_ingest=True)
        except SyncBusyError as error:
            raise CommandError(str(error))
        except ConnectorError as error:
            raise CommandError(f"{slug}: {error.error_kind}: {error} (transient; try again later)")
        for period in run.details.get("periods", []):
            line = f"{period['period']}: {period.get('action', '?')}"
            if period.get("error"):
                line += f" ({period['error']})"
            self.stdout.write(line)
        for ingest in IngestRun.objects.filter(pk__in=run.ingest_run_ids).order_by("billing_period_start"):
            self.stdout.write(
                f"  ingest #{ingest.pk} {ingest.billing_period_start:%Y-%m}: {ingest.state}, "
                f"{ingest.rows_loaded} rows, billed {ingest.database_sums.get('billed_cost', '-')}"
                + (f" ({ingest.error})" if ingest.error else "")
            )
        if not no_usage:
            try:
                usage = account_usage_sync(account_id=account.pk, trigger="command")
            except (SyncBusyError, ConnectorError) as error:
                self.stderr.write(f"usage sync: {error}")
            else:
                if usage is not None:
                    self.stdout.write(f"usage: {usage.state}, {usage.usage_records} bucket(s) written")
        if run.state != RunState.SUCCEEDED:
            raise CommandError(f"sync run #{run.pk} {run.state}: {run.error_kind}: {run.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Sync run #{run.pk}: {run.periods_found} period(s) found, {run.periods_changed} loaded, "
                f"{run.periods_skipped} unchanged."
            )
        )
