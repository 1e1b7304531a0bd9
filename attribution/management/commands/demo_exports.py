"""Write the demo company's billing exports (AWS CUR 2.0, GCP BigQuery detailed export, Azure MCA
cost details), its gateway usage and expected_totals.json under --out.

    python manage.py demo_exports --days 90 --out .data/exports [--seed 42] [--end-date YYYY-MM-DD]

The output directory's provider folders are replaced, so a second run with the same arguments
leaves byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from attribution.demo.aws_cur2 import cur2_write
from attribution.demo.azure_cost_details import azure_write
from attribution.demo.company import company_build
from attribution.demo.expected import ExpectedTotals
from attribution.demo.gcp_billing import gcp_write
from attribution.demo.specs import DemoRange
from attribution.demo.usage import usage_write

OUTPUT_PARTS = ("aws", "gcp", "azure", "usage", "_versions", "expected_totals.json")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--end-date {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-10-31.")


class Command(BaseCommand):
    help = "Generate realistic billing exports (native formats) and gateway usage for the demo company."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=90, help="Days of history back from --end-date.")
        parser.add_argument("--out", default=".data/exports", help="Output directory.")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--end-date", type=_date, default=None, help="Last day (default: yesterday, UTC)."
        )
        parser.add_argument(
            "--billing-lag-days",
            type=int,
            default=0,
            help="Bills end this many days before the usage does, as real bills land late: those "
            "days are known only as estimates until their bill arrives (make demo uses 2).",
        )

    def handle(
        self,
        *args,
        days: int,
        out: str,
        seed: int,
        end_date: dt.date | None,
        billing_lag_days: int = 0,
        **options,
    ) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1.")
        if not 0 <= billing_lag_days < days:
            raise CommandError("--billing-lag-days must be at least 0 and less than --days.")
        if isinstance(end_date, str):  # call_command passes keyword options through unparsed
            end_date = _date(end_date)
        end = end_date or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
        demo_range = DemoRange.ending(end=end, days=days)
        billing_range = DemoRange(start=demo_range.start, end=end - dt.timedelta(days=billing_lag_days))
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        # Only our own output is removed, so --out may point at a shared data folder.
        for part in OUTPUT_PARTS:
            target = out_dir / part
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()

        started = time.monotonic()
        company = company_build(seed=seed)
        totals = ExpectedTotals(
            generator={
                "seed": seed,
                "days": days,
                "start_date": demo_range.start.isoformat(),
                "end_date": demo_range.end.isoformat(),
                "billing_end_date": billing_range.end.isoformat(),
            }
        )
        steps = (
            ("AWS CUR 2.0", cur2_write),
            ("Google Cloud detailed export", gcp_write),
            ("Azure cost details (actual + amortized)", azure_write),
        )
        for label, writer in steps:
            step_started = time.monotonic()
            entries = writer(company=company, demo_range=billing_range, out_dir=out_dir, totals=totals)
            rows = sum(entry.row_count for entry in entries)
            self.stdout.write(f"{label}: {rows} rows in {time.monotonic() - step_started:.1f}s")
        step_started = time.monotonic()
        usage_files = usage_write(company=company, demo_range=demo_range, out_dir=out_dir)
        self.stdout.write(
            f"Gateway usage: {len(usage_files)} files in {time.monotonic() - step_started:.1f}s"
        )
        totals.write(out_dir / "expected_totals.json")
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {demo_range.start}..{demo_range.end} (seed {seed}) to {out_dir} "
                f"in {time.monotonic() - started:.1f}s"
            )
        )
