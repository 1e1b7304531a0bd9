"""`manage.py test_connection SLUG`: check that the account's cloud export can be read, and say
exactly what fails (credentials, a missing permission, a missing bucket/table/container, an empty
export). Exit status 1 when a check fails."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attribution.connectors.services import SyncBusyError, account_connection_test
from attribution.models import CloudAccount


class Command(BaseCommand):
    help = "Test the connection of a cloud account to its billing export; exit 1 if a check fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Cloud account slug, e.g. aws-prod")

    def handle(self, *args, slug: str, **options) -> None:
        account = CloudAccount.objects.filter(slug=slug).first()
        if account is None:
            raise CommandError(
                f"No cloud account {slug!r}; `manage.py demo_seed` or the admin creates accounts."
            )
        try:
            run, report = account_connection_test(account_id=account.pk, trigger="command")
        except SyncBusyError as error:
            raise CommandError(str(error))
        for check in report.checks:
            mark = self.style.SUCCESS("ok  ") if check.ok else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {check.name}" + (f": {check.detail}" if check.detail else ""))
        if not report.ok:
            raise CommandError(
                f"{account.slug}: {report.error_kind or 'failed'}: {report.message} (run #{run.pk})"
            )
        self.stdout.write(self.style.SUCCESS(f"{account.slug}: connection OK (run #{run.pk})"))
