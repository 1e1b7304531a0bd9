"""Create the role groups with their permissions, and optionally demo users. Idempotent.

`--table` prints the README's role table (generated from ROLE_GRANTS)."""

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
# Read by admin and finance only: other roles do not even read other people's token metadata, nor
# the audit log (which names who changed what across all teams).
RESTRICTED_MODELS = ("apitoken", "auditevent")

# THE place that says which role holds which permission. Code checks permissions
# (`user.has_perm("attribution.sync_account")`), never group names; the README's role table is
# checked against this by tests/governance/test_roles.py. "view:all" is every model's view permission of
# the three apps, "view:readable" the same without RESTRICTED_MODELS; admin holds every permission
# there is (it manages users and groups too).
ROLE_GRANTS: dict[Role, tuple[str, ...]] = {
    Role.ADMIN: ("all",),
    Role.FINANCE: (
        "view:all",
        "attribution.view_all_teams",
        "attribution.sync_account",
        "attribution.add_ingestrun",
        "attribution.add_dimensionrule",
        "attribution.change_dimensionrule",
        "attribution.delete_dimensionrule",
        "attribution.reapply_rules",
        "attribution.add_exchangerate",
        "attribution.change_exchangerate",
        "governance.edit_all_teams",
        "governance.add_budget",
        "governance.change_budget",
        "governance.delete_budget",
        "governance.add_budgetthreshold",
        "governance.change_budgetthreshold",
        "governance.delete_budgetthreshold",
        "governance.add_quota",
        "governance.change_quota",
        "governance.delete_quota",
        "governance.add_apitoken",
    ),
    # Team leads edit these kinds of object; *which* teams is decided from memberships where rows
    # are queried and written (selectors, services, the admin), never by Django permissions alone.
    Role.TEAM_LEAD: (
        "view:readable",
        "governance.add_budget",
        "governance.change_budget",
        "governance.delete_budget",
        "governance.add_budgetthreshold",
        "governance.change_budgetthreshold",
        "governance.delete_budgetthreshold",
        "governance.add_quota",
        "governance.change_quota",
        "governance.delete_quota",
        "governance.add_apitoken",
    ),
    Role.VIEWER: ("view:readable",),
}
# What each role may do, in words, for the README's role table (checked by a test).
ROLE_SUMMARY: dict[Role, str] = {
    Role.ADMIN: "everything, including users, groups, API tokens and the Django admin",
    Role.FINANCE: "read every team's costs; start syncs and connection tests; upload billing files "
    "and retry failed ingests; edit and re-apply mapping rules; load exchange rates; edit budgets "
    "and quotas of every team; create their own API tokens",
    Role.TEAM_LEAD: "read the teams they belong to; edit budgets, quotas and channels of the teams they "
    "lead; create their own API tokens",
    Role.VIEWER: "read the teams they belong to",
}


def role_permissions(*, role: Role | str) -> list[Permission]:
    """The permissions `role` holds, from ROLE_GRANTS. Raises LookupError for a name it does not know."""
    role = Role(role)
    domain = Permission.objects.filter(content_type__app_label__in=ROLE_APPS).select_related("content_type")
    chosen: dict[int, Permission] = {}
    for grant in ROLE_GRANTS[role]:
        if grant == "all":
            return list(Permission.objects.all())
        if grant in ("view:all", "view:readable"):
            for perm in domain:
                # Only the model's own view permission: a custom one such as view_all_teams is
                # granted by name, never by prefix.
                if perm.codename == f"view_{perm.content_type.model}" and (
                    grant == "view:all" or perm.content_type.model not in RESTRICTED_MODELS
                ):
                    chosen[perm.pk] = perm
            continue
        app_label, codename = grant.split(".", 1)
        perm = next(
            (p for p in domain if p.content_type.app_label == app_label and p.codename == codename), None
        )
        if perm is None:
            raise LookupError(f"setup_roles grants {grant!r} to {role.value}, but no such permission exists.")
        chosen[perm.pk] = perm
    return list(chosen.values())


def roles_table_markdown() -> str:
    """The README's role table, generated from ROLE_GRANTS and ROLE_SUMMARY."""
    lines = ["| Role | May | Permissions beyond reading |", "|---|---|---|"]
    for role, grants in ROLE_GRANTS.items():
        extra = [grant for grant in grants if not grant.startswith("view:")]
        shown = "all" if extra == ["all"] else ", ".join(f"`{grant}`" for grant in extra) or "none"
        lines.append(f"| `{role.value}` | {ROLE_SUMMARY[role]} | {shown} |")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Create the groups admin, finance, team_lead and viewer with their permissions (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--demo-users",
            action="store_true",
            help="Also create the users admin, finance, lead and viewer (password from DEMO_PASSWORD).",
        )
        parser.add_argument("--table", action="store_true", help="Print the README's role table and exit.")

    def handle(self, *args, demo_users: bool = False, table: bool = False, **options) -> None:
        if table:
            self.stdout.write(roles_table_markdown())
            return
        # Permissions are created by post_migrate; make sure every model has them even when this
        # runs right after a migration in the same process.
        for app_label in ROLE_APPS:
            create_permissions(apps.get_app_config(app_label), verbosity=0)

        with transaction.atomic():
            for role in ROLE_GRANTS:
                permissions = role_permissions(role=role)
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


def user_role_set(*, user, role: Role | str | None) -> list[str]:
    """Give `user` exactly one role (or none): the role's group, converged on ROLE_GRANTS first, replaces
    any other role group; groups that are not roles stay. Returns the role groups before the change.

    Here, beside ROLE_GRANTS, because this is the one module that maps roles to groups; pages assign
    roles through it (governance.member_services) and never look at group names themselves."""
    role_groups = list(Group.objects.filter(name__in=Role.values))
    before = sorted(group.name for group in user.groups.all() if group.name in Role.values)
    user.groups.remove(*role_groups)
    if role:
        role = Role(role)
        group, _ = Group.objects.get_or_create(name=role.value)
        group.permissions.set(role_permissions(role=role))
        user.groups.add(group)
    return before
