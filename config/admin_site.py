"""The Django admin, for superusers only.

The admin bypasses the roles' row scoping (a team lead given staff status would otherwise read
every team's rows there), so finance and team leads work in the Settings pages instead; the admin
stays an operator's tool. A signed-in user who is not a superuser is sent to the admin's login page,
which says they are not authorised, and no admin page or action answers them.
"""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


class SuperuserAdminSite(AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_superuser)


class SuperuserAdminConfig(AdminConfig):
    default_site = "config.admin_site.SuperuserAdminSite"
