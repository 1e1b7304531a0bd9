"""The cloud accounts page: each account with its last sync, and buttons to test the connection or
sync now (admin and finance only). Mounted by attribution/urls.py."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from attribution.connectors.services import SyncBusyError, account_connection_test, sync_run_request
from attribution.models import CloudAccount, RunState, SyncErrorKind, SyncKind, SyncRun

SYNC_ROLES = ("admin", "finance")


def _can_operate(user) -> bool:
    return user.is_superuser or user.groups.filter(name__in=SYNC_ROLES).exists()


def _accounts_with_last_runs():
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


@login_required
def accounts(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "attribution/accounts.html",
        {"accounts": _accounts_with_last_runs(), "can_operate": _can_operate(request.user)},
    )


@login_required
@require_POST
def account_test_connection(request: HttpRequest, pk: int) -> HttpResponse:
    if not _can_operate(request.user):
        raise PermissionDenied("Only the admin and finance roles may test connections.")
    account = get_object_or_404(CloudAccount, pk=pk)
    try:
        _, report = account_connection_test(account_id=account.pk, trigger="ui")
    except SyncBusyError as error:
        messages.warning(request, str(error))
    else:
        if report.ok:
            messages.success(request, f"{account.name}: {report.message}")
        else:
            label = SyncErrorKind(report.error_kind).label if report.error_kind else "Failed"
            messages.error(request, f"{account.name}: {label}: {report.message}")
    return HttpResponseRedirect(reverse("connectors:accounts"))


@login_required
@require_POST
def account_sync_now(request: HttpRequest, pk: int) -> HttpResponse:
    if not _can_operate(request.user):
        raise PermissionDenied("Only the admin and finance roles may start syncs.")
    from attribution.connectors.tasks import account_sync_task

    account = get_object_or_404(CloudAccount, pk=pk)
    with transaction.atomic():
        CloudAccount.objects.select_for_update().get(pk=account.pk)
        active = SyncRun.objects.filter(
            account=account, kind=SyncKind.BILLING, state__in=(RunState.PENDING, RunState.RUNNING)
        ).exists()
        if active:
            messages.warning(request, f"{account.name}: a sync is already queued or running.")
        else:
            run = sync_run_request(account_id=account.pk, kind=SyncKind.BILLING, trigger="ui")
            transaction.on_commit(lambda: account_sync_task.delay(account.pk, run.pk, "ui"))
            messages.success(request, f"{account.name}: sync #{run.pk} queued.")
    return HttpResponseRedirect(reverse("connectors:accounts"))
