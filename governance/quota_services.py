"""Writes of quotas (tokens or requests per minute or day, per team × model, optionally per
gateway): permission-checked, validated, audited; a change asks routing to republish."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from governance.access import require_team_scope
from governance.choices import QuotaMetric, QuotaWindow
from governance.enforcement import policies_republish_enqueue
from governance.models import Quota
from governance.services import audit_event_record

_FIELDS = ("team_id", "model_id", "gateway_id", "metric", "window", "limit")


def quota_validate(*, values: dict, quota: Quota | None = None) -> None:
    errors: dict[str, list[str]] = {}
    if values.get("team_id") is None:
        errors["team"] = ["A quota belongs to a team."]
    if values.get("metric") not in QuotaMetric.values:
        errors["metric"] = [f"metric must be one of {', '.join(QuotaMetric.values)}."]
    if values.get("window") not in QuotaWindow.values:
        errors["window"] = [f"window must be one of {', '.join(QuotaWindow.values)}."]
    limit = values.get("limit")
    if not isinstance(limit, int) or limit <= 0:
        errors["limit"] = [f"limit must be a whole number above zero, got {limit!r}."]
    clash = Quota.objects.filter(
        **{name: values.get(name) for name in ("team_id", "model_id", "gateway_id", "metric", "window")}
    )
    if quota is not None:
        clash = clash.exclude(pk=quota.pk)
    if not errors and clash.exists():
        errors["window"] = ["This team already has a quota for this model, gateway, metric and window."]
    if errors:
        raise ValidationError(errors)


def quota_save(
    *, actor: AbstractBaseUser, values: dict, quota: Quota | None = None, remote_addr: str | None = None
) -> Quota:
    if quota is not None:
        require_team_scope(user=actor, team_id=quota.team_id, what="quota")
    require_team_scope(user=actor, team_id=values.get("team_id"), what="quota")
    quota_validate(values=values, quota=quota)
    with transaction.atomic():
        before = {name: getattr(quota, name) for name in _FIELDS} if quota else {}
        quota = quota or Quota()
        for name in _FIELDS:
            setattr(quota, name, values.get(name))
        quota.save()
        after = {name: getattr(quota, name) for name in _FIELDS}
        changes = {name: [before.get(name), after[name]] for name in after if before.get(name) != after[name]}
        audit_event_record(
            actor=actor,
            action="update" if before else "create",
            obj=quota,
            changes=changes,
            remote_addr=remote_addr,
        )
        policies_republish_enqueue(reason="quota_changed", budget_ids=[])
    return quota


def quota_delete(*, actor: AbstractBaseUser, quota: Quota, remote_addr: str | None = None) -> None:
    require_team_scope(user=actor, team_id=quota.team_id, what="quota")
    with transaction.atomic():
        audit_event_record(
            actor=actor, action="delete", obj=quota, changes={name: getattr(quota, name) for name in _FIELDS},
            remote_addr=remote_addr,
        )  # fmt: skip
        quota.delete()
        policies_republish_enqueue(reason="quota_changed", budget_ids=[])
