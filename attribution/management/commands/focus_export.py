"""python manage.py focus_export OUT.parquet [--focus-version 1.2|1.3] [--account SLUG ...]

Writes focus_line_items (FOCUS 1.2; `--focus-version 1.3`: focus_line_items_1_3) to a typed Parquet
file: what a FinOps tool or the FinOps Foundation's validator reads (see README, "FOCUS").
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attribution.focus.export import FOCUS_VIEWS, focus_export_parquet
from attribution.models import CloudAccount


class Command(BaseCommand):
    help = "Export the FOCUS view to a typed Parquet file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help="Parquet file to write (replaced).")
        parser.add_argument("--focus-version", default="1.2", choices=sorted(FOCUS_VIEWS))
        parser.add_argument("--account", action="append", default=[], help="Only this account (repeatable).")

    def handle(self, *args, out: str, focus_version: str, account: list[str], **options) -> None:
        known = set(CloudAccount.objects.filter(slug__in=account).values_list("slug", flat=True))
        unknown = sorted(set(account) - known)
        if unknown:
            raise CommandError(
                f"no cloud account {', '.join(unknown)}; see `manage.py ingest_file --account`"
            )
        rows = focus_export_parquet(path=Path(out), version=focus_version, account_slugs=account or None)
        self.stdout.write(f"{rows} rows of FOCUS {focus_version} written to {out}")
