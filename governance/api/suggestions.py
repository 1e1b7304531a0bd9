"""Suggested mapping rules: list, edit, accept, dismiss, refresh (attribution/mapping/suggestions.py).

Suggestions are about unallocated cost, which only admin and finance see, so every endpoint needs
one of those roles (CanEditRules). Every decision is audited; accepting creates the rule through
the same service as the rules API, audits its creation, and starts (or joins) the re-application
of the rules to history, all in one transaction. Nothing is ever applied without a person.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api.base import TokenHasReadScope
from attribution.api.fields import SlugRelatedField
from attribution.api.rules import CanEditRules, DimensionRuleSerializer, service_errors
from attribution.mapping.services import rules_reapply_start
from attribution.mapping.suggestions import (
    rule_suggestion_accept,
    rule_suggestion_dismiss,
    rule_suggestion_update,
    rule_suggestions_refresh,
)
from attribution.models import RuleSuggestion, ServedModel, Team
from governance.services import audit_event_record

MONEY = {"max_digits": 34, "decimal_places": 10, "read_only": True}


class RuleSuggestionSerializer(serializers.ModelSerializer):
    account = SlugRelatedField(slug_field="slug", read_only=True)
    set_team = SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False
    )
    set_model = SlugRelatedField(
        slug_field="slug", queryset=ServedModel.objects.all(), allow_null=True, required=False
    )
    untagged_cost = serializers.DecimalField(**MONEY, help_text="Untagged billed cost the pattern covers")
    confidence = serializers.DecimalField(max_digits=5, decimal_places=4, read_only=True)
    evidence = serializers.JSONField(read_only=True, help_text="Tagged resources sharing the pattern, purity")
    preview = serializers.JSONField(read_only=True, help_text="What the rule would move (rule preview)")
    rule = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The rule created on accept")

    class Meta:
        model = RuleSuggestion
        fields = [
            "id",
            "kind",
            "state",
            "name",
            "account",
            "match_field",
            "tag_key",
            "operator",
            "value",
            "set_team",
            "set_model",
            "confidence",
            "currency",
            "untagged_cost",
            "untagged_resources",
            "evidence",
            "preview",
            "rule",
            "decided_at",
            "updated_at",
        ]
        read_only_fields = ["id", "kind", "state", "account", "currency", "untagged_resources", "decided_at"]
        validators: list = []


def _remote_addr(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR")


_ACCEPT_RESPONSE = inline_serializer(
    "RuleSuggestionAcceptResponse",
    fields={
        "suggestion": RuleSuggestionSerializer(),
        "rule": DimensionRuleSerializer(),
        "reapply_run": serializers.IntegerField(),
    },
)


class RuleSuggestionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Suggested mapping rules for untagged cost, largest first. `?state=open|accepted|dismissed`."""

    permission_classes = [permissions.IsAuthenticated, TokenHasReadScope, CanEditRules]
    serializer_class = RuleSuggestionSerializer
    queryset = RuleSuggestion.objects.select_related("account", "set_team", "set_model")
    lookup_value_regex = r"\d+"
    filterset_fields = ["state", "kind"]
    pagination_class = None

    def get_queryset(self):
        return super().get_queryset().order_by("-untagged_cost", "id")

    @extend_schema(request=RuleSuggestionSerializer, responses=RuleSuggestionSerializer)
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        """Edit an open suggestion (name, field, tag key, operator, value, team, model) before accepting."""
        suggestion = self.get_object()
        serializer = self.get_serializer(suggestion, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = {}
        for name, value in serializer.validated_data.items():
            if name in ("set_team", "set_model"):
                data[f"{name}_id"] = value.pk if value is not None else None
            else:
                data[name] = value
        try:
            with transaction.atomic():
                suggestion, changes = rule_suggestion_update(suggestion_id=suggestion.pk, data=data)
                if changes:
                    audit_event_record(
                        actor=request.user,
                        action="update",
                        obj=suggestion,
                        changes={key: [str(old), str(new)] for key, (old, new) in changes.items()},
                        remote_addr=_remote_addr(request),
                    )
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(RuleSuggestionSerializer(suggestion).data)

    @extend_schema(request=None, responses={201: _ACCEPT_RESPONSE})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        """Create the suggested rule (audited) and re-apply the rules to history in the background."""
        suggestion = self.get_object()
        try:
            with transaction.atomic():
                # The rule's creation is audited by the mapping service; this records the decision.
                suggestion, rule = rule_suggestion_accept(
                    suggestion_id=suggestion.pk,
                    actor_id=request.user.pk,
                    actor=request.user,
                    remote_addr=_remote_addr(request),
                )
                audit_event_record(
                    actor=request.user,
                    action="accept",
                    obj=suggestion,
                    changes={"rule": rule.pk},
                    remote_addr=_remote_addr(request),
                )
                run = rules_reapply_start(actor_id=request.user.pk)
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(
            {
                "suggestion": RuleSuggestionSerializer(suggestion).data,
                "rule": DimensionRuleSerializer(rule).data,
                "reapply_run": run.pk,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses=RuleSuggestionSerializer)
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str | None = None) -> Response:
        """Dismiss: it stays dismissed, whatever later refreshes find."""
        suggestion = self.get_object()
        try:
            with transaction.atomic():
                suggestion = rule_suggestion_dismiss(suggestion_id=suggestion.pk, actor_id=request.user.pk)
                audit_event_record(
                    actor=request.user,
                    action="dismiss",
                    obj=suggestion,
                    changes={},
                    remote_addr=_remote_addr(request),
                )
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(RuleSuggestionSerializer(suggestion).data)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "RuleSuggestionRefreshResponse",
            fields={
                name: serializers.IntegerField() for name in ("created", "updated", "removed", "kept_decided")
            },
        ),
    )
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        """Recompute the suggestions from the current line items (decisions are kept)."""
        return Response(rule_suggestions_refresh().as_dict())
