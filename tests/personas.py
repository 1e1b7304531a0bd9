"""The six callers of every Settings page's permission matrix: admin, finance, the lead of team
alpha, the lead of another team (beta), a viewer in alpha, and an anonymous visitor."""

from __future__ import annotations

from django.test import Client

from tests.factories import MembershipFactory, TeamFactory, UserFactory

PERSONAS = ("admin", "finance", "lead", "other_lead", "viewer", "anonymous")


def personas_create() -> dict:
    alpha = TeamFactory(slug="alpha", name="Alpha")
    beta = TeamFactory(slug="beta", name="Beta")
    users = {
        "admin": UserFactory(username="ada", roles=["admin"]),
        "finance": UserFactory(username="fiona", roles=["finance"]),
        "lead": UserFactory(username="lena", roles=["team_lead"]),
        "other_lead": UserFactory(username="olaf", roles=["team_lead"]),
        "viewer": UserFactory(username="vera", roles=["viewer"]),
    }
    MembershipFactory(user=users["lead"], team=alpha, role="lead")
    MembershipFactory(user=users["other_lead"], team=beta, role="lead")
    MembershipFactory(user=users["viewer"], team=alpha, role="member")
    clients = {"anonymous": Client()}
    for name, user in users.items():
        clients[name] = Client()
        clients[name].force_login(user)
    return {"users": users, "clients": clients, "alpha": alpha, "beta": beta}
