"""Load the demo gateway usage (usage-YYYY-MM-DD.ndjson) into UsageRecord with COPY.

    python manage.py load_demo_usage --dir .data/exports/usage

Idempotent: in one transaction, the rows of each reporter over the time range the files cover are
deleted and the files are copied in, so loading the same files twice gives the same table.
Slugs are resolved with one query per dimension; a slug that demo_seed did not create stops the
load before anything is written.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from attribution.models import Deployment, ServedModel, Team, UsageRecord
from attribution.usage.services import usage_rollup_all

COPY_COLUMNS = (
    "bucket_start",
    "bucket_seconds",
    "reporter",
    "deployment_id",
    "team_id",
    "model_id",
    "requests",
    "input_tokens",
    "output_tokens",
    "errors",
    "gpu_seconds",
    "latency_ms_sum",
    "latency_histogram",
    "batch_id",
)


class Command(BaseCommand):
    help = "Load demo gateway usage NDJSON files into UsageRecord (COPY; idempotent per reporter and range)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", default=".data/exports/usage", help="Folder with usage-*.ndjson files.")

    def handle(self, *args, dir: str, **options) -> None:
        folder = Path(dir)
        files = sorted(folder.glob("usage-*.ndjson"))
        if not files:
            raise CommandError(f"No usage-*.ndjson files in {folder}; run `manage.py demo_exports` first.")
        deployments = dict(Deployment.objects.values_list("slug", "id"))
        teams = dict(Team.objects.values_list("slug", "id"))
        models = dict(ServedModel.objects.values_list("slug", "id"))

        def resolve(mapping: dict[str, int], slug: str, kind: str, path: Path, line: int) -> int:
            try:
                return mapping[slug]
            except KeyError:
                raise CommandError(
                    f"{path}:{line}: unknown {kind} {slug!r}; run `manage.py demo_seed` first."
                )

        table = UsageRecord._meta.db_table
        copy_sql = f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
        loaded = 0
        reporters: set[str] = set()
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.connection.cursor()
            # One file (one day) at a time, so memory stays flat however long the history is.
            for path in files:
                rows = self._parse(path, deployments=deployments, teams=teams, models=models, resolve=resolve)
                ranges: dict[str, tuple[dt.datetime, dt.datetime]] = {}
                for row in rows:
                    low, high = ranges.get(row[2], (row[0], row[0]))
                    ranges[row[2]] = (min(low, row[0]), max(high, row[0]))
                # Replace, not add: the same reporter's buckets over the file's range go first.
                for reporter, (low, high) in ranges.items():
                    UsageRecord.objects.filter(
                        reporter=reporter, bucket_start__gte=low, bucket_start__lte=high
                    ).delete()
                with raw.copy(copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
                loaded += len(rows)
                reporters.update(ranges)
        # The bulk COPY bypasses the batch service, so build the hourly and daily rollups that
        # allocation and the pages read, in one pass over the loaded range.
        rolled = usage_rollup_all()
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {loaded} usage buckets from {len(files)} files ({len(reporters)} reporters); "
                f"rolled up {rolled['hours']} hourly and {rolled['days']} daily rows."
            )
        )

    @staticmethod
    def _parse(path: Path, *, deployments: dict, teams: dict, models: dict, resolve) -> list[tuple]:
        batch_id = f"demo:{path.stem}"
        rows = []
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record = json.loads(line, parse_float=Decimal)
                team = record.get("team")
                rows.append(
                    (
                        dt.datetime.fromisoformat(record["bucket_start"].replace("Z", "+00:00")),
                        record["bucket_seconds"],
                        record["reporter"],
                        resolve(deployments, record["deployment"], "deployment", path, line_number),
                        resolve(teams, team, "team", path, line_number) if team else None,
                        resolve(models, record["model"], "model", path, line_number),
                        record["requests"],
                        record["input_tokens"],
                        record["output_tokens"],
                        record["errors"],
                        Decimal(record["gpu_seconds"]),
                        float(record["latency_ms_sum"]),
                        json.dumps(record["latency_histogram"]),
                        batch_id,
                    )
                )
        return rows
