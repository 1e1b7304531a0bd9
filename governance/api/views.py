"""Read-only governance endpoints. Scoping lives in the base class and the querysets' restrict()."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import generics, permissions
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api.base import RestrictedReadOnlyViewSet, TokenScopePermission
from governance.api import filters, serializers
from governance.api.permissions import CanReadAuditLog
from governance.models import AuditEvent, Membership


class MeView(generics.GenericAPIView):
    """Who the caller is: username, roles and the teams they belong to."""

    permission_classes = [permissions.IsAuthenticated, TokenScopePermission]
    serializer_class = serializers.MeSerializer
    pagination_class = None
    filter_backends: list = []

    def get(self, request: Request) -> Response:
        user = request.user
        memberships = Membership.objects.filter(user=user).select_related("team").order_by("team__name")
        payload = {
            "username": user.get_username(),
            "is_superuser": user.is_superuser,
            "roles": sorted(user.groups.values_list("name", flat=True)),
            "teams": memberships,
        }
        return Response(self.get_serializer(payload).data)


_AUDIT_ANSWER = OpenApiExample(
    "A threshold changed by a team lead",
    response_only=True,
    value={
        "id": 311, "actor_label": "lena", "action": "update", "object_type": "governance.budgetthreshold",
        "object_id": "31", "object_repr": "Search monthly: 80.00% actual",
        "changes": {"percent": ["80.00", "85.00"]}, "remote_addr": "10.0.0.7",
        "created_at": "2026-11-20T09:12:03Z",
    },
)  # fmt: skip


@extend_schema_view(
    list=extend_schema(examples=[_AUDIT_ANSWER]), retrieve=extend_schema(examples=[_AUDIT_ANSWER])
)
class AuditEventViewSet(RestrictedReadOnlyViewSet):
    """The audit log of changes to budgets, quotas, policies and credentials. Admin and finance only."""

    permission_classes = [*RestrictedReadOnlyViewSet.permission_classes, CanReadAuditLog]
    queryset = AuditEvent.objects.order_by("-created_at", "-id")
    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilterSet
