"""Django admin for governance. Every change made here to a budget, quota, channel, membership or
credential goes to the audit log, like a change made through the API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest

from attribution.admin import ReadOnlyAdmin
from governance import selectors
from governance.models import (
    Alert,
    AlertDelivery,
    ApiToken,
    AuditEvent,
    Budget,
    BudgetEnforcement,
    BudgetEvent,
    BudgetForecast,
    BudgetThreshold,
    Lease,
    LeasePool,
    Membership,
    NotificationChannel,
    Quota,
)
from governance.services import api_token_revoke, audit_event_record


def _json_safe(value: Any) -> Any:
    if isinstance(value, models.Model):
        return {"id": value.pk, "repr": str(value)}
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple, models.QuerySet)):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _changes(
    instance: models.Model,
    changed_fields: list[str],
    before: dict[str, Any],
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    # `after` is the form's cleaned data when there is one: many-to-many values are saved only
    # after save_model, so the instance cannot tell them yet.
    after = after or {}
    return {
        name: {
            "from": _json_safe(before.get(name)),
            "to": _json_safe(after[name] if name in after else getattr(instance, name, None)),
        }
        for name in changed_fields
    }


def _remote_addr(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class AuditedAdmin(admin.ModelAdmin):
    """Records create/update/delete of the object and of its inlines in the audit log.

    The admin runs each change view in one transaction, so the change and its audit entry commit
    together or not at all.
    """

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        before = {name: form.initial.get(name) for name in form.changed_data}
        audit_event_record(
            actor=request.user,
            action="update" if change else "create",
            obj=obj,
            changes=_changes(obj, list(form.changed_data), before if change else {}, form.cleaned_data),
            remote_addr=_remote_addr(request),
        )

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        # Values before the edit, per inline object (the forms hold what the page was rendered with).
        before = {id(inline.instance): inline.initial for inline in formset.forms}
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            audit_event_record(
                actor=request.user, action="delete", obj=obj, changes={}, remote_addr=_remote_addr(request)
            )
            obj.delete()
        changed = dict((id(obj), fields) for obj, fields in formset.changed_objects)
        new_ids = {id(obj) for obj in formset.new_objects}
        for obj in instances:
            obj.save()
            fields = changed.get(id(obj), [])
            if id(obj) in new_ids:
                fields = [f.name for f in obj._meta.concrete_fields if not f.primary_key]
            audit_event_record(
                actor=request.user,
                action="create" if id(obj) in new_ids else "update",
                obj=obj,
                changes=_changes(obj, fields, {} if id(obj) in new_ids else before.get(id(obj), {})),
                remote_addr=_remote_addr(request),
            )
        formset.save_m2m()

    def delete_model(self, request: HttpRequest, obj) -> None:
        audit_event_record(
            actor=request.user, action="delete", obj=obj, changes={}, remote_addr=_remote_addr(request)
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            audit_event_record(
                actor=request.user, action="delete", obj=obj, changes={}, remote_addr=_remote_addr(request)
            )
        super().delete_queryset(request, queryset)


class TeamScopedAdmin(AuditedAdmin):
    """Budgets and quotas: a team lead (if given admin access) sees and edits only their own teams.

    Django permissions say *what kind* of object a role may change; which teams is decided here,
    from memberships, so the admin cannot widen what the API allows.
    """

    team_path = "team"

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        if selectors.user_sees_all_teams(user=request.user):
            return queryset
        team_ids = request.user.memberships.values("team_id")
        return queryset.filter(**{f"{self.team_path}__in": team_ids})

    def _team_id(self, obj) -> int | None:
        for part in self.team_path.split("__"):
            obj = getattr(obj, part) if obj is not None else None
        return obj.pk if obj is not None else None

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (
            obj is None or selectors.user_can_manage_team(user=request.user, team_id=self._team_id(obj))
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (
            obj is None or selectors.user_can_manage_team(user=request.user, team_id=self._team_id(obj))
        )

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "team":
            kwargs["queryset"] = selectors.user_manageable_teams(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "team" in form.base_fields and not selectors.user_manages_all_teams(user=request.user):
            # Organisation-wide budgets are for admins; everyone else picks one of their teams.
            form.base_fields["team"].required = True
        return form


@admin.register(Membership)
class MembershipAdmin(AuditedAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "user__email", "team__name", "team__slug"]
    list_select_related = ["user", "team"]
    autocomplete_fields = ["user", "team"]
    readonly_fields = ["created_at"]


class BudgetThresholdInline(admin.TabularInline):
    model = BudgetThreshold
    extra = 0
    fields = ["percent", "amount", "basis", "action", "throttle_share"]


@admin.register(Budget)
class BudgetAdmin(TeamScopedAdmin):
    list_display = [
        "name",
        "team",
        "model",
        "provider",
        "account",
        "period",
        "amount",
        "currency",
        "action",
        "is_active",
    ]
    list_filter = ["is_active", "period", "action", "provider", "currency"]
    search_fields = ["name", "team__name", "model__name"]
    list_select_related = ["team", "model", "account"]
    autocomplete_fields = ["team", "model", "account"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [BudgetThresholdInline]

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(BudgetThreshold)
class BudgetThresholdAdmin(TeamScopedAdmin):
    team_path = "budget__team"
    list_display = ["budget", "percent", "amount", "basis", "action", "throttle_share"]
    list_filter = ["basis", "action"]
    search_fields = ["budget__name"]
    list_select_related = ["budget"]
    autocomplete_fields = ["budget"]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "budget" and not selectors.user_manages_all_teams(user=request.user):
            kwargs["queryset"] = Budget.objects.filter(
                team__in=selectors.user_manageable_teams(user=request.user)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Quota)
class QuotaAdmin(TeamScopedAdmin):
    list_display = ["team", "model", "gateway_id", "metric", "window", "limit", "updated_at"]
    list_filter = ["metric", "window", "team"]
    search_fields = ["team__name", "model__name"]
    list_select_related = ["team", "model"]
    autocomplete_fields = ["team", "model"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(AuditedAdmin):
    list_display = ["name", "kind", "target", "team", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "target"]
    list_select_related = ["team"]
    autocomplete_fields = ["team"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "severity", "team", "budget", "message", "acknowledged_at"]
    list_filter = ["kind", "severity", ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["message", "dedup_key"]
    list_select_related = ["team", "budget"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Alert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts are raised by evaluations, not typed in


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    # The audit log is append-only, for superusers too.
    list_display = ["created_at", "actor_label", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "object_repr", "object_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [field.name for field in AuditEvent._meta.fields]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `manage.py create_api_token` or the API, which show the secret once.

    The HMAC of the secret is never displayed: it is not in `fields`, the list or the search.
    """

    list_display = [
        "name",
        "user",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    fields = ["user", "name", "prefix", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            api_token_revoke(token=token, actor=request.user, remote_addr=_remote_addr(request))
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


# --- Written by evaluations, leases and deliveries only: read-only here. ---------------------------


@admin.register(BudgetEnforcement)
class BudgetEnforcementAdmin(ReadOnlyAdmin):
    list_display = [
        "budget",
        "action",
        "throttle_share",
        "period_start",
        "applied_at",
        "lifted_at",
        "lift_reason",
    ]
    list_filter = ["action", "lift_reason", ("lifted_at", admin.EmptyFieldListFilter)]
    list_select_related = ["budget"]
    search_fields = ["budget__name", "reason"]


@admin.register(BudgetEvent)
class BudgetEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "budget",
        "kind",
        "action",
        "threshold_label",
        "spend_billed",
        "spend_estimated",
    ]
    list_filter = ["kind", "action"]
    list_select_related = ["budget"]
    search_fields = ["budget__name"]
    date_hierarchy = "created_at"


@admin.register(BudgetForecast)
class BudgetForecastAdmin(ReadOnlyAdmin):
    list_display = [
        "budget",
        "period_start",
        "method",
        "point",
        "lower",
        "upper",
        "backtest_mape",
        "computed_at",
    ]
    list_select_related = ["budget"]
    exclude = ["daily"]


@admin.register(LeasePool)
class LeasePoolAdmin(ReadOnlyAdmin):
    list_display = ["pk", "budget", "quota", "unit", "window_start", "consumed", "outstanding", "spend_known"]
    list_select_related = ["budget", "quota"]


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ["pk", "pool", "holder", "requested", "granted", "used", "expires_at", "closed_at"]
    list_select_related = ["pool"]
    search_fields = ["holder"]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "alert", "channel", "state", "attempts", "last_status", "sent_at"]
    list_filter = ["state", "is_test"]
    list_select_related = ["alert", "channel"]
