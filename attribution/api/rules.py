"""Dimension-rule serializers and the read side of the rules API: preview and background runs.

Writes of rules (create, update, delete, re-apply) are audited, and the audit log lives in
governance, which this layer may not import: those views are in governance/api/rules.py and use
the serializers defined here.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.allocation.rules import dimension_rule_preview
from attribution.api.base import TokenScopePermission
from attribution.models import BackgroundRun, CloudAccount, Deployment, DimensionRule, ServedModel, Team

# Role names as governance defines them (governance.choices.Role); literal here, as in
# ScopedQuerySet, because this layer does not import governance.
RULE_EDITOR_ROLES = ("admin", "finance")
# The narrow API token scope for changing, previewing and re-applying rules (`write` also works).
RULES_WRITE_SCOPE = "write:dimension_rules"


class CanEditRules(permissions.BasePermission):
    message = "Only the admin and finance roles may change or preview mapping rules."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        return bool(user.is_superuser or user.groups.filter(name__in=RULE_EDITOR_ROLES).exists())


class DimensionRuleSerializer(serializers.ModelSerializer):
    account = serializers.SlugRelatedField(
        slug_field="slug", queryset=CloudAccount.objects.all(), allow_null=True, required=False
    )
    set_team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    set_model = serializers.SlugRelatedField(
        slug_field="slug", queryset=ServedModel.objects.all(), allow_null=True, required=False
    )
    set_deployment = serializers.SlugRelatedField(
        slug_field="slug", queryset=Deployment.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = DimensionRule
        fields = [
            "id",
            "name",
            "priority",
            "account",
            "match_field",
            "tag_key",
            "operator",
            "value",
            "set_team",
            "set_model",
            "set_deployment",
            "is_active",
            "evaluation_error",
            "created_at",
            "updated_at",
        ]
        # evaluation_error: why ingests skip this rule ("" = it evaluates); cleared when it is fixed.
        read_only_fields = ["id", "evaluation_error", "created_at", "updated_at"]
        # Model-level constraints are checked by the service with messages that say what to do.
        validators: list = []


def rule_data_from(validated: dict[str, Any]) -> dict[str, Any]:
    """Serializer output (objects) -> the service's rule_data (ids)."""
    data = dict(validated)
    for field in ("account", "set_team", "set_model", "set_deployment"):
        if field in data:
            value = data.pop(field)
            data[f"{field}_id"] = value.pk if value is not None else None
    return data


def service_errors(error: DjangoValidationError) -> ValidationError:
    """Django ValidationError from a service -> DRF's 400, field by field."""
    if hasattr(error, "message_dict"):
        return ValidationError(error.message_dict)
    return ValidationError({"detail": error.messages})


class RulePreviewRequestSerializer(DimensionRuleSerializer):
    rule_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Preview an edit of this saved rule (its saved form is left out)",
    )
    delete = serializers.BooleanField(required=False, default=False, help_text="Preview deleting rule_id")

    class Meta(DimensionRuleSerializer.Meta):
        fields = [*DimensionRuleSerializer.Meta.fields, "rule_id", "delete"]
        extra_kwargs = {"name": {"required": False}}


class PartyRefSerializer(serializers.Serializer):
    team = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    deployment = serializers.CharField(allow_null=True)


class RuleMoveSerializer(serializers.Serializer):
    # `from` is a Python keyword: declared through the fields mapping below.
    to = PartyRefSerializer()
    currency = serializers.CharField()
    line_items = serializers.IntegerField()
    billed_cost = serializers.DecimalField(max_digits=34, decimal_places=10)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = PartyRefSerializer()
        return fields


class RulePreviewSerializer(serializers.Serializer):
    line_items = serializers.IntegerField(help_text="Line items whose team/model/deployment would change")
    billed_cost = serializers.DictField(
        child=serializers.DecimalField(max_digits=34, decimal_places=10),
        help_text="BilledCost moved, per currency",
    )
    moves = RuleMoveSerializer(many=True)
    moves_truncated = serializers.BooleanField()


class RulePreviewView(generics.GenericAPIView):
    """What a rule would move before it is saved: dollars and line items, from where to where."""

    permission_classes = [permissions.IsAuthenticated, TokenScopePermission, CanEditRules]
    token_write_scope = RULES_WRITE_SCOPE
    serializer_class = RulePreviewRequestSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        operation_id="dimension_rules_preview",
        request=RulePreviewRequestSerializer,
        responses={200: RulePreviewSerializer},
        examples=[
            OpenApiExample(
                "Map the ML project to the search team",
                value={
                    "name": "ML project is search",
                    "priority": 50,
                    "match_field": "sub_account_id",
                    "operator": "equals",
                    "value": "acme-ml-prod",
                    "set_team": "search",
                },
                request_only=True,
            )
        ],
        tags=["dimension-rules"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = rule_data_from(serializer.validated_data)
        rule_id = data.pop("rule_id", None)
        if rule_id is not None:
            data["id"] = rule_id
        data.setdefault("name", "preview")
        if data.get("delete") and rule_id is None:
            raise ValidationError({"rule_id": "Give the id of the rule whose deletion to preview."})
        try:
            preview = dimension_rule_preview(rule_data=data)
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(preview)


class BackgroundRunSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField(help_text="0..1, null until the total is known")
    # A plain string in the schema: an enum named "state" would collide with the ingest runs' one.
    state = serializers.CharField(read_only=True, help_text="pending, running, succeeded or failed")

    class Meta:
        model = BackgroundRun
        fields = [
            "id",
            "kind",
            "state",
            "progress_done",
            "progress_total",
            "progress",
            "message",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_progress(self, run: BackgroundRun) -> float | None:
        if run.state == "succeeded":
            return 1.0
        if not run.progress_total:
            return None
        return min(1.0, run.progress_done / run.progress_total)


class BackgroundRunView(generics.RetrieveAPIView):
    """A long run started from the UI or API (re-applying rules to history...), with its progress."""

    permission_classes = [permissions.IsAuthenticated, TokenScopePermission]
    serializer_class = BackgroundRunSerializer
    queryset = BackgroundRun.objects.all()
    filter_backends: list = []

    @extend_schema(operation_id="background_runs_retrieve", tags=["background-runs"])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("dimension-rules/preview", RulePreviewView.as_view(), name="dimension-rule-preview"),
    path("background-runs/<int:pk>", BackgroundRunView.as_view(), name="background-run-detail"),
]
