"""Load the demo gateway usage (usage-YYYY-MM-DD.ndjson) through the usage service.

    python manage.py load_demo_usage --dir .data/exports/usage

Each record goes through `usage_records_upsert`, the validation and COPY path the gateways' batches
use. Idempotent: in one transaction per file, the rows of each reporter over the file's time range
are deleted first, so loading the same files twice gives the same table. A record the service
rejects (e.g. a slug that demo_seed did not create) stops the load with the file and line.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from attribution.models import UsageRecord
from attribution.usage.services import UsageValidationError, usage_records_upsert, usage_rollup_all


class Command(BaseCommand):
    help = "Load demo gateway usage NDJSON files into UsageRecord (idempotent per reporter and range)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", default=".data/exports/usage", help="Folder with usage-*.ndjson files.")

    def handle(self, *args, dir: str, **options) -> None:
        folder = Path(dir)
        files = sorted(folder.glob("usage-*.ndjson"))
        if not files:
            raise CommandError(f"No usage-*.ndjson files in {folder}; run `manage.py demo_exports` first.")
        loaded = 0
        reporters: set[str] = set()
        # One file (one day) at a time, so memory stays flat however long the history is.
        for path in files:
            by_reporter: dict[str, list[dict]] = defaultdict(list)
            lines: dict[str, list[int]] = defaultdict(list)
            with path.open(encoding="utf-8") as handle:
                for line_number, line in enumerate(handle, start=1):
                    if line.strip():
                        record = json.loads(line, parse_float=Decimal)
                        by_reporter[record["reporter"]].append(record)
                        lines[record["reporter"]].append(line_number)
            with transaction.atomic():
                for reporter, records in by_reporter.items():
                    # Replace, not add: the reporter's buckets over the file's range go first.
                    starts = [record["bucket_start"] for record in records]
                    UsageRecord.objects.filter(
                        reporter=reporter, bucket_start__gte=min(starts), bucket_start__lte=max(starts)
                    ).delete()
                    try:
                        loaded += usage_records_upsert(
                            reporter=reporter, records=records, batch_id=f"demo:{path.stem}"
                        )
                    except UsageValidationError as error:
                        first = error.errors[0]
                        line_number = lines[reporter][first.record] if first.record >= 0 else 0
                        raise CommandError(
                            f"{path}:{line_number}: {first.field}: {first.message}; "
                            "run `manage.py demo_seed` first if a slug is unknown."
                        ) from None
            reporters.update(by_reporter)
        # The batch service enqueues rollups per batch; after a bulk load build them in one pass.
        rolled = usage_rollup_all()
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {loaded} usage buckets from {len(files)} files ({len(reporters)} reporters); "
                f"rolled up {rolled['hours']} hourly and {rolled['days']} daily rows."
            )
        )
