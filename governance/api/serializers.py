"""Serializers of the governance API, with explicit fields."""

from __future__ import annotations

from rest_framework import serializers

from attribution.api.fields import SlugRelatedField
from attribution.choices import Provider
from governance.models import AuditEvent, Budget, BudgetEvent, BudgetThreshold, Membership


class MembershipSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(source="team.slug", read_only=True)
    name = serializers.CharField(source="team.name", read_only=True)

    class Meta:
        model = Membership
        fields = ["slug", "name", "role"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    username = serializers.CharField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    roles = serializers.ListField(child=serializers.CharField(), read_only=True, help_text="Group names")
    teams = MembershipSerializer(many=True, read_only=True)


class BudgetThresholdSerializer(serializers.ModelSerializer):
    class Meta:
        model = BudgetThreshold
        fields = ["id", "percent", "amount", "basis", "action", "throttle_share"]
        read_only_fields = fields


class BudgetSerializer(serializers.ModelSerializer):
    team = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    model = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    account = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    thresholds = BudgetThresholdSerializer(many=True, read_only=True)
    # Declared so the schema says "" (any provider) is a value, as it is in the data.
    provider = serializers.ChoiceField(choices=Provider.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Budget
        fields = [
            "id",
            "name",
            "team",
            "model",
            "provider",
            "account",
            "period",
            "timezone",
            "fiscal_year_start_month",
            "custom_start",
            "custom_end",
            "amount",
            "currency",
            "action",
            "is_active",
            "thresholds",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "remote_addr",
            "created_at",
        ]
        read_only_fields = fields


class BudgetEventSerializer(serializers.ModelSerializer):
    spend_total = serializers.DecimalField(max_digits=24, decimal_places=10, read_only=True)

    class Meta:
        model = BudgetEvent
        fields = [
            "id",
            "created_at",
            "kind",
            "action",
            "threshold",
            "threshold_label",
            "basis",
            "period_start",
            "period_end",
            "currency",
            "spend_billed",
            "spend_estimated",
            "spend_total",
            "forecast",
            "limit_amount",
            "lift_reason",
        ]
        read_only_fields = fields
