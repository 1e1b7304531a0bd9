"""Writes of the Members and roles page: a user's role and their team memberships, audited.

Which group a role is, and which permissions it holds, is said only in setup_roles (`user_role_set`
and ROLE_GRANTS); this module asks it and records who changed what."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from attribution.models import Team
from governance.choices import MembershipRole, Role
from governance.management.commands.setup_roles import user_role_set
from governance.models import Membership
from governance.services import audit_event_record


def member_role_assign(
    *, actor: AbstractBaseUser, user: AbstractBaseUser, role: str, remote_addr: str | None = None
) -> None:
    """Give `user` the role `role` ("" = none). Needs auth.change_user; a superuser's role is changed
    only by a superuser, and nobody removes their own admin role (they would lock themselves out)."""
    if not actor.has_perm("auth.change_user"):
        raise PermissionDenied("Assigning roles needs the auth.change_user permission (admin).")
    if user.is_superuser and not actor.is_superuser:
        raise PermissionDenied("Only a superuser changes a superuser's role.")
    if role and role not in Role.values:
        raise ValidationError({"role": [f"Unknown role {role!r}; one of {', '.join(Role.values)}."]})
    if user.pk == actor.pk and role != Role.ADMIN and not actor.is_superuser:
        raise ValidationError({"role": ["You cannot take the admin role from yourself; ask another admin."]})
    with transaction.atomic():
        before = user_role_set(user=user, role=role or None)
        after = [role] if role else []
        if before != after:
            audit_event_record(
                actor=actor, action="role_assign", obj=user,
                changes={"before": {"roles": before}, "after": {"roles": after}}, remote_addr=remote_addr,
            )  # fmt: skip


def membership_set(
    *, actor: AbstractBaseUser, user: AbstractBaseUser, team: Team, role: str, remote_addr: str | None = None
) -> Membership:
    """Add `user` to `team` as `role` (lead or member), or change their role there."""
    if not actor.has_perms(("governance.add_membership", "governance.change_membership")):
        raise PermissionDenied("Changing team memberships needs the membership permissions (admin).")
    if role not in MembershipRole.values:
        raise ValidationError(
            {"role": [f"Unknown team role {role!r}; one of {', '.join(MembershipRole.values)}."]}
        )
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(user=user, team=team).first()
        if current is not None and current.role == role:
            return current
        before = current.role if current else None
        membership, _ = Membership.objects.update_or_create(user=user, team=team, defaults={"role": role})
        audit_event_record(
            actor=actor, action="create" if before is None else "update", obj=membership,
            changes={"before": {"role": before} if before else None,
                     "after": {"user": user.get_username(), "team": team.slug, "role": role}},
            remote_addr=remote_addr,
        )  # fmt: skip
    return membership


def membership_remove(
    *, actor: AbstractBaseUser, membership: Membership, remote_addr: str | None = None
) -> None:
    if not actor.has_perm("governance.delete_membership"):
        raise PermissionDenied("Removing team memberships needs the governance.delete_membership permission.")
    with transaction.atomic():
        audit_event_record(
            actor=actor, action="delete", obj=membership,
            changes={"before": {"user": membership.user.get_username(), "team": membership.team.slug,
                                "role": membership.role}, "after": None},
            remote_addr=remote_addr,
        )  # fmt: skip
        membership.delete()
