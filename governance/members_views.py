"""Settings → Members and roles (admin): every user with their role and teams; an admin assigns the
role (through setup_roles' grants) and the team memberships, audited by governance.member_services.

Viewing needs auth.view_user and changing auth.change_user plus the membership permissions; in the
roles of setup_roles only admin holds them, so finance, leads and viewers get 403."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from attribution.models import Team
from governance import member_services
from governance.choices import Role
from governance.models import Membership
from governance.settings_forms import MemberRoleForm, MembershipForm
from governance.settings_views import form_errors_from

PAGE_SIZE = 50
ROLE_LABELS = dict(Role.choices)


def _role_labels(user) -> list[str]:
    """The user's roles for display (their groups that are roles), from the prefetched groups."""
    return [str(ROLE_LABELS[group.name]) for group in user.groups.all() if group.name in ROLE_LABELS]


def _users():
    return get_user_model().objects.prefetch_related(
        "groups",
        Prefetch("memberships", queryset=Membership.objects.select_related("team").order_by("team__name")),
    )


@login_required
@permission_required("auth.view_user", raise_exception=True)
@require_http_methods(["GET"])
def members(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    users = _users().order_by("username", "id")
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(memberships__team__slug__icontains=query)
        ).distinct()
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page", 1))
    return render(
        request,
        "governance/settings/members.html",
        {
            "page": page,
            "rows": [(user, _role_labels(user)) for user in page.object_list],
            "query": query,
            "may_edit": request.user.has_perm("auth.change_user"),
        },
    )


@login_required
@permission_required("auth.view_user", raise_exception=True)
@require_http_methods(["GET", "POST"])
def member_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(_users(), pk=user_id)
    teams = Team.objects.order_by("name")
    current_roles = [group.name for group in member.groups.all() if group.name in ROLE_LABELS]
    role_form = MemberRoleForm(initial={"role": current_roles[0] if current_roles else ""})
    membership_form = MembershipForm(teams=teams)
    status = 200
    if request.method == "POST":
        action = request.POST.get("form")
        remote_addr = request.META.get("REMOTE_ADDR")
        try:
            if action == "role":
                role_form = MemberRoleForm(request.POST)
                if role_form.is_valid():
                    member_services.member_role_assign(
                        actor=request.user,
                        user=member,
                        role=role_form.cleaned_data["role"],
                        remote_addr=remote_addr,
                    )
                    messages.success(request, f"{member.get_username()}'s role saved.")
                    return redirect("settings_governance:member-edit", user_id=member.pk)
            elif action == "remove":
                membership = get_object_or_404(Membership, pk=request.POST.get("membership"), user=member)
                member_services.membership_remove(
                    actor=request.user, membership=membership, remote_addr=remote_addr
                )
                messages.success(request, f"{member.get_username()} removed from {membership.team.name}.")
                return redirect("settings_governance:member-edit", user_id=member.pk)
            else:
                membership_form = MembershipForm(request.POST, teams=teams)
                if membership_form.is_valid():
                    member_services.membership_set(
                        actor=request.user, user=member, team=membership_form.cleaned_data["team"],
                        role=membership_form.cleaned_data["role"], remote_addr=remote_addr,
                    )  # fmt: skip
                    messages.success(request, f"{member.get_username()}'s team membership saved.")
                    return redirect("settings_governance:member-edit", user_id=member.pk)
        except ValidationError as error:
            form_errors_from(error, role_form if action == "role" else membership_form)
        status = 400
    return render(
        request,
        "governance/settings/member_edit.html",
        {
            "member": member,
            "roles": _role_labels(member),
            "memberships": list(member.memberships.all()),
            "role_form": role_form,
            "membership_form": membership_form,
            "may_edit": request.user.has_perm("auth.change_user"),
        },
        status=status,
    )
