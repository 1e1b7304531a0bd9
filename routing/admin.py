"""Django admin for routing. Policy changes are audited; published documents are immutable."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from attribution.admin import ReadOnlyAdmin
from governance.admin import AuditedAdmin
from routing.models import (
    DeploymentRouting,
    EgressRate,
    Gateway,
    PolicyDocument,
    PushAttempt,
    RouteLatency,
    RouteState,
    RoutingPolicy,
    WeightPin,
)


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


@admin.register(DeploymentRouting)
class DeploymentRoutingAdmin(AuditedAdmin):
    """Capacity, standby and spot pairing are edited here; health is what probes and gateways saw."""

    list_display = [
        "deployment",
        "health",
        "health_source",
        "restore_cap",
        "capacity_tps",
        "warm_standby",
        "spot_pair",
    ]
    list_filter = ["health", "warm_standby"]
    search_fields = ["deployment__slug"]
    list_select_related = ["deployment", "spot_pair"]
    raw_id_fields = ["deployment", "spot_pair"]
    readonly_fields = ["health_source", "health_reason", "health_changed_at", "last_probe_at"]


@admin.register(WeightPin)
class WeightPinAdmin(AuditedAdmin):
    list_display = ["model", "request_class", "origin", "weights", "expires_at", "created_by"]
    list_select_related = ["model", "created_by"]
    raw_id_fields = ["model", "created_by"]
    search_fields = ["model__slug", "reason"]


@admin.register(EgressRate)
class EgressRateAdmin(AuditedAdmin):
    list_display = ["provider", "scope", "price_per_gb", "currency"]


@admin.register(RouteLatency)
class RouteLatencyAdmin(ReadOnlyAdmin):
    list_display = ["deployment", "origin", "p95_ms", "error_rate", "reported_by", "updated_at"]
    list_select_related = ["deployment"]


@admin.register(RouteState)
class RouteStateAdmin(ReadOnlyAdmin):
    """The optimiser's last good weights per route; written only by evaluation."""

    list_display = ["model", "request_class", "origin", "team", "weights", "last_problem", "updated_at"]
    list_select_related = ["model", "team"]
