"""Read-only governance endpoints. Scoping lives in the base class and the querysets' restrict()."""

from __future__ import annotations

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


class AuditEventViewSet(RestrictedReadOnlyViewSet):
    """The audit log of changes to budgets, quotas, policies and credentials. Admin and finance only."""

    permission_classes = [*RestrictedReadOnlyViewSet.permission_classes, CanReadAuditLog]
    queryset = AuditEvent.objects.order_by("-created_at", "-id")
    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilterSet
