from __future__ import annotations

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView


class CanReadAuditLog(permissions.BasePermission):
    """The audit log: governance.view_auditevent (admin and finance, see setup_roles)."""

    message = "Reading the audit log needs the governance.view_auditevent permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("governance.view_auditevent"))
