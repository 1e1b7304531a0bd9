"""python manage.py load_exchange_rates FILE.csv [--source NAME]

The CSV has a header with the columns date,from,to,rate (1 `from` = `rate` `to` on `date`). Rows
are upserted by (date, from, to); one bad row rejects the whole file and every bad row is named.
"""

from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attribution.currency.services import ExchangeRateRowError, exchange_rates_upsert

REQUIRED_COLUMNS = ("date", "from", "to", "rate")


class Command(BaseCommand):
    help = "Load dated exchange rates from a CSV with the columns date,from,to,rate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--source", default="", help="Where the rates come from, e.g. ecb (default: the file name)"
        )

    def handle(self, *args, file: Path, source: str, **options) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [name for name in REQUIRED_COLUMNS if name not in columns]
            if missing:
                raise CommandError(
                    f"{file}: missing column(s) {', '.join(missing)}; the header must be date,from,to,rate"
                )
            rows = [{key.strip().lower(): value for key, value in row.items() if key} for row in reader]
        try:
            # Row 1 is the header, so the first data row is line 2 of the file.
            changes = exchange_rates_upsert(rows=rows, source=source or file.name, first_row_number=2)
        except ExchangeRateRowError as error:
            raise CommandError(
                f"{file}: " + "\n".join([str(len(error.errors)) + " bad row(s):", *error.errors])
            )
        created = sum(1 for change in changes if change.created)
        self.stdout.write(
            f"{file.name}: {len(rows)} rows read, {created} rates added, {len(changes) - created} changed, "
            f"{len(rows) - len(changes)} unchanged."
        )
