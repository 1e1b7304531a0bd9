"""Rollups beside DailyCost: spend per tag, at DailyCost's grain plus one tag key and value."""

from __future__ import annotations

from django.db import models
from django.db.models import F

from attribution.choices import Provider
from attribution.models.core import (
    MONEY,
    CloudAccount,
    Deployment,
    ScopedQuerySet,
    ServedModel,
    Team,
    id_or_zero,
)

TAG_VALUE_MAX = 256


class DailyTagCost(models.Model):
    """Spend per day and tag: one row per DailyCost cell and (normalised) tag key the cell's line
    items carry, with the value. Rebuilt with DailyCost, from the same line items, in the same
    transaction (attribution/ingest/loader.py `daily_cost_rebuild`).

    Only tagged spend is stored: for a key K, the spend *without* K is DailyCost minus the rows of K
    under the same filters, so every key reconciles with DailyCost to the cent by construction, and
    a key that appears on one day of many costs no rows on the others.
    """

    day = models.DateField()
    account = models.ForeignKey(CloudAccount, on_delete=models.CASCADE, related_name="+")
    billing_period_start = models.DateField()
    provider = models.CharField(max_length=16, choices=Provider.choices)
    service_name = models.CharField(max_length=200, blank=True)
    region_id = models.CharField(max_length=64, blank=True)
    sku_id = models.CharField(max_length=200, blank=True, default="")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model = models.ForeignKey(ServedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    charge_category = models.CharField(max_length=20)
    billing_currency = models.CharField(max_length=3)
    tag_key = models.CharField(max_length=512)
    tag_value = models.CharField(max_length=TAG_VALUE_MAX, blank=True)
    billed_cost = models.DecimalField(**MONEY, default=0)
    effective_cost = models.DecimalField(**MONEY, default=0)
    line_items = models.BigIntegerField(default=0)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["tag_key", "day"]),
            models.Index(fields=["account", "day"]),
            # The explorer's tag filter options walk this index (attribution/costs/explorer.py).
            models.Index(id_or_zero("team"), F("tag_key"), F("tag_value"), name="dailytagcost_options"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.tag_key}={self.tag_value} {self.billed_cost} {self.billing_currency}"


class DailyResourceCost(models.Model):
    """Spend without a team or a deployment per day and resource: what the Unallocated page lists as
    the top untagged resources. Rebuilt with DailyCost, from the same current line items, in the
    same transaction (attribution/ingest/loader.py `daily_cost_rebuild`), so that page reads a
    rollup instead of grouping line items on every request.

    `resource` is the line items' ResourceId, or "<service> (no resource id)" for those without
    one (a row per service then). Only team-less, deployment-less line items are stored: the
    rows of a day add up to DailyCost's team-less, deployment-less cells of that day, to the cent.

    It grows with the line items (a resource billed once a day is a row a day), so, like them, its
    account key is neither enforced nor indexed by Postgres (the (account, day) index serves
    lookups): the rebuild copies ids from line items, and checking each row's key took as long as
    writing the rows (500,000 deferred checks at the swap's COMMIT, bench/ingest.py). Deleting an
    account still deletes its rows (Django's CASCADE).
    """

    day = models.DateField()
    account = models.ForeignKey(
        CloudAccount, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    billing_period_start = models.DateField()
    provider = models.CharField(max_length=16, choices=Provider.choices)
    service_name = models.CharField(max_length=200, blank=True)
    resource = models.TextField()  # as long as the line items' ResourceId (text)
    billing_currency = models.CharField(max_length=3)
    billed_cost = models.DecimalField(**MONEY, default=0)
    effective_cost = models.DecimalField(**MONEY, default=0)
    line_items = models.BigIntegerField(default=0)

    objects = models.Manager()

    class Meta:
        indexes = [
            models.Index(fields=["day"]),
            models.Index(fields=["account", "day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.resource} {self.billed_cost} {self.billing_currency}"
