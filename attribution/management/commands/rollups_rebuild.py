"""python manage.py rollups_rebuild [--account SLUG]: rebuild DailyCost, DailyTagCost and
DailyResourceCost of every (account, billing period) that has a current version, e.g. after an
upgrade adds a rollup column."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from attribution.choices import IngestState
from attribution.ingest import services
from attribution.models import IngestRun


class Command(BaseCommand):
    help = (
        "Rebuild the daily cost rollups (DailyCost, DailyTagCost, DailyResourceCost) from the current "
        "line items."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", default="", help="only this CloudAccount slug")

    def handle(self, *args, **options) -> None:
        periods = IngestRun.objects.filter(state=IngestState.SUCCEEDED)
        if options["account"]:
            periods = periods.filter(account__slug=options["account"])
        pairs = periods.values_list("account_id", "account__slug", "billing_period_start").distinct()
        for account_id, slug, period in pairs.order_by("account__slug", "billing_period_start"):
            cells = services.daily_cost_rebuild(account_id=account_id, billing_period_start=period)
            self.stdout.write(f"{slug} {period:%Y-%m}: {cells} DailyCost cells")
