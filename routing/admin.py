"""Django admin for routing. Policy changes are audited; published documents are immutable."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from attribution.admin import ReadOnlyAdmin
from governance.admin import AuditedAdmin
from routing.models import Gateway, PolicyDocument, PushAttempt, RoutingPolicy


@admin.register(Gateway)
class GatewayAdmin(AuditedAdmin):
    """The gateway's token hash is never displayed; the prefix identifies the token."""

    list_display = ["slug", "name", "kind", "token_prefix", "applied_version", "last_seen_at"]
    list_filter = ["kind"]
    search_fields = ["slug", "name", "token_prefix"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["served_models"]
    fields = [
        "name",
        "slug",
        "kind",
        "push_settings",
        "served_models",
        "token_prefix",
        "applied_version",
        "last_seen_at",
        "created_at",
    ]
    readonly_fields = ["token_prefix", "applied_version", "last_seen_at", "created_at"]


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(AuditedAdmin):
    list_display = [
        "model",
        "objective",
        "latency_slo_ms",
        "min_share_per_provider",
        "max_share_per_deployment",
        "max_step",
        "updated_at",
    ]
    list_filter = ["objective"]
    search_fields = ["model__name", "model__slug"]
    list_select_related = ["model"]
    autocomplete_fields = ["model"]
    readonly_fields = ["updated_at"]


class PushAttemptInline(admin.TabularInline):
    model = PushAttempt
    fk_name = "document"
    fields = ["gateway", "outcome", "status_code", "error", "started_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(PolicyDocument)
class PolicyDocumentAdmin(ReadOnlyAdmin):
    """Published versions are immutable (gateways may hold any of them): view only."""

    list_display = ["gateway", "version", "content_hash", "created_at"]
    list_filter = ["gateway"]
    search_fields = ["gateway__slug", "content_hash"]
    list_select_related = ["gateway"]
    readonly_fields = ["gateway", "version", "content", "content_hash", "created_at"]
    inlines = [PushAttemptInline]


@admin.register(PushAttempt)
class PushAttemptAdmin(admin.ModelAdmin):
    list_display = ["started_at", "gateway", "document", "outcome", "status_code", "finished_at"]
    list_filter = ["outcome", "gateway"]
    search_fields = ["gateway__slug", "error"]
    list_select_related = ["gateway", "document__gateway"]
    raw_id_fields = ["document", "gateway"]
    readonly_fields = ["document", "gateway", "outcome", "status_code", "error", "started_at", "finished_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
