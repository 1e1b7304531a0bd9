"""Who may change which budgets, quotas and channels. Services call these before writing; querysets'
`restrict(user)` decide what is read. Permissions, not group names (which role holds which is
said in setup_roles):

- governance.edit_all_teams (admin, finance, superusers): any scope, organisation-wide included;
- governance.change_budget (team leads) with a lead Membership: the teams they lead;
- everyone else: nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from governance.choices import MembershipRole
from governance.models import Membership

AnyUser = AbstractBaseUser | AnonymousUser | None


def user_edits_any_scope(*, user: AnyUser) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.has_perm("governance.edit_all_teams")


def user_led_team_ids(*, user: AnyUser) -> set[int]:
    if user is None or not user.is_authenticated or not user.has_perm("governance.change_budget"):
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
            raise PermissionDenied(
                f"Changing an organisation-wide {what} needs the governance.edit_all_teams permission."
            )
        raise PermissionDenied(f"You may change a {what} only for a team you lead.")
