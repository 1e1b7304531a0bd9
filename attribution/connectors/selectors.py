"""Reads of the connectors capability: accounts with their latest sync runs."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from attribution.models import CloudAccount, SyncKind, SyncRun


def accounts_with_last_runs() -> list[CloudAccount]:
    """Accounts with their latest billing sync and connection test: three queries for any count."""
    latest = SyncRun.objects.filter(account=OuterRef("pk")).order_by("-created_at", "-id")
    accounts = list(
        CloudAccount.objects.order_by("slug").annotate(
            last_sync_id=Subquery(latest.filter(kind=SyncKind.BILLING).values("pk")[:1]),
            last_test_id=Subquery(latest.filter(kind=SyncKind.CONNECTION_TEST).values("pk")[:1]),
        )
    )
    ids = {a.last_sync_id for a in accounts} | {a.last_test_id for a in accounts}
    runs = SyncRun.objects.in_bulk([pk for pk in ids if pk])
    for account in accounts:
        account.last_sync = runs.get(account.last_sync_id)
        account.last_test = runs.get(account.last_test_id)
    return accounts
