"""Audited changes of governed objects, announced by the services that make them.

Mapping rules, allocation rules, exchange rates, cloud accounts and credential references are
governed: every create, update and delete is written to the audit log, with who did it and the
values before and after, in the same transaction as the change. The audit log belongs to
governance, a higher layer that attribution never imports, so a service sends `audited_change`
(attribution/signals.py) inside its transaction and governance's receiver writes the AuditEvent:
the change and its event commit together or not at all. The Django admin calls the same services.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import models

from attribution import signals

# Never copied into the audit log: the log is readable by more people than the secret.
SECRET_FIELDS = frozenset({"credentials_ciphertext"})


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    return value


def model_snapshot(obj: models.Model, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The object's own fields, JSON-safe, foreign keys as ids, without secrets or timestamps of
    bookkeeping (`created_at`/`updated_at` say nothing about what changed)."""
    snapshot: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.name in SECRET_FIELDS or field.name in exclude:
            continue
        if field.name in ("created_at", "updated_at"):
            continue
        snapshot[field.attname] = _json_safe(getattr(obj, field.attname))
    return snapshot


def snapshot_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """{"before": ..., "after": ...} with, for an update, only the fields whose value changed."""
    if before is None or after is None:
        return {"before": before, "after": after}
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    return {
        "before": {key: before.get(key) for key in changed},
        "after": {key: after.get(key) for key in changed},
    }


def audited_change_send(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    object_repr: str | None = None,
    changes: dict[str, Any],
    remote_addr: str | None = None,
) -> None:
    """Announce one audited change. Call it inside the change's transaction (and, for a delete,
    before the row is gone, so the event names it). `obj` names the object; a change that is not
    one row (a bulk load) passes object_type/object_id/object_repr instead."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr if object_repr is not None else str(obj)
    if not object_type or object_id is None:
        raise ValueError("An audited change names its object: pass obj, or object_type and object_id.")
    signals.audited_change.send(
        sender=obj.__class__ if obj is not None else None,
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=(object_repr or "")[:300],
        changes=_json_safe(changes),
        remote_addr=remote_addr or None,
    )
