"""Who may change which budgets, quotas and channels. Services call these before writing; querysets'
`restrict(user)` decide what is read.

- admin (or superuser) and finance: any scope, organisation-wide included;
- a team lead: budgets and quotas whose team is one they lead (a team is required);
- viewers and everyone else: nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from governance.choices import MembershipRole, Role
from governance.models import Membership

AnyUser = AbstractBaseUser | AnonymousUser | None


def _groups(user: AnyUser) -> set[str]:
    if user is None or not user.is_authenticated:
        return set()
    return set(user.groups.values_list("name", flat=True))


def user_edits_any_scope(*, user: AnyUser) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.is_superuser or bool(_groups(user) & {Role.ADMIN.value, Role.FINANCE.value})


def user_led_team_ids(*, user: AnyUser) -> set[int]:
    if user is None or not user.is_authenticated or Role.TEAM_LEAD.value not in _groups(user):
        return set()
    return set(
        Membership.objects.filter(user=user, role=MembershipRole.LEAD).values_list("team_id", flat=True)
    )


def user_may_edit_team_scope(*, user: AnyUser, team_id: int | None) -> bool:
    if user_edits_any_scope(user=user):
        return True
    return team_id is not None and team_id in user_led_team_ids(user=user)


def require_team_scope(*, user: AnyUser, team_id: int | None, what: str) -> None:
    if not user_may_edit_team_scope(user=user, team_id=team_id):
        if team_id is None:
            raise PermissionDenied(f"Only admin and finance may change an organisation-wide {what}.")
        raise PermissionDenied(f"You may change a {what} only for a team you lead.")
