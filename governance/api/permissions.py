from __future__ import annotations

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from governance.choices import Role

# Roles that read everything across teams.
READ_ALL_ROLES = (Role.ADMIN.value, Role.FINANCE.value)


class IsAdminOrFinance(permissions.BasePermission):
    message = "Only the admin and finance roles may read this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        return user.is_superuser or user.groups.filter(name__in=READ_ALL_ROLES).exists()
