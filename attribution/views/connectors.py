"""The cloud accounts page: each account with its last sync, and buttons to test the connection or
sync now (with the `attribution.sync_account` permission). Mounted by attribution/urls.py."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from attribution.connectors.selectors import accounts_with_last_runs
from attribution.connectors.services import SyncBusyError, account_connection_test, account_sync_queue
from attribution.models import CloudAccount, SyncErrorKind

SYNC_PERMISSION = "attribution.sync_account"


def _can_operate(user) -> bool:
    return user.has_perm(SYNC_PERMISSION)


@login_required
def accounts(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "attribution/accounts.html",
        {"accounts": accounts_with_last_runs(), "can_operate": _can_operate(request.user)},
    )


@login_required
@require_POST
def account_test_connection(request: HttpRequest, pk: int) -> HttpResponse:
    if not _can_operate(request.user):
        raise PermissionDenied("Testing connections needs the attribution.sync_account permission.")
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
        raise PermissionDenied("Starting syncs needs the attribution.sync_account permission.")
    account = get_object_or_404(CloudAccount, pk=pk)
    run, queued = account_sync_queue(account_id=account.pk, trigger="ui")
    if queued:
        messages.success(request, f"{account.name}: sync #{run.pk} queued.")
    else:
        messages.warning(request, f"{account.name}: a sync is already queued or running.")
    return HttpResponseRedirect(reverse("connectors:accounts"))
