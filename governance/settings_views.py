"""Settings pages of governance: API tokens and notification channels.

API tokens: everyone signed in sees their own tokens; holders of governance.view_apitoken (admin,
finance) may list everyone's; holders of governance.add_apitoken create tokens for themselves (the
secret is shown once, in the response to the POST, and never stored: only its HMAC is); a user
revokes their own tokens, holders of governance.change_apitoken anyone's.

Channels: read like budgets (admin and finance all, others their teams'); written through
governance.alert_services (validated, scope-checked, audited) by admin, finance and the leads of the
channel's team; a test message is sent by the same service the alerts use.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from attribution.models import Team
from governance import access, alert_services
from governance.choices import DeliveryState
from governance.models import ApiToken, NotificationChannel
from governance.services import api_token_create, api_token_revoke
from governance.settings_forms import ApiTokenForm, ChannelForm

PAGE_SIZE = 50


def form_errors_from(error: ValidationError, form) -> None:
    for field, field_messages in getattr(error, "message_dict", {"__all__": error.messages}).items():
        target = field if field in form.fields else ("team" if field == "team_id" else None)
        for message in field_messages:
            form.add_error(target if target in form.fields else None, message)


def _remote_addr(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


# --- API tokens ---------------------------------------------------------------------------------------


def _tokens_context(request: HttpRequest) -> dict:
    user = request.user
    reads_all = user.has_perm("governance.view_apitoken")
    show_all = reads_all and request.GET.get("owner") == "all"
    tokens = ApiToken.objects.select_related("user").order_by("-created_at", "-id")
    if not show_all:
        tokens = tokens.filter(user=user)
    prefix = request.GET.get("prefix", "").strip()
    if prefix:
        tokens = tokens.filter(prefix__startswith=prefix.lower())
    state = request.GET.get("state", "")
    now = timezone.now()
    if state == "active":
        tokens = tokens.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
    elif state == "revoked":
        tokens = tokens.filter(revoked_at__isnull=False)
    return {
        "page": Paginator(tokens, PAGE_SIZE).get_page(request.GET.get("page", 1)),
        "reads_all": reads_all,
        "show_all": show_all,
        "selected": {"prefix": prefix, "state": state},
        "may_revoke_any": user.has_perm("governance.change_apitoken"),
        "now": now,
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    may_create = request.user.has_perm("governance.add_apitoken")
    form = ApiTokenForm() if may_create else None
    status, new_secret, new_token = 200, None, None
    if request.method == "POST":
        if not may_create:
            raise PermissionDenied("Creating API tokens needs the governance.add_apitoken permission.")
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            expires_on = form.cleaned_data.get("expires_on")
            expires_at = None
            if expires_on is not None:
                # Valid through the whole day named, in the organisation's time zone.
                expires_at = timezone.make_aware(
                    dt.datetime.combine(expires_on + dt.timedelta(days=1), dt.time())
                )
            try:
                new_token, new_secret = api_token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    scopes=list(form.cleaned_data["scopes"]),
                    expires_at=expires_at,
                    actor=request.user,
                    remote_addr=_remote_addr(request),
                )
            except ValidationError as error:
                form_errors_from(error, form)
                status = 400
            else:
                # The secret goes into this response only: not into a message (session), not a redirect.
                status, form = 201, ApiTokenForm()
        else:
            status = 400
    context = _tokens_context(request)
    context.update({"form": form, "new_secret": new_secret, "new_token": new_token})
    return render(request, "governance/settings/api_tokens.html", context, status=status)


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    tokens = ApiToken.objects.all()
    if not request.user.has_perm("governance.change_apitoken"):
        tokens = tokens.filter(user=request.user)  # someone else's token is not found
    token = get_object_or_404(tokens, pk=token_id)
    already = token.revoked_at is not None
    api_token_revoke(token=token, actor=request.user, remote_addr=_remote_addr(request))
    if already:
        messages.info(request, f"Token {token.prefix} was already revoked.")
    else:
        messages.success(request, f"Token {token.prefix} ({token.name}) revoked; it no longer authenticates.")
    return redirect("settings_governance:api-tokens")


# --- Notification channels ---------------------------------------------------------------------------


def _editable_teams(user):
    if access.user_edits_any_scope(user=user):
        return Team.objects.order_by("name")
    return Team.objects.filter(pk__in=access.user_led_team_ids(user=user)).order_by("name")


def _org_wide(user) -> bool:
    return access.user_edits_any_scope(user=user)


def _may_create_channel(user) -> bool:
    return access.user_edits_any_scope(user=user) or bool(access.user_led_team_ids(user=user))


@login_required
@permission_required("governance.view_notificationchannel", raise_exception=True)
@require_http_methods(["GET", "POST"])
def channels(request: HttpRequest) -> HttpResponse:
    user = request.user
    may_create = _may_create_channel(user)
    form = ChannelForm(teams=_editable_teams(user), allow_org_wide=_org_wide(user)) if may_create else None
    status = 200
    if request.method == "POST":
        if not may_create:
            raise PermissionDenied("Only admins, finance and team leads create notification channels.")
        form = ChannelForm(request.POST, teams=_editable_teams(user), allow_org_wide=_org_wide(user))
        if form.is_valid():
            try:
                channel = alert_services.channel_save(
                    actor=user, values=form.values(), remote_addr=_remote_addr(request)
                )
            except ValidationError as error:
                form_errors_from(error, form)
            else:
                messages.success(
                    request, f"Channel {channel.name!r} created. Send a test message to check it."
                )
                return redirect("settings_governance:channels")
        status = 400
    rows = NotificationChannel.objects.restrict(user).select_related("team").order_by("name", "id")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page", 1))
    edits_any, led = access.user_edits_any_scope(user=user), access.user_led_team_ids(user=user)
    return render(
        request,
        "governance/settings/channels.html",
        {
            "page": page,
            "rows": [(channel, edits_any or channel.team_id in led) for channel in page.object_list],
            "form": form,
        },
        status=status,
    )


def _channel_for_edit(request: HttpRequest, channel_id: int) -> NotificationChannel:
    channel = get_object_or_404(NotificationChannel.objects.restrict(request.user), pk=channel_id)
    if not access.user_may_edit_team_scope(user=request.user, team_id=channel.team_id):
        raise PermissionDenied("You may change channels of the teams you lead only.")
    return channel


@login_required
@require_http_methods(["GET", "POST"])
def channel_edit(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel_for_edit(request, channel_id)
    teams = _editable_teams(request.user)
    if request.method == "POST":
        form = ChannelForm(request.POST, teams=teams, allow_org_wide=_org_wide(request.user))
        if form.is_valid():
            try:
                alert_services.channel_save(
                    actor=request.user,
                    values=form.values(),
                    channel=channel,
                    remote_addr=_remote_addr(request),
                )
            except ValidationError as error:
                form_errors_from(error, form)
            else:
                messages.success(request, f"Channel {channel.name!r} saved.")
                return redirect("settings_governance:channels")
        status = 400
    else:
        form = ChannelForm(
            teams=teams,
            allow_org_wide=_org_wide(request.user),
            initial={
                "name": channel.name, "kind": channel.kind, "target": channel.target,
                "secret_reference": channel.secret_reference, "team": channel.team_id,
                "kinds": channel.kinds, "is_active": channel.is_active,
            },
        )  # fmt: skip
        status = 200
    return render(
        request, "governance/settings/channel_edit.html", {"channel": channel, "form": form}, status=status
    )


@login_required
@require_POST
def channel_test(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel_for_edit(request, channel_id)
    delivery = alert_services.channel_test_send(
        channel=channel, actor=request.user, remote_addr=_remote_addr(request)
    )
    if delivery.state == DeliveryState.SENT:
        status = f" (HTTP {delivery.last_status})" if delivery.last_status else ""
        messages.success(request, f"Test message sent to {channel.name!r}{status}.")
    else:
        messages.error(request, f"Test message to {channel.name!r} failed: {delivery.last_error}")
    return redirect("settings_governance:channels")
