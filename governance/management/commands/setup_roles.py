"""Create the role groups with their model permissions, and optionally demo users. Idempotent."""

from __future__ import annotations

import os

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from attribution.models import Team
from governance.choices import MembershipRole, Role
from governance.models import Membership

ROLE_APPS = ("attribution", "governance", "routing")
DEFAULT_DEMO_PASSWORD = "inferensys-demo"
# Team leads edit these kinds of object; *which* teams is decided from memberships where rows are
# queried and written (selectors, services, the admin), never by Django permissions alone.
TEAM_LEAD_EDITS = ("budget", "budgetthreshold", "quota")
# Credentials are for admins only: other roles do not even read other people's token metadata.
ADMIN_ONLY_MODELS = ("apitoken",)


def _permissions_by_role() -> dict[str, list[Permission]]:
    domain = Permission.objects.filter(content_type__app_label__in=ROLE_APPS).select_related("content_type")
    view = [perm for perm in domain if perm.codename.startswith("view_")]
    readable = [perm for perm in view if perm.content_type.model not in ADMIN_ONLY_MODELS]
    lead_edits = [
        perm
        for perm in domain
        if perm.content_type.model in TEAM_LEAD_EDITS
        and perm.codename.split("_", 1)[0] in ("add", "change", "delete")
    ]
    return {
        # Admins manage users and groups too, so they get every permission there is.
        Role.ADMIN: list(Permission.objects.all()),
        Role.FINANCE: view,
        Role.TEAM_LEAD: readable + lead_edits,
        Role.VIEWER: readable,
    }


class Command(BaseCommand):
    help = "Create the groups admin, finance, team_lead and viewer with their permissions (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--demo-users",
            action="store_true",
            help="Also create the users admin, finance, lead and viewer (password from DEMO_PASSWORD).",
        )

    def handle(self, *args, demo_users: bool = False, **options) -> None:
        # Permissions are created by post_migrate; make sure every model has them even when this
        # runs right after a migration in the same process.
        for app_label in ROLE_APPS:
            create_permissions(apps.get_app_config(app_label), verbosity=0)

        with transaction.atomic():
            for role, permissions in _permissions_by_role().items():
                group, created = Group.objects.get_or_create(name=role.value)
                # set() replaces: re-running converges on exactly this list, whatever was there.
                group.permissions.set(permissions)
                verb = "Created" if created else "Updated"
                self.stdout.write(f"{verb} group {role.value}: {len(permissions)} permissions")
            if demo_users:
                rows = self._demo_users()
        if demo_users:
            self._print_logins(rows)

    def _demo_users(self) -> list[tuple[str, str, str, str]]:
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
        teams = list(Team.objects.order_by("slug")[:2])
        specs = [
            # username, group, superuser/staff, memberships [(team, role)]
            ("admin", Role.ADMIN, True, []),
            ("finance", Role.FINANCE, False, []),
            ("lead", Role.TEAM_LEAD, False, [(team, MembershipRole.LEAD) for team in teams]),
            ("viewer", Role.VIEWER, False, [(team, MembershipRole.MEMBER) for team in teams[:1]]),
        ]
        rows = []
        user_model = get_user_model()
        for username, role, is_admin, memberships in specs:
            user, _ = user_model.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            user.is_superuser = is_admin
            user.is_staff = is_admin
            user.is_active = True
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=role.value)])
            for team, membership_role in memberships:
                Membership.objects.update_or_create(user=user, team=team, defaults={"role": membership_role})
            if memberships:
                teams_label = ", ".join(team.slug for team, _ in memberships)
            elif role in (Role.ADMIN, Role.FINANCE):
                teams_label = "all"
            else:
                teams_label = "none (no teams yet)"
            rows.append((username, password, role.label, teams_label))
        return rows

    def _print_logins(self, rows: list[tuple[str, str, str, str]]) -> None:
        header = ("Username", "Password", "Role", "Teams")
        widths = [max(len(str(row[index])) for row in [header, *rows]) for index in range(len(header))]
        line = "  ".join("-" * width for width in widths)
        self.stdout.write("")
        self.stdout.write("Demo logins:")
        self.stdout.write("  ".join(text.ljust(width) for text, width in zip(header, widths, strict=True)))
        self.stdout.write(line)
        for row in rows:
            self.stdout.write(
                "  ".join(str(text).ljust(width) for text, width in zip(row, widths, strict=True))
            )
