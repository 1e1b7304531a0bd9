"""The mapping rules API: list, create, update, delete, preview, re-apply, background runs.

Reads are open to every authenticated caller (rules name teams and accounts, not amounts); writes
need the model permission (`attribution.add/change/delete_dimensionrule`), preview needs add or
change, and re-applying to history `attribution.reapply_rules` (who holds them: setup_roles).
Each saved change is audited by the service and starts (or joins) a background re-application
of the rules to history; its id comes back as `reapply_run`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, permissions, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.api.base import TokenScopePermission
from attribution.api.fields import SlugRelatedField
from attribution.mapping.services import (
    dimension_rule_preview,
    dimension_rule_remove,
    dimension_rule_save,
    rules_reapply_request,
)
from attribution.models import BackgroundRun, CloudAccount, Deployment, DimensionRule, ServedModel, Team

# The permission each write method needs (granted to roles by setup_roles).
RULE_WRITE_PERMISSIONS = {
    "POST": "attribution.add_dimensionrule",
    "PUT": "attribution.change_dimensionrule",
    "PATCH": "attribution.change_dimensionrule",
    "DELETE": "attribution.delete_dimensionrule",
}
REAPPLY_PERMISSION = "attribution.reapply_rules"
# The narrow API token scope for changing, previewing and re-applying rules (`write` also works).
RULES_WRITE_SCOPE = "write:dimension_rules"


def user_may_edit_rules(user) -> bool:
    """Create or change rules (what the page's editor and the preview need)."""
    return bool(
        user
        and (
            user.has_perm("attribution.add_dimensionrule")
            or user.has_perm("attribution.change_dimensionrule")
        )
    )


class CanEditRules(permissions.BasePermission):
    """Preview: the permission to add or change rules."""

    message = (
        "Previewing mapping rules needs the attribution.add_dimensionrule or change_dimensionrule permission."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        return user_may_edit_rules(user)


class RulesWritePermission(permissions.BasePermission):
    """Safe methods: any authenticated caller. Others: the model permission of the method."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        needed = RULE_WRITE_PERMISSIONS.get(request.method or "")
        self.message = f"This change needs the {needed} permission."
        return bool(needed and request.user and request.user.has_perm(needed))


class CanReapplyRules(permissions.BasePermission):
    message = f"Re-applying the rules to history needs the {REAPPLY_PERMISSION} permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(REAPPLY_PERMISSION))


class DimensionRuleSerializer(serializers.ModelSerializer):
    account = SlugRelatedField(
        slug_field="slug", queryset=CloudAccount.objects.all(), allow_null=True, required=False
    )
    set_team = SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    set_model = SlugRelatedField(
        slug_field="slug", queryset=ServedModel.objects.all(), allow_null=True, required=False
    )
    set_deployment = SlugRelatedField(
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


def _remote_addr(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR")


_WRITE_RESPONSE = inline_serializer(
    "DimensionRuleWriteResponse",
    fields={
        "rule": DimensionRuleSerializer(),
        "reapply_run": serializers.IntegerField(allow_null=True, help_text="null when nothing changed"),
    },
)


@extend_schema_view(
    list=extend_schema(tags=["dimension-rules"]),
    retrieve=extend_schema(tags=["dimension-rules"]),
    create=extend_schema(tags=["dimension-rules"], responses={201: _WRITE_RESPONSE}),
    update=extend_schema(tags=["dimension-rules"], responses={200: _WRITE_RESPONSE}),
    partial_update=extend_schema(tags=["dimension-rules"], responses={200: _WRITE_RESPONSE}),
    destroy=extend_schema(tags=["dimension-rules"]),
)
class DimensionRuleViewSet(viewsets.ModelViewSet):
    """Dimension mapping rules, in the order they apply (priority, then age)."""

    permission_classes = [permissions.IsAuthenticated, TokenScopePermission, RulesWritePermission]
    token_write_scope = RULES_WRITE_SCOPE
    serializer_class = DimensionRuleSerializer
    queryset = DimensionRule.objects.select_related("account", "set_team", "set_model", "set_deployment")
    lookup_value_regex = r"\d+"
    filterset_fields = ["is_active", "match_field"]

    def get_queryset(self):
        return super().get_queryset().order_by("priority", "id")

    def _respond(self, rule: DimensionRule, run: BackgroundRun | None, status_code: int) -> Response:
        return Response(
            {"rule": DimensionRuleSerializer(rule).data, "reapply_run": run.pk if run else None},
            status=status_code,
        )

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            rule, run = dimension_rule_save(
                rule=None,
                rule_data=rule_data_from(serializer.validated_data),
                actor=request.user,
                remote_addr=_remote_addr(request),
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        return self._respond(rule, run, status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        partial = kwargs.pop("partial", False)
        rule = self.get_object()
        serializer = self.get_serializer(rule, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        try:
            rule, run = dimension_rule_save(
                rule=rule,
                rule_data=rule_data_from(serializer.validated_data),
                actor=request.user,
                remote_addr=_remote_addr(request),
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        return self._respond(rule, run, status.HTTP_200_OK)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        run = dimension_rule_remove(
            rule=self.get_object(), actor=request.user, remote_addr=_remote_addr(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT, headers={"X-Reapply-Run": str(run.pk)})


class RulesReapplyView(APIView):
    """Re-apply the mapping rules to every billing period already loaded, as a background run."""

    permission_classes = [permissions.IsAuthenticated, TokenScopePermission, CanReapplyRules]
    token_write_scope = RULES_WRITE_SCOPE

    @extend_schema(
        operation_id="dimension_rules_reapply",
        request=None,
        responses={202: BackgroundRunSerializer},
        tags=["dimension-rules"],
    )
    def post(self, request: Request) -> Response:
        run = rules_reapply_request(actor=request.user, remote_addr=_remote_addr(request))
        return Response(BackgroundRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
