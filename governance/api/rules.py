"""The rules API endpoints that change something: every change is audited, so they live here,
where both the attribution services and the audit log may be used.

Reads are open to every authenticated caller (rules name teams and accounts, not amounts); writes
and re-applying to history need the admin or finance role. Each saved change starts (or joins) a
background re-application of the rules to history; its id comes back as `reapply_run`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.allocation.rules import (
    dimension_rule_create,
    dimension_rule_delete,
    dimension_rule_update,
    rules_reapply_start,
)
from attribution.api.base import TokenScopePermission
from attribution.api.rules import (
    RULES_WRITE_SCOPE,
    BackgroundRunSerializer,
    CanEditRules,
    DimensionRuleSerializer,
    rule_data_from,
    service_errors,
)
from attribution.models import DimensionRule
from governance.services import audit_event_record


def _remote_addr(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR")


class RulesWritePermission(permissions.BasePermission):
    """Safe methods: any authenticated caller (with the read scope for tokens). Others: CanEditRules."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return CanEditRules().has_permission(request, view)


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

    def _respond(self, rule: DimensionRule, run_id: int, status_code: int) -> Response:
        return Response(
            {"rule": DimensionRuleSerializer(rule).data, "reapply_run": run_id}, status=status_code
        )

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = rule_data_from(serializer.validated_data)
        try:
            with transaction.atomic():
                rule = dimension_rule_create(rule_data=data)
                audit_event_record(
                    actor=request.user,
                    action="create",
                    obj=rule,
                    changes=dict(DimensionRuleSerializer(rule).data),
                    remote_addr=_remote_addr(request),
                )
                run = rules_reapply_start(actor_id=request.user.pk)
        except DjangoValidationError as error:
            raise service_errors(error)
        return self._respond(rule, run.pk, status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        partial = kwargs.pop("partial", False)
        rule = self.get_object()
        serializer = self.get_serializer(rule, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                rule, changes = dimension_rule_update(
                    rule=rule, rule_data=rule_data_from(serializer.validated_data)
                )
                run_id = None
                if changes:
                    audit_event_record(
                        actor=request.user,
                        action="update",
                        obj=rule,
                        changes=changes,
                        remote_addr=_remote_addr(request),
                    )
                    run_id = rules_reapply_start(actor_id=request.user.pk).pk
        except DjangoValidationError as error:
            raise service_errors(error)
        return self._respond(rule, run_id, status.HTTP_200_OK)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        rule = self.get_object()
        with transaction.atomic():
            audit_event_record(
                actor=request.user,
                action="delete",
                obj=rule,
                changes=dict(DimensionRuleSerializer(rule).data),
                remote_addr=_remote_addr(request),
            )
            dimension_rule_delete(rule=rule)
            run = rules_reapply_start(actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT, headers={"X-Reapply-Run": str(run.pk)})


class RulesReapplyView(APIView):
    """Re-apply the mapping rules to every billing period already loaded, as a background run."""

    permission_classes = [permissions.IsAuthenticated, TokenScopePermission, CanEditRules]
    token_write_scope = RULES_WRITE_SCOPE

    @extend_schema(
        operation_id="dimension_rules_reapply",
        request=None,
        responses={202: BackgroundRunSerializer},
        tags=["dimension-rules"],
    )
    def post(self, request: Request) -> Response:
        with transaction.atomic():
            run = rules_reapply_start(actor_id=request.user.pk)
            audit_event_record(
                actor=request.user,
                action="reapply_rules",
                obj=run,
                changes={},
                remote_addr=_remote_addr(request),
            )
        return Response(BackgroundRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
