"""Serializers of the attribution API. Fields are listed explicitly: a new model column is never
published by accident. Related objects appear by slug, the identifier users and gateways know."""

from __future__ import annotations

from rest_framework import serializers

from attribution.api.fields import SlugRelatedField
from attribution.models import CloudAccount, DailyCost, Deployment, IngestRun, ServedModel, Team

MONEY_FIELD = {"max_digits": 34, "decimal_places": 10, "read_only": True}


class CloudAccountSerializer(serializers.ModelSerializer):
    # source_settings is left out on purpose: it is operator configuration (buckets, scopes,
    # credential references), not something API readers need.
    class Meta:
        model = CloudAccount
        fields = ["id", "slug", "name", "provider", "billing_currency", "created_at"]
        read_only_fields = fields


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "slug", "name", "cost_center", "created_at"]
        read_only_fields = fields


class ServedModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = ServedModel
        fields = ["id", "slug", "name", "family", "created_at"]
        read_only_fields = fields


class DeploymentSerializer(serializers.ModelSerializer):
    model = SlugRelatedField(slug_field="slug", read_only=True)
    account = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    endpoint_url = serializers.URLField(read_only=True, allow_null=True, help_text="null when not known")

    def to_representation(self, instance: Deployment) -> dict:
        data = super().to_representation(instance)
        # The model stores "" for "not known"; the schema promises a URI, so unknown is null.
        data["endpoint_url"] = data["endpoint_url"] or None
        return data

    class Meta:
        model = Deployment
        fields = [
            "id",
            "slug",
            "model",
            "account",
            "provider",
            "region",
            "accelerator",
            "instance_type",
            "pricing_mode",
            "endpoint_url",
            "capacity_rps",
            "gpu_count",
            "residency_region",
            "state",
            "created_at",
        ]
        read_only_fields = fields


class IngestRunSerializer(serializers.ModelSerializer):
    account = SlugRelatedField(slug_field="slug", read_only=True)
    progress = serializers.FloatField(
        read_only=True, allow_null=True, help_text="bytes_processed / bytes_total, or null when unknown"
    )
    source_sums = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Cost column -> decimal string, in the source",
    )
    database_sums = serializers.DictField(
        child=serializers.CharField(), read_only=True, help_text="Cost column -> decimal string, as loaded"
    )
    warnings = serializers.ListField(
        child=serializers.DictField(),
        read_only=True,
        help_text="Problems that did not fail the run: {kind, rule_id, message}, e.g. kind rule_skipped "
        "for a mapping rule that cannot be evaluated",
    )

    class Meta:
        model = IngestRun
        fields = [
            "id",
            "account",
            "billing_period_start",
            "billing_period_end",
            "source_format",
            "fingerprint",
            "state",
            "rows_in_source",
            "rows_loaded",
            "rows_rejected",
            "rows_processed",
            "bytes_total",
            "bytes_processed",
            "progress",
            "source_sums",
            "database_sums",
            "error",
            "warnings",
            "superseded_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class DailyCostSerializer(serializers.ModelSerializer):
    account = SlugRelatedField(slug_field="slug", read_only=True)
    team = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    model = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    deployment = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = DailyCost
        fields = [
            "id",
            "day",
            "account",
            "billing_period_start",
            "provider",
            "service_name",
            "region_id",
            "sku_id",
            "team",
            "model",
            "deployment",
            "charge_category",
            "billing_currency",
            "billed_cost",
            "effective_cost",
            "list_cost",
            "consumed_quantity",
            "line_items",
        ]
        read_only_fields = fields


class DailyCostSummaryRowSerializer(serializers.Serializer):
    key = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The group: provider code, team/model/deployment slug, SKU, or ISO day. "
        "null means cost not attributed to any team/model/deployment, or without a SKU.",
    )
    billing_currency = serializers.CharField(read_only=True)
    billed_cost = serializers.DecimalField(**MONEY_FIELD)
    effective_cost = serializers.DecimalField(**MONEY_FIELD)
    list_cost = serializers.DecimalField(**MONEY_FIELD)
    line_items = serializers.IntegerField(read_only=True)


class DailyCostSummarySerializer(serializers.Serializer):
    group_by = serializers.CharField(read_only=True)
    results = DailyCostSummaryRowSerializer(many=True, read_only=True)
