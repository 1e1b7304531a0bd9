"""Django admin for the attribution layer: for operators, not the main UI.

Bulk tables (line items, usage, daily rollups) are written by the ingest and rollup pipelines in
SQL, so the admin shows them read-only and never counts them in full.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.functional import cached_property

from attribution.allocation.services import (
    allocation_rule_delete,
    allocation_rule_save,
    allocation_share_save,
    allocation_shares_error,
)
from attribution.choices import IngestState
from attribution.connectors.services import cloud_account_delete, cloud_account_save
from attribution.currency.services import exchange_rate_delete, exchange_rate_save
from attribution.mapping.services import RULE_FIELDS, dimension_rule_remove, dimension_rule_save
from attribution.models import (
    AllocatedCost,
    AllocationRule,
    AllocationShare,
    AllocationSuggestion,
    BackgroundRun,
    BillingPeriodVersion,
    CloudAccount,
    CostLineItem,
    DailyCost,
    DailyResourceCost,
    DailyTagCost,
    Deployment,
    DimensionRule,
    EstimateCalibration,
    ExchangeRate,
    IngestRun,
    PriceCard,
    RejectedRow,
    RuleSuggestion,
    ServedModel,
    SpendEstimate,
    SyncRun,
    TagKey,
    TagSet,
    Team,
    UnitCost,
    UsageBatch,
    UsageDaily,
    UsageHourly,
    UsageRecord,
)


class EstimatedCountPaginator(Paginator):
    """Uses Postgres' row estimate for an unfiltered changelist of a big table.

    COUNT(*) over tens of millions of line items takes seconds; the estimate from pg_class is
    instant and exact enough for page links. Filtered lists are counted exactly (they are narrow).
    """

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            # reltuples is -1 (or 0) before the first ANALYZE: count for real then, the table is small.
            if row and row[0] > 10_000:
                return row[0]
        return super().count


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows owned by a pipeline: visible to operators, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _remote_addr(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class GovernedAdmin(admin.ModelAdmin):
    """Governed objects (accounts, rules, rates): the admin writes through the same services as the
    API, so every change made here is validated and audited like any other. Subclasses say which
    service saves and which deletes."""

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        # One audited delete per object, never a bulk DELETE that the audit log would not see.
        for obj in queryset:
            self.delete_model(request, obj)


class BulkTableAdmin(ReadOnlyAdmin):
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50


@admin.register(CloudAccount)
class CloudAccountAdmin(GovernedAdmin):
    list_display = ["slug", "name", "provider", "billing_currency", "created_at"]
    list_filter = ["provider", "billing_currency"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "last_synced_at"]
    # The encrypted credential is set through `manage.py set_credentials`, never shown or edited here.
    exclude = ["credentials_ciphertext"]

    def save_model(self, request: HttpRequest, obj: CloudAccount, form, change: bool) -> None:
        cloud_account_save(account=obj, actor=request.user, remote_addr=_remote_addr(request))

    def delete_model(self, request: HttpRequest, obj: CloudAccount) -> None:
        cloud_account_delete(account=obj, actor=request.user, remote_addr=_remote_addr(request))


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "cost_center", "created_at"]
    search_fields = ["name", "slug", "cost_center"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]


@admin.register(ServedModel)
class ServedModelAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "family", "created_at"]
    list_filter = ["family"]
    search_fields = ["name", "slug", "family"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "model",
        "provider",
        "region",
        "accelerator",
        "pricing_mode",
        "capacity_rps",
        "state",
    ]
    list_filter = ["provider", "pricing_mode", "state", "residency_region"]
    search_fields = ["slug", "region", "accelerator", "instance_type", "resource_id", "model__name"]
    list_select_related = ["model"]
    autocomplete_fields = ["model", "account"]
    readonly_fields = ["created_at"]


class RejectedRowInline(admin.TabularInline):
    model = RejectedRow
    fields = ["file_path", "line_number", "reason", "raw_text"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    # A broken file can reject millions of rows; the inline shows the first ones only.
    classes = ["collapse"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).order_by("line_number")


@admin.register(IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "account",
        "billing_period_start",
        "state",
        "source_format",
        "rows_in_source",
        "rows_loaded",
        "rows_rejected",
        "created_at",
        "finished_at",
    ]
    list_filter = ["state", "source_format", "account", "billing_period_start"]
    search_fields = ["fingerprint", "account__slug", "error"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    raw_id_fields = ["superseded_by"]
    # Everything on a run is a record of what happened, including the reconciled sums.
    readonly_fields = [field.name for field in IngestRun._meta.fields]
    inlines = [RejectedRowInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(CostLineItem)
class CostLineItemAdmin(BulkTableAdmin):
    list_display = [
        "id",
        "charge_period_start",
        "account",
        "provider_name",
        "service_name",
        "billed_cost",
        "effective_cost",
        "billing_currency",
        "team",
        "model",
        "deployment",
    ]
    # Only filters that need no DISTINCT over the table (choices, dates, small related tables).
    list_filter = ["account", "billing_period_start"]
    search_fields = ["resource_id", "sku_id", "billing_account_id", "sub_account_id"]
    list_select_related = ["account", "team", "model", "deployment"]
    raw_id_fields = ["account", "ingest_run", "team", "model", "deployment"]
    readonly_fields = [field.name for field in CostLineItem._meta.fields]

    def get_queryset(self, request: HttpRequest):
        # Only current versions: a loading, failed or superseded run's rows are not line items yet
        # (or any more); see attribution/ingest/loader.py.
        return super().get_queryset(request).filter(ingest_run__state=IngestState.SUCCEEDED)


@admin.register(TagSet)
class TagSetAdmin(BulkTableAdmin):
    """Distinct tag combinations of line items (see TagSet); the line items name them by id."""

    list_display = ["id", "tags", "normalized_tags"]
    readonly_fields = ["id", "tags", "normalized_tags"]


@admin.register(RejectedRow)
class RejectedRowAdmin(BulkTableAdmin):
    list_display = ["ingest_run", "file_path", "line_number", "reason"]
    search_fields = ["reason", "file_path"]
    list_select_related = ["ingest_run__account"]
    raw_id_fields = ["ingest_run"]
    readonly_fields = ["ingest_run", "file_path", "line_number", "raw_text", "reason"]


@admin.register(TagKey)
class TagKeyAdmin(ReadOnlyAdmin):
    list_display = ["normalized_key", "key", "account", "last_seen_run"]
    list_filter = ["account"]
    search_fields = ["key", "normalized_key"]
    list_select_related = ["account", "last_seen_run__account"]
    raw_id_fields = ["account", "last_seen_run"]


@admin.register(UsageRecord)
class UsageRecordAdmin(BulkTableAdmin):
    list_display = [
        "bucket_start",
        "reporter",
        "deployment",
        "team",
        "model",
        "requests",
        "input_tokens",
        "output_tokens",
        "errors",
    ]
    list_filter = ["model"]
    search_fields = ["reporter", "batch_id", "deployment__slug"]
    list_select_related = ["deployment", "team", "model"]
    raw_id_fields = ["deployment", "team", "model"]


@admin.register(DailyCost)
class DailyCostAdmin(BulkTableAdmin):
    list_display = [
        "day",
        "account",
        "provider",
        "service_name",
        "team",
        "model",
        "deployment",
        "charge_category",
        "billed_cost",
        "effective_cost",
        "billing_currency",
        "line_items",
    ]
    list_filter = ["provider", "account", "billing_period_start"]
    search_fields = ["service_name", "region_id", "deployment__slug"]
    list_select_related = ["account", "team", "model", "deployment"]
    raw_id_fields = ["account", "team", "model", "deployment"]


@admin.register(DailyTagCost)
class DailyTagCostAdmin(BulkTableAdmin):
    list_display = [
        "day", "account", "provider", "tag_key", "tag_value", "team", "model", "billed_cost",
        "effective_cost", "billing_currency", "line_items",
    ]  # fmt: skip
    list_filter = ["provider", "account", "billing_period_start"]
    search_fields = ["tag_key", "tag_value", "service_name", "sku_id"]
    list_select_related = ["account", "team", "model", "deployment"]
    raw_id_fields = ["account", "team", "model", "deployment"]


@admin.register(DailyResourceCost)
class DailyResourceCostAdmin(BulkTableAdmin):
    list_display = [
        "day", "account", "provider", "service_name", "resource", "billed_cost", "effective_cost",
        "billing_currency", "line_items",
    ]  # fmt: skip
    list_filter = ["provider", "account", "billing_period_start"]
    search_fields = ["resource", "service_name"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]


# --- Rules, allocation results, estimates, rates, syncs --------------------------------------------
# Rules and price data are edited here by operators; the results of allocation, rollups and syncs
# are written by pipelines and shown read-only.


@admin.register(DimensionRule)
class DimensionRuleAdmin(GovernedAdmin):
    list_display = [
        "priority", "name", "match_field", "tag_key", "operator", "value", "is_active", "evaluation_error",
    ]  # fmt: skip
    list_filter = ["match_field", "is_active"]
    readonly_fields = ["evaluation_error"]
    search_fields = ["name", "value", "tag_key"]
    raw_id_fields = ["account", "set_team", "set_model", "set_deployment"]

    def save_model(self, request: HttpRequest, obj: DimensionRule, form, change: bool) -> None:
        # The same service as the API: validated, audited, and re-applied to history.
        saved = DimensionRule.objects.get(pk=obj.pk) if change else None
        rule, _run = dimension_rule_save(
            rule=saved,
            rule_data={field: getattr(obj, field) for field in RULE_FIELDS},
            actor=request.user,
            remote_addr=_remote_addr(request),
        )
        obj.pk = rule.pk

    def delete_model(self, request: HttpRequest, obj: DimensionRule) -> None:
        dimension_rule_remove(rule=obj, actor=request.user, remote_addr=_remote_addr(request))


class AllocationShareFormSet(BaseInlineFormSet):
    """The rule's shares as a whole: fixed shares must total 100 % (the service's own check)."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        percents = [
            form.cleaned_data["percent"]
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE") and "percent" in form.cleaned_data
        ]
        # The admin applies the rule form's values to self.instance before building the inlines.
        problem = allocation_shares_error(
            name=self.instance.name, method=self.instance.method, percents=percents
        )
        if problem:
            raise ValidationError(problem)


class AllocationShareInline(admin.TabularInline):
    model = AllocationShare
    formset = AllocationShareFormSet
    extra = 0
    raw_id_fields = ["team", "model"]


@admin.register(AllocationRule)
class AllocationRuleAdmin(GovernedAdmin):
    list_display = [
        "priority",
        "name",
        "method",
        "idle_policy",
        "match_deployment",
        "match_tag_value",
        "is_active",
    ]
    list_filter = ["method", "idle_policy", "is_active"]
    search_fields = ["name", "match_tag_value"]
    raw_id_fields = ["account", "match_deployment"]
    inlines = [AllocationShareInline]

    def save_model(self, request: HttpRequest, obj: AllocationRule, form, change: bool) -> None:
        # Saved with its shares in save_related: the rule and its shares are one audited change.
        pass

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        shares = None
        for formset in formsets:
            if formset.model is AllocationShare:
                shares = [
                    {
                        "team_id": getattr(data.get("team"), "pk", None),
                        "model_id": getattr(data.get("model"), "pk", None),
                        "percent": data["percent"],
                    }
                    for data in (inline.cleaned_data for inline in formset.forms)
                    if data and not data.get("DELETE") and data.get("percent") is not None
                ]
                # The service wrote the shares; the admin's change message reads these.
                formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        allocation_rule_save(
            rule=form.instance, shares=shares, actor=request.user, remote_addr=_remote_addr(request)
        )

    def delete_model(self, request: HttpRequest, obj: AllocationRule) -> None:
        allocation_rule_delete(rule=obj, actor=request.user, remote_addr=_remote_addr(request))


class AllocationShareForm(forms.ModelForm):
    """One share edited alone: the rule's shares must still total 100 % with the others as they are."""

    class Meta:
        model = AllocationShare
        fields = ["rule", "team", "model", "percent"]

    def clean(self) -> dict:
        cleaned = super().clean()
        rule, percent = cleaned.get("rule"), cleaned.get("percent")
        if rule is not None and percent is not None:
            others = rule.shares.exclude(pk=self.instance.pk).values_list("percent", flat=True)
            problem = allocation_shares_error(name=rule.name, method=rule.method, percents=[*others, percent])
            if problem:
                raise ValidationError(f"{problem} Edit the shares together on the rule's page.")
        return cleaned


@admin.register(AllocationShare)
class AllocationShareAdmin(admin.ModelAdmin):
    form = AllocationShareForm
    list_display = ["rule", "team", "model", "percent"]
    raw_id_fields = ["rule", "team", "model"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Removing one share alone would leave the others short of 100 %: shares are removed on
        # the rule's page, where the formset checks the total.
        return False

    def save_model(self, request: HttpRequest, obj: AllocationShare, form, change: bool) -> None:
        allocation_share_save(share=obj, actor=request.user, remote_addr=_remote_addr(request))


@admin.register(AllocatedCost)
class AllocatedCostAdmin(BulkTableAdmin):
    list_display = [
        "day", "account", "team", "model", "deployment", "allocated_method_id", "unallocated_reason",
        "billed_cost", "effective_cost", "billing_currency",
    ]  # fmt: skip
    list_filter = ["allocated_method_id", "unallocated_reason"]


@admin.register(UnitCost)
class UnitCostAdmin(BulkTableAdmin):
    list_display = [
        "day", "deployment", "model", "cost_per_1m_input_tokens", "cost_per_1m_output_tokens",
        "cost_per_1k_requests", "currency",
    ]  # fmt: skip


@admin.register(PriceCard)
class PriceCardAdmin(admin.ModelAdmin):
    list_display = ["deployment", "unit", "price", "currency", "valid_from"]
    list_filter = ["unit", "currency"]
    raw_id_fields = ["deployment"]


@admin.register(SpendEstimate)
class SpendEstimateAdmin(BulkTableAdmin):
    list_display = [
        "day",
        "deployment",
        "team",
        "model",
        "estimated_cost",
        "billed_cost",
        "error",
        "currency",
    ]


@admin.register(ExchangeRate)
class ExchangeRateAdmin(GovernedAdmin):
    list_display = ["date", "from_currency", "to_currency", "rate", "source"]
    list_filter = ["from_currency", "to_currency", "source"]
    date_hierarchy = "date"

    def save_model(self, request: HttpRequest, obj: ExchangeRate, form, change: bool) -> None:
        exchange_rate_save(rate=obj, actor=request.user, remote_addr=_remote_addr(request))

    def delete_model(self, request: HttpRequest, obj: ExchangeRate) -> None:
        exchange_rate_delete(rate=obj, actor=request.user, remote_addr=_remote_addr(request))


@admin.register(UsageBatch)
class UsageBatchAdmin(ReadOnlyAdmin):
    list_display = ["reporter", "batch_id", "records", "received_at"]
    search_fields = ["reporter", "batch_id"]


@admin.register(UsageHourly)
class UsageHourlyAdmin(BulkTableAdmin):
    list_display = ["hour", "deployment", "team", "model", "requests", "input_tokens", "output_tokens"]


@admin.register(UsageDaily)
class UsageDailyAdmin(BulkTableAdmin):
    list_display = ["day", "deployment", "team", "model", "requests", "input_tokens", "output_tokens"]


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "account",
        "kind",
        "state",
        "periods_found",
        "periods_changed",
        "error_kind",
        "created_at",
    ]
    list_filter = ["kind", "state", "error_kind"]


@admin.register(BillingPeriodVersion)
class BillingPeriodVersionAdmin(ReadOnlyAdmin):
    list_display = ["account", "billing_period_start", "source_version", "is_final", "restated_after_close"]
    list_filter = ["is_final", "restated_after_close"]


@admin.register(BackgroundRun)
class BackgroundRunAdmin(ReadOnlyAdmin):
    list_display = ["kind", "state", "progress_done", "progress_total", "message", "created_at"]
    list_filter = ["kind", "state"]


@admin.register(EstimateCalibration)
class EstimateCalibrationAdmin(ReadOnlyAdmin):
    # Learned from true-ups by the estimates service; the history is read, never edited.
    list_display = ["deployment", "basis", "factor", "learned_at"]


@admin.register(RuleSuggestion)
class RuleSuggestionAdmin(ReadOnlyAdmin):
    # Accepting or dismissing goes through the audited suggestion services (the Unallocated page and API).
    list_display = ["name", "kind", "state", "account", "untagged_cost", "currency", "confidence"]
    list_filter = ["kind", "state"]


@admin.register(AllocationSuggestion)
class AllocationSuggestionAdmin(ReadOnlyAdmin):
    # Accepting or dismissing goes through attribution.allocation.suggestions (audited, re-allocates).
    list_display = ["name", "kind", "state", "account", "moved_effective_cost", "currency", "confidence"]
    list_filter = ["kind", "state"]
