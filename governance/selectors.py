"""Reads about roles: who a user is and which teams they may see or manage.

Roles are Django groups named after governance.choices.Role; team-level rights are Memberships.
Row scoping itself lives in the querysets' `restrict(user)`; these helpers answer the questions a
page or form asks about the user (what to show, which teams to offer).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from attribution.models import Team
from governance.choices import MembershipRole, Role
from governance.models import Membership

# Roles that read every row, including cost no team owns.
UNRESTRICTED_ROLES: tuple[str, ...] = (Role.ADMIN, Role.FINANCE)
# Highest first: a user in several groups is shown as the most powerful one.
_ROLE_ORDER: tuple[Role, ...] = (Role.ADMIN, Role.FINANCE, Role.TEAM_LEAD, Role.VIEWER)


def user_roles(*, user: AbstractBaseUser | AnonymousUser) -> list[Role]:
    if not user.is_authenticated:
        return []
    names = set(user.groups.values_list("name", flat=True))
    return [role for role in _ROLE_ORDER if role.value in names]


def user_primary_role(*, user: AbstractBaseUser | AnonymousUser) -> Role | None:
    if user.is_authenticated and user.is_superuser:
        return Role.ADMIN
    roles = user_roles(user=user)
    return roles[0] if roles else None


def user_sees_all_teams(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Admin, finance and superusers read everything, unallocated cost included."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name__in=UNRESTRICTED_ROLES).exists()


def user_manages_all_teams(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Only admins edit budgets and quotas of any team (finance reads, it does not edit)."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name=Role.ADMIN).exists()


def user_lead_team_ids(*, user: AbstractBaseUser | AnonymousUser) -> set[int]:
    """Teams whose budgets and quotas this user may edit as their lead."""
    if not user.is_authenticated:
        return set()
    return set(
        Membership.objects.filter(user=user, role=MembershipRole.LEAD).values_list("team_id", flat=True)
    )


def user_manageable_teams(*, user: AbstractBaseUser | AnonymousUser):
    """Teams offered when this user creates or edits a budget or quota."""
    if user_manages_all_teams(user=user):
        return Team.objects.all()
    if not user.is_authenticated or not user.groups.filter(name=Role.TEAM_LEAD).exists():
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user, memberships__role=MembershipRole.LEAD)


def user_can_manage_team(*, user: AbstractBaseUser | AnonymousUser, team_id: int | None) -> bool:
    """May this user edit budgets/quotas of this team? Organisation-wide (no team) is admin only."""
    if user_manages_all_teams(user=user):
        return True
    if team_id is None or not user.is_authenticated:
        return False
    return user.groups.filter(name=Role.TEAM_LEAD).exists() and team_id in user_lead_team_ids(user=user)
