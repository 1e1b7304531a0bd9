"""Writes of the governance layer: API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from governance.models import Alert, ApiToken, AuditEvent
from governance.tokens import generate_token

# `read`, `write`, or `write:budgets`-style scopes narrowed to one kind of object.
_SCOPE_PATTERN = re.compile(r"^[a-z][a-z_]*(:[a-z][a-z_]*)?$")


def audit_event_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: models.Model,
    changes: dict[str, Any],
    remote_addr: str | None = None,
) -> AuditEvent:
    """Append one entry to the audit log. `changes` must be JSON-safe and must never hold secrets."""
    return audit_event_write(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj),
        changes=changes,
        remote_addr=remote_addr,
    )


def audit_event_write(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    object_type: str,
    object_id: str,
    object_repr: str,
    changes: dict[str, Any],
    remote_addr: str | None = None,
) -> AuditEvent:
    """Append one entry naming its object by type and id (a bulk change names no single row)."""
    label = actor.get_username() if actor is not None else "system"
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=label[:200],
        action=action[:32],
        object_type=object_type,
        object_id=str(object_id)[:64],
        object_repr=object_repr[:300],
        changes=changes,
        remote_addr=remote_addr,
    )


def api_token_create(
    *,
    user: AbstractBaseUser,
    name: str,
    scopes: list[str],
    expires_at: dt.datetime | None = None,
    actor: AbstractBaseUser | None = None,
    remote_addr: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user` and return it with its plaintext, which is never stored or shown again.

    `actor` is who asked for it (defaults to the user); the creation is audited as a credential change.
    """
    name = name.strip()
    if not name:
        raise ValidationError("A token needs a name, e.g. the script or service that will use it.")
    bad_scopes = [scope for scope in scopes if not _SCOPE_PATTERN.match(scope)]
    if not scopes or bad_scopes:
        raise ValidationError(
            f"Scopes must be like 'read' or 'write:budgets'; got {scopes!r}."
            if bad_scopes
            else "A token needs at least one scope, e.g. 'read'."
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError("The expiry date of a new token must be in the future.")
    if ApiToken.objects.filter(user=user, name=name).exists():
        raise ValidationError(f"{user.get_username()} already has a token named {name!r}; pick another name.")

    new = generate_token()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=new.prefix,
            token_hash=new.token_hash,
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        audit_event_record(
            actor=actor or user,
            action="create",
            obj=token,
            changes={
                "user": user.get_username(),
                "name": name,
                "prefix": token.prefix,
                "scopes": token.scopes,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
            remote_addr=remote_addr,
        )
    return token, new.plaintext


def api_token_revoke(
    *,
    token: ApiToken,
    actor: AbstractBaseUser | None = None,
    remote_addr: str | None = None,
) -> ApiToken:
    """Revoke a token at once. Revoking an already revoked token changes nothing and is not audited again."""
    now = timezone.now()
    with transaction.atomic():
        # Conditional UPDATE: of two concurrent revocations exactly one records the audit event.
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        token.refresh_from_db(fields=["revoked_at"])
        if changed == 1:
            audit_event_record(
                actor=actor or token.user,
                action="revoke",
                obj=token,
                changes={"revoked_at": now.isoformat(), "prefix": token.prefix},
                remote_addr=remote_addr,
            )
    return token


def alert_raise(
    *,
    kind: str,
    severity: str,
    dedup_key: str,
    message: str,
    details: dict | None = None,
    team=None,
    budget=None,
    threshold=None,
) -> tuple[Alert, bool]:
    """Create the alert unless one with the same dedup key exists; returns (alert, created).

    The same condition in the same period is one alert a person acknowledges once, however many
    times it is evaluated."""
    alert, created = Alert.objects.get_or_create(
        dedup_key=dedup_key[:200],
        defaults={
            "kind": kind,
            "severity": severity,
            "message": message,
            "details": details or {},
            "team": team,
            "budget": budget,
            "threshold": threshold,
        },
    )
    if created:
        from governance.alert_services import alert_deliveries_create

        alert_deliveries_create(alert=alert)
    return alert, created
