"""setup_roles: groups with the right permissions, demo users, idempotent; role selectors."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from governance import selectors
from governance.choices import Role
from governance.management.commands.setup_roles import ROLE_GRANTS, role_permissions, roles_table_markdown
from governance.models import Membership
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("setup_roles", *args, stdout=out)
    return out.getvalue()


def _codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


def test_it_creates_the_four_groups_with_their_permissions():
    _run()
    assert set(Group.objects.values_list("name", flat=True)) >= {"admin", "finance", "team_lead", "viewer"}

    admin = _codenames("admin")
    assert {"change_budget", "delete_cloudaccount", "add_gateway", "change_user", "view_apitoken"} <= admin

    finance = _codenames("finance")
    assert {"view_dailycost", "view_budget", "view_auditevent", "view_policydocument"} <= finance
    # Finance reads everything, syncs, edits mapping rules and loads rates; it edits no accounts,
    # allocation rules, teams or routing.
    assert {
        "view_all_teams",
        "sync_account",
        "change_dimensionrule",
        "reapply_rules",
        "add_exchangerate",
    } <= finance
    assert (
        not {"change_cloudaccount", "change_allocationrule", "change_team", "change_routingpolicy"} & finance
    )

    lead = _codenames("team_lead")
    assert {
        "add_budget",
        "change_budget",
        "delete_budget",
        "add_budgetthreshold",
        "change_quota",
        "delete_quota",
        "view_dailycost",
        "view_gateway",
    } <= lead
    assert not {"change_team", "change_membership", "change_routingpolicy", "add_cloudaccount"} & lead
    assert not {"view_apitoken", "view_auditevent", "view_all_teams", "sync_account", "edit_all_teams"} & lead

    viewer = _codenames("viewer")
    assert "view_dailycost" in viewer
    assert all(codename.startswith("view_") for codename in viewer)
    assert "view_apitoken" not in viewer


def test_it_is_idempotent_and_converges():
    _run("--demo-users")
    groups_before = {name: _codenames(name) for name in ("admin", "finance", "team_lead", "viewer")}
    # A hand-made change to a group is undone on the next run.
    Group.objects.get(name="viewer").permissions.clear()
    _run("--demo-users")
    _run("--demo-users")
    assert {name: _codenames(name) for name in groups_before} == groups_before
    assert Group.objects.filter(name__in=groups_before).count() == 4
    assert get_user_model().objects.filter(username__in=["admin", "finance", "lead", "viewer"]).count() == 4
    assert Membership.objects.count() == 0  # no teams yet, so no memberships


def test_it_creates_demo_users_with_roles_and_memberships(monkeypatch):
    teams = [TeamFactory(slug=slug) for slug in ("zeta", "alpha", "mu")]
    monkeypatch.setenv("DEMO_PASSWORD", "a-demo-secret")
    output = _run("--demo-users")
    _run("--demo-users")

    users = {
        user.username: user
        for user in get_user_model().objects.filter(username__in=["admin", "finance", "lead", "viewer"])
    }
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert not users["finance"].is_staff and not users["lead"].is_superuser
    for username, group in (
        ("admin", "admin"),
        ("finance", "finance"),
        ("lead", "team_lead"),
        ("viewer", "viewer"),
    ):
        assert list(users[username].groups.values_list("name", flat=True)) == [group]
        assert authenticate(username=username, password="a-demo-secret") == users[username]

    alpha, mu = teams[1], teams[2]  # the first two by slug: alpha, mu
    lead_memberships = Membership.objects.filter(user=users["lead"]).order_by("team__slug")
    assert [(m.team, m.role) for m in lead_memberships] == [(alpha, "lead"), (mu, "lead")]
    assert [(m.team, m.role) for m in Membership.objects.filter(user=users["viewer"])] == [(alpha, "member")]

    assert "Demo logins:" in output
    assert "a-demo-secret" in output
    assert "alpha, mu" in output


def test_it_uses_the_default_demo_password(monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    _run("--demo-users")
    assert authenticate(username="viewer", password="inferensys-demo") is not None


def test_it_ranks_roles_and_answers_who_manages_which_team():
    _run()
    alpha, beta = TeamFactory(slug="alpha"), TeamFactory(slug="beta")
    admin = UserFactory(username="boss", roles=["admin"])
    finance = UserFactory(username="cfo", roles=["finance", "viewer"])
    lead = UserFactory(username="lead", roles=["team_lead"])
    member = UserFactory(username="member", roles=["viewer"])
    superuser = UserFactory(username="root", is_superuser=True)
    MembershipFactory(user=lead, team=alpha, role="lead")
    MembershipFactory(user=lead, team=beta, role="member")
    MembershipFactory(user=member, team=alpha, role="lead")  # lead membership, but not in the team_lead group

    assert selectors.user_primary_role(user=finance) == Role.FINANCE
    assert selectors.user_primary_role(user=superuser) == Role.ADMIN
    assert selectors.user_sees_all_teams(user=finance) and not selectors.user_sees_all_teams(user=lead)

    assert selectors.user_can_manage_team(user=admin, team_id=None)
    # Finance edits budgets of every team, as the budgets API lets it (governance.edit_all_teams).
    assert selectors.user_can_manage_team(user=finance, team_id=alpha.pk)
    assert selectors.user_can_manage_team(user=lead, team_id=alpha.pk)
    assert not selectors.user_can_manage_team(user=lead, team_id=beta.pk)
    assert not selectors.user_can_manage_team(user=lead, team_id=None)
    assert not selectors.user_can_manage_team(user=member, team_id=alpha.pk)
    assert list(selectors.user_manageable_teams(user=lead)) == [alpha]
    assert list(selectors.user_manageable_teams(user=member)) == []


def test_the_readme_role_table_is_what_setup_roles_grants():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- roles-table:")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- /roles-table -->")
    assert readme[start:end].strip() == roles_table_markdown(), (
        "README's role table differs from setup_roles: paste `python manage.py setup_roles --table`."
    )
    # Every granted permission exists (a typo would raise here, not silently grant nothing).
    for role in ROLE_GRANTS:
        assert role_permissions(role=role)


def test_no_role_is_checked_by_group_name_outside_setup_roles():
    # Listing a user's groups for display is fine; deciding with them is not.
    pattern = re.compile(r"groups\.filter\(\s*name|groups\.values_list\([^)]*\)\s*[&|]|_ROLES\b|in _groups\(")
    offenders = []
    for app in ("attribution", "governance", "routing", "config"):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts or path.name == "setup_roles.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_a_permission_not_a_group_name_decides(client):
    """A group named nothing like a role, holding only attribution.sync_account, may start syncs;
    a user in a group *named* finance without that permission may not."""
    from django.contrib.auth.models import Permission

    from attribution.models import CloudAccount

    account = CloudAccount.objects.create(provider="aws", name="AWS", slug="aws-prod")
    operators = Group.objects.create(name="night-operators")
    operators.permissions.add(Permission.objects.get(codename="sync_account"))
    operator = UserFactory(username="op")
    operator.groups.add(operators)
    impostor = UserFactory(username="imp")
    impostor.groups.add(Group.objects.create(name="finance"))  # a bare group: no permissions

    client.force_login(impostor)
    assert client.post(f"/api/v1/accounts/{account.pk}/sync").status_code == 403
    client.force_login(operator)
    response = client.post(f"/api/v1/accounts/{account.pk}/sync")
    assert response.status_code == 202, response.content
    assert response.json()["trigger"] == "api"
