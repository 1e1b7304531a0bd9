"""Replay the last billed days as production lives them: estimates first, each bill 1-2 days later."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from attribution.estimates.replay import estimates_replay
from attribution.estimates.services import estimates_refresh


class Command(BaseCommand):
    help = "Replay the last N billed days: usage, estimates, then each day's bill 1-2 days later (demo)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=14)

    def handle(self, *args, days: int, **options) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1.")
        summary = estimates_replay(days=days)
        if not summary.days:
            self.stdout.write("Nothing billed yet: nothing to replay.")
            return
        # The days still waiting for their bill now, estimated with the factors the replay taught.
        last = dt.date.fromisoformat(summary.days[-1])
        today = timezone.now().date()
        open_days = [last + dt.timedelta(days=offset) for offset in range(1, (today - last).days + 1)]
        refreshed = estimates_refresh(days=open_days) if open_days else None
        self.stdout.write(
            self.style.SUCCESS(
                f"Replayed {summary.days[0]}..{summary.days[-1]}: "
                f"{summary.estimates_written} estimates made, "
                f"{summary.reconciled} reconciled as their bills landed"
                + (f"; {refreshed.estimates_written} open estimates remade" if refreshed else "")
                + "."
            )
        )
