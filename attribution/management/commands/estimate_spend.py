"""Estimate spend from usage for recent days whose bill has not landed (what beat does every 15 min)."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from django.utils import timezone

from attribution.estimates.services import estimates_refresh
from attribution.models import DailyCost, UnitCost


class Command(BaseCommand):
    help = "Estimate spend from gateway usage for the last days whose bill has not landed yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=7, help="How many days back from today.")
        parser.add_argument(
            "--wait-for-unit-costs",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait up to this long for unit costs (computed by the worker after allocation) "
            "to exist before estimating; useful right after an ingest.",
        )

    def handle(self, *args, days: int, wait_for_unit_costs: float, **options) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1.")
        today = timezone.now().date()
        window = [today - dt.timedelta(days=offset) for offset in range(days)]
        # Unit costs of the last billed day exist once the worker has allocated that period.
        last_billed = DailyCost.objects.aggregate(day=Max("day"))["day"]
        deadline = time.monotonic() + wait_for_unit_costs
        while last_billed and not UnitCost.objects.filter(day__gte=last_billed).exists():
            if time.monotonic() >= deadline:
                if wait_for_unit_costs:
                    self.stderr.write("No unit costs yet: estimates fall back to price cards.")
                break
            time.sleep(0.5)
        result = estimates_refresh(days=window)
        self.stdout.write(
            self.style.SUCCESS(
                f"Estimated {result.estimates_written} (day, deployment, team, model) figures for "
                f"{len(result.days_estimated)} days without a bill in {min(window)}..{max(window)}; "
                f"{result.reconciled} reconciled with a landed bill; "
                f"{len(result.without_basis)} with usage but no unit cost or price card."
            )
        )
