"""Alerts reach people: deliveries per subscribed channel (email, Slack-compatible webhook, signed
generic webhook), retried with exponential backoff, each attempt logged; acknowledgement and
channel test-sends, audited.

A channel with a team subscribes to that team's alerts; a channel without one to every alert;
`kinds` narrows it to some alert kinds. Secrets are references (`env:NAME`, `file:/path`) resolved
at send time and never stored or logged.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from attribution.connectors.credentials import CredentialsError, reference_resolve
from governance.access import require_team_scope
from governance.choices import AlertKind, ChannelKind, DeliveryState, Severity
from governance.models import Alert, AlertDelivery, NotificationChannel
from governance.services import audit_event_record
from governance.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_signature

BACKOFF_BASE_SECONDS = 10
BACKOFF_MAX_SECONDS = 3600
USER_AGENT = "Inferensys-Alerts/1"


class DeliveryFailed(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SendOutcome:
    state: str
    retry_in: int | None  # seconds until the next attempt, when one is due


def backoff_seconds(attempts: int) -> int:
    """10 s, 20 s, 40 s ... capped at an hour (jitter is added by the task queue)."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


def alert_payload(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "team": alert.team.slug if alert.team_id else None,
        "budget": alert.budget_id,
        "details": alert.details,
        "created_at": alert.created_at.isoformat(),
    }


def channels_subscribed(*, alert: Alert):
    channels = NotificationChannel.objects.filter(is_active=True).filter(
        Q(team__isnull=True) | Q(team_id=alert.team_id)
    )
    return [
        channel for channel in channels.order_by("id") if not channel.kinds or alert.kind in channel.kinds
    ]


def alert_deliveries_create(*, alert: Alert) -> list[AlertDelivery]:
    """One pending delivery per subscribed channel, each sent by a task after commit."""
    from governance.tasks import alert_delivery_send_task

    deliveries = [
        AlertDelivery.objects.get_or_create(alert=alert, channel=channel, is_test=False)[0]
        for channel in channels_subscribed(alert=alert)
    ]
    for delivery in deliveries:
        transaction.on_commit(lambda delivery_id=delivery.pk: alert_delivery_send_task.delay(delivery_id))
    return deliveries


def _post_json(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only, validated
            return response.status
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"HTTP {error.code} from {url}", status=error.code) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DeliveryFailed(f"{url} unreachable: {getattr(error, 'reason', error)}") from None


def _send(channel: NotificationChannel, alert: Alert) -> int | None:
    """Send once; return the HTTP status (None for email) or raise DeliveryFailed."""
    payload = alert_payload(alert)
    subject = f"[Inferensys {alert.get_severity_display()}] {alert.get_kind_display()}"
    if channel.kind == ChannelKind.EMAIL:
        try:
            send_mail(subject, alert.message, None, [channel.target], fail_silently=False)
        except OSError as error:
            raise DeliveryFailed(f"email to {channel.target} failed: {error}") from None
        return None
    if channel.kind == ChannelKind.SLACK:
        body = json.dumps({"text": f"*{subject}*\n{alert.message}"}).encode()
        return _post_json(channel.target, body, {})
    body = json.dumps(payload, sort_keys=True).encode()
    try:
        secret = reference_resolve(channel.secret_reference)
    except CredentialsError as error:
        raise DeliveryFailed(f"signing secret unavailable: {error}") from None
    timestamp = int(time.time())
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }
    return _post_json(channel.target, body, headers)


def alert_delivery_send(*, delivery_id: int, now: dt.datetime | None = None) -> SendOutcome:
    """One attempt. Sent -> done; failed -> retry after backoff until the attempts run out."""
    now = now or timezone.now()
    with transaction.atomic():
        # The row lock keeps two workers (a redelivered task) from sending the same attempt twice.
        delivery = (
            AlertDelivery.objects.select_for_update(of=("self",))
            .select_related("alert", "alert__team", "channel")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.state != DeliveryState.PENDING:
            return SendOutcome(state=delivery.state if delivery else "missing", retry_in=None)
        status, error = None, ""
        try:
            status = _send(delivery.channel, delivery.alert)
        except DeliveryFailed as failure:
            status, error = failure.status, str(failure)
        delivery.attempts += 1
        delivery.last_status = status
        delivery.last_error = error
        delivery.log = [*delivery.log, {"at": now.isoformat(), "status": status, "error": error}]
        retry_in = None
        if not error:
            delivery.state, delivery.sent_at, delivery.next_attempt_at = DeliveryState.SENT, now, None
        elif delivery.attempts >= settings.ALERT_DELIVERY_MAX_ATTEMPTS or delivery.is_test:
            delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
        else:
            retry_in = backoff_seconds(delivery.attempts)
            delivery.next_attempt_at = now + dt.timedelta(seconds=retry_in)
        delivery.save()
    return SendOutcome(state=delivery.state, retry_in=retry_in)


def alert_acknowledge(*, alert: Alert, actor: AbstractBaseUser, remote_addr: str | None = None) -> Alert:
    """Acknowledge once; a second acknowledgement changes nothing and is not audited again."""
    require_team_scope(user=actor, team_id=alert.team_id, what="alert")
    now = timezone.now()
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=now, acknowledged_by=actor
        )
        alert.refresh_from_db()
        if changed:
            audit_event_record(
                actor=actor, action="acknowledge", obj=alert, changes={"acknowledged_at": now.isoformat()},
                remote_addr=remote_addr,
            )  # fmt: skip
    return alert


def channel_test_send(
    *, channel: NotificationChannel, actor: AbstractBaseUser, remote_addr: str | None = None
) -> AlertDelivery:
    """Send a test message to the channel now (one attempt, no retries) and return its delivery."""
    require_team_scope(user=actor, team_id=channel.team_id, what="channel")
    with transaction.atomic():
        alert = Alert.objects.create(
            kind=AlertKind.TEST,
            severity=Severity.INFO,
            team=channel.team,
            message=f"Test message for channel {channel.name!r}, sent by {actor.get_username()}.",
            dedup_key=f"test:{channel.pk}:{uuid.uuid4().hex}",
        )
        delivery = AlertDelivery.objects.create(alert=alert, channel=channel, is_test=True)
        audit_event_record(actor=actor, action="test_send", obj=channel, changes={}, remote_addr=remote_addr)
    alert_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


# --- Channels ----------------------------------------------------------------------------------------

_CHANNEL_FIELDS = ("name", "kind", "target", "secret_reference", "team_id", "kinds", "is_active")


def channel_validate(*, values: dict, channel: NotificationChannel | None = None) -> None:
    errors: dict[str, list[str]] = {}
    kind, target = values.get("kind"), (values.get("target") or "").strip()
    if not (values.get("name") or "").strip():
        errors["name"] = ["A channel needs a name."]
    elif (
        NotificationChannel.objects.filter(name=values["name"].strip())
        .exclude(pk=getattr(channel, "pk", None))
        .exists()
    ):
        errors["name"] = [f"A channel named {values['name'].strip()!r} already exists."]
    if kind not in ChannelKind.values:
        errors["kind"] = [f"Unknown kind {kind!r}; one of {', '.join(ChannelKind.values)}."]
    elif kind == ChannelKind.EMAIL:
        try:
            EmailValidator()(target)
        except ValidationError:
            errors["target"] = [f"{target!r} is not an email address."]
    else:
        try:
            URLValidator(schemes=["http", "https"])(target)
        except ValidationError:
            errors["target"] = [f"{target!r} is not an http(s) URL."]
    reference = values.get("secret_reference") or ""
    if kind == ChannelKind.WEBHOOK and not reference:
        errors["secret_reference"] = ["A signed webhook needs a secret reference: env:NAME or file:/path."]
    elif reference and not (reference.startswith("env:") or reference.startswith("file:/")):
        errors["secret_reference"] = [
            "Give the secret as a reference (env:NAME or file:/path), never the secret itself."
        ]
    kinds = values.get("kinds") or []
    unknown = [item for item in kinds if item not in AlertKind.values]
    if unknown:
        errors["kinds"] = [f"Unknown alert kinds {unknown}; known: {', '.join(AlertKind.values)}."]
    if errors:
        raise ValidationError(errors)


def channel_save(
    *,
    actor: AbstractBaseUser,
    values: dict,
    channel: NotificationChannel | None = None,
    remote_addr: str | None = None,
) -> NotificationChannel:
    if channel is not None:
        require_team_scope(user=actor, team_id=channel.team_id, what="channel")
    require_team_scope(user=actor, team_id=values.get("team_id"), what="channel")
    channel_validate(values=values, channel=channel)
    with transaction.atomic():
        before = {name: getattr(channel, name) for name in _CHANNEL_FIELDS} if channel else {}
        channel = channel or NotificationChannel()
        for name in _CHANNEL_FIELDS:
            if name in values:
                setattr(
                    channel, name, values[name].strip() if isinstance(values[name], str) else values[name]
                )
        channel.save()
        after = {name: getattr(channel, name) for name in _CHANNEL_FIELDS}
        changes = {name: [before.get(name), after[name]] for name in after if before.get(name) != after[name]}
        audit_event_record(
            actor=actor,
            action="update" if before else "create",
            obj=channel,
            changes=changes,
            remote_addr=remote_addr,
        )
    return channel


def channel_delete(
    *, actor: AbstractBaseUser, channel: NotificationChannel, remote_addr: str | None = None
) -> None:
    require_team_scope(user=actor, team_id=channel.team_id, what="channel")
    with transaction.atomic():
        audit_event_record(
            actor=actor, action="delete", obj=channel,
            changes={name: getattr(channel, name) for name in _CHANNEL_FIELDS}, remote_addr=remote_addr,
        )  # fmt: skip
        channel.delete()
