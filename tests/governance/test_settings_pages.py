"""Settings pages of governance: API tokens, notification channels, members and roles.

For each: the permission matrix over admin, finance, the lead of the team, the lead of another
team, a viewer and an anonymous visitor; form validation (a clear error, nothing stored); the audit
trail; and a bounded query count on the list."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from governance.models import ApiToken, AuditEvent, Membership, NotificationChannel
from governance.services import api_token_create
from governance.tokens import hash_token
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.governance.test_alerts_delivery import SECRET, Receiver
from tests.personas import PERSONAS, personas_create

pytestmark = pytest.mark.django_db
TOKENS, CHANNELS, MEMBERS = "/settings/api-tokens/", "/settings/channels/", "/settings/members/"


@pytest.fixture
def world():
    world = personas_create()
    users = world["users"]
    world["tokens"] = {
        name: api_token_create(user=users[name], name=f"{name}-script", scopes=["read"])[0]
        for name in ("admin", "finance", "lead", "other_lead")
    }
    world["alpha_channel"] = NotificationChannel.objects.create(
        name="alpha-mail", kind="email", target="alpha@example.com", team=world["alpha"]
    )
    world["beta_channel"] = NotificationChannel.objects.create(
        name="beta-mail", kind="email", target="beta@example.com", team=world["beta"]
    )
    world["org_channel"] = NotificationChannel.objects.create(
        name="org-slack", kind="slack", target="https://hooks.example.com/x"
    )
    return world


def _prefixes(html: str, world) -> set[str]:
    return {name for name, token in world["tokens"].items() if f'id="token-{token.prefix}"' in html}


# --- API tokens -------------------------------------------------------------------------------------

# persona: (may create, sees everyone's with owner=all, may revoke another's token)
TOKEN_MATRIX = {
    "admin": (True, True, True),
    "finance": (True, True, False),
    "lead": (True, False, False),
    "other_lead": (True, False, False),
    "viewer": (False, False, False),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_tokens_page_shows_own_tokens_and_only_admin_finance_see_all(world, persona):
    client = world["clients"][persona]
    response = client.get(TOKENS)
    if persona == "anonymous":
        assert response.status_code == 302 and "/login/" in response["Location"]
        assert client.post(TOKENS, {"name": "x", "scopes": ["read"]}).status_code == 302
        assert not ApiToken.objects.filter(name="x").exists()
        return
    may_create, reads_all, revokes_any = TOKEN_MATRIX[persona]
    assert response.status_code == 200
    html = response.content.decode()
    own = {persona} if persona in world["tokens"] else set()
    assert _prefixes(html, world) == own
    # No stored secret or hash is ever in the page.
    assert not any(token.token_hash in html for token in world["tokens"].values())
    assert ('id="token-form"' in html) is may_create
    everyone = client.get(TOKENS, {"owner": "all"}).content.decode()
    assert _prefixes(everyone, world) == (set(world["tokens"]) if reads_all else own)
    created = client.post(TOKENS, {"name": "mine", "scopes": ["read"]})
    assert created.status_code == (201 if may_create else 403)
    assert ApiToken.objects.filter(name="mine").exists() is may_create
    # Someone else's token: revoked only by admin; others get 404 (not even told it exists).
    other = world["tokens"]["finance" if persona != "finance" else "lead"]
    revoke = client.post(f"/settings/api-tokens/{other.pk}/revoke")
    assert revoke.status_code == (302 if revokes_any else 404)
    other.refresh_from_db()
    assert (other.revoked_at is not None) is revokes_any


def test_a_new_token_shows_its_secret_once_and_stores_only_its_hash(world):
    client = world["clients"]["lead"]
    response = client.post(
        TOKENS, {"name": "budget-bot", "scopes": ["read", "write:budgets"], "expires_on": "2099-12-31"}
    )
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(name="budget-bot")
    html = response.content.decode()
    secret = html.split('id="new-token-secret" class="secret-once" value="', 1)[1].split('"', 1)[0]
    assert secret.startswith(f"ifs_{token.prefix}_")
    assert token.token_hash == hash_token(secret) and secret not in str(
        ApiToken.objects.values().get(pk=token.pk)
    )
    assert token.scopes == ["read", "write:budgets"] and token.expires_at.year == 2100
    # The secret authenticates the API as its user; it is never shown again.
    assert client.get("/api/v1/budgets", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert secret not in client.get(TOKENS).content.decode()
    event = AuditEvent.objects.get(object_type="governance.apitoken", object_id=str(token.pk))
    assert event.action == "create" and secret not in str(event.changes)
    # Revoking it: audited, and the secret stops working at once.
    assert client.post(f"/settings/api-tokens/{token.pk}/revoke").status_code == 302
    assert client.get("/api/v1/budgets", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    assert AuditEvent.objects.filter(object_id=str(token.pk), action="revoke", actor_label="lena").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "", "scopes": ["read"]}, "Name: This field is required."),
        ({"name": "x", "scopes": []}, "Scopes: This field is required."),
        (
            {"name": "x", "scopes": ["root"]},
            "Select a valid choice. root is not one of the available choices.",
        ),
        ({"name": "x", "scopes": ["read"], "expires_on": "2001-01-01"}, "must be in the future"),
        ({"name": "lead-script", "scopes": ["read"]}, "already has a token named"),
    ],
)
def test_a_bad_token_request_is_refused_clearly_and_stores_nothing(world, values, message):
    count = ApiToken.objects.count()
    response = world["clients"]["lead"].post(TOKENS, values)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert ApiToken.objects.count() == count
    assert 'id="new-token"' not in response.content.decode()


def test_the_tokens_list_pages_and_its_queries_do_not_grow(world, django_assert_max_num_queries):
    for index in range(70):
        api_token_create(user=world["users"]["finance"], name=f"t{index}", scopes=["read"])
    client = world["clients"]["admin"]
    with django_assert_max_num_queries(12):
        html = client.get(TOKENS, {"owner": "all"}).content.decode()
    assert "Page 1 of 2" in html and "74 rows" in html


# --- Notification channels ---------------------------------------------------------------------------

# persona: (sees alpha's, sees beta's, sees org-wide, may edit alpha's, may create)
CHANNEL_MATRIX = {
    "admin": (True, True, True, True, True),
    "finance": (True, True, True, True, True),
    "lead": (True, False, False, True, True),
    "other_lead": (False, True, False, False, True),
    "viewer": (True, False, False, False, False),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_channels_page_follows_the_team_scope(world, persona):
    client = world["clients"][persona]
    alpha = world["alpha_channel"]
    response = client.get(CHANNELS)
    if persona == "anonymous":
        assert response.status_code == 302
        return
    sees_alpha, sees_beta, sees_org, edits_alpha, may_create = CHANNEL_MATRIX[persona]
    html = response.content.decode()
    assert ("alpha@example.com" in html) is sees_alpha
    assert ("beta@example.com" in html) is sees_beta
    assert ("hooks.example.com" in html) is sees_org
    assert (f'href="/settings/channels/{alpha.pk}/"' in html) is edits_alpha
    assert ('id="channel-form"' in html) is may_create
    edit = client.get(f"/settings/channels/{alpha.pk}/")
    assert edit.status_code == (200 if edits_alpha else 403 if sees_alpha else 404)
    client.post(
        f"/settings/channels/{alpha.pk}/",
        {"name": "renamed", "kind": "email", "target": "a@example.com", "team": world["alpha"].pk},
    )
    assert NotificationChannel.objects.filter(name="renamed").exists() is edits_alpha


def test_a_lead_creates_a_channel_for_their_team_only(world):
    client = world["clients"]["lead"]
    values = {
        "name": "alpha-hook",
        "kind": "webhook",
        "target": "https://hooks.example.com/a",
        "secret_reference": "env:ALPHA_SECRET",
        "kinds": ["budget_threshold"],
        "is_active": "on",
    }
    # Beta is not among the lead's choices; the organisation-wide channel needs edit_all_teams.
    refused = client.post(CHANNELS, {**values, "team": world["beta"].pk})
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    refused = client.post(CHANNELS, {**values, "team": ""})
    assert refused.status_code == 400 and "Team: This field is required." in refused.content.decode()
    assert not NotificationChannel.objects.filter(name="alpha-hook").exists()
    assert client.post(CHANNELS, {**values, "team": world["alpha"].pk}).status_code == 302
    channel = NotificationChannel.objects.get(name="alpha-hook")
    assert (channel.team, channel.kinds, channel.secret_reference) == (
        world["alpha"],
        ["budget_threshold"],
        "env:ALPHA_SECRET",
    )
    assert AuditEvent.objects.filter(
        object_type="governance.notificationchannel",
        action="create",
        object_id=str(channel.pk),
        actor_label="lena",
    ).exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"kind": "webhook", "target": "https://h.example.com", "secret_reference": "hunter2"},
            "Give the secret as a reference (env:NAME or file:/path), never the secret itself.",
        ),
        (
            {"kind": "webhook", "target": "https://h.example.com", "secret_reference": ""},
            "A signed webhook needs a secret reference",
        ),
        ({"kind": "email", "target": "not-an-address"}, "is not an email address."),
        ({"kind": "slack", "target": "ftp://h.example.com"}, "is not an http(s) URL."),
        ({"kind": "email", "target": "a@example.com", "name": "beta-mail"}, "already exists."),
    ],
)
def test_a_bad_channel_is_refused_clearly_and_stores_nothing(world, values, message):
    before = list(NotificationChannel.objects.values_list("pk", "name", "target"))
    response = world["clients"]["finance"].post(CHANNELS, {"name": "new-one", **values})
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert list(NotificationChannel.objects.values_list("pk", "name", "target")) == before
    assert not AuditEvent.objects.filter(object_type="governance.notificationchannel").exists()


def test_test_send_delivers_through_the_service(world, monkeypatch):
    monkeypatch.setenv("ALPHA_HOOK_SECRET", SECRET)
    receiver = Receiver()
    try:
        hook = NotificationChannel.objects.create(
            name="alpha-hook",
            kind="webhook",
            target=receiver.url,
            secret_reference="env:ALPHA_HOOK_SECRET",
            team=world["alpha"],
        )
        client = world["clients"]["lead"]
        response = client.post(f"/settings/channels/{hook.pk}/test", follow=True)
        assert "Test message sent to &#x27;alpha-hook&#x27; (HTTP 200)." in response.content.decode()
        assert (
            len(receiver.received) == 1 and receiver.received[0]["valid"]
        )  # signed with the referenced secret
        client.post(f"/settings/channels/{world['alpha_channel'].pk}/test")
        assert mail.outbox[-1].to == ["alpha@example.com"]
        # Another team's lead may not send to it (not even see it).
        assert world["clients"]["other_lead"].post(f"/settings/channels/{hook.pk}/test").status_code == 404
        assert world["clients"]["viewer"].post(f"/settings/channels/{hook.pk}/test").status_code == 403
        assert len(receiver.received) == 1
        monkeypatch.delenv("ALPHA_HOOK_SECRET")
        failed = client.post(f"/settings/channels/{hook.pk}/test", follow=True).content.decode()
        assert "failed: signing secret unavailable" in failed
    finally:
        receiver.close()


def test_the_channels_list_pages_and_its_queries_do_not_grow(world, django_assert_max_num_queries):
    for index in range(60):
        team = TeamFactory(slug=f"c{index}", name=f"C{index}")
        NotificationChannel.objects.create(
            name=f"ch{index}", kind="email", target=f"c{index}@example.com", team=team
        )
    with django_assert_max_num_queries(14):
        html = world["clients"]["finance"].get(CHANNELS).content.decode()
    assert "Page 1 of 2" in html and "63 rows" in html


# --- Members and roles -------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS)
def test_members_page_is_for_admin_only(world, persona):
    client = world["clients"][persona]
    lena = world["users"]["lead"]
    expected = {"admin": 200, "anonymous": 302}.get(persona, 403)
    listing = client.get(MEMBERS)
    assert listing.status_code == expected
    assert client.get(f"/settings/members/{lena.pk}/").status_code == expected
    client.post(f"/settings/members/{lena.pk}/", {"form": "role", "role": "finance"})
    assert (list(lena.groups.values_list("name", flat=True)) == ["finance"]) is (persona == "admin")
    nav = client.get("/settings/api-tokens/").content.decode()
    assert ('href="/settings/members/"' in nav) is (persona == "admin")
    if persona == "admin":
        html = listing.content.decode()
        row = html[html.index('id="member-lena"') :]
        row = row[: row.index("</tr>")]
        assert "Team lead" in row and "Alpha (lead)" in row


def test_an_admin_assigns_a_role_through_setup_roles_grants_and_it_is_audited(world):
    client = world["clients"]["admin"]
    vera = world["users"]["viewer"]
    response = client.post(f"/settings/members/{vera.pk}/", {"form": "role", "role": "finance"})
    assert response.status_code == 302
    vera = type(vera).objects.get(pk=vera.pk)  # fresh permission cache
    assert vera.has_perm("governance.edit_all_teams") and vera.has_perm("attribution.view_all_teams")
    assert list(vera.groups.values_list("name", flat=True)) == ["finance"]
    event = AuditEvent.objects.get(action="role_assign", object_id=str(vera.pk))
    assert event.changes == {"before": {"roles": ["viewer"]}, "after": {"roles": ["finance"]}}
    # A hand-edited group converges on ROLE_GRANTS when a role is assigned.
    Group.objects.get(name="finance").permissions.clear()
    client.post(f"/settings/members/{world['users']['lead'].pk}/", {"form": "role", "role": "finance"})
    assert type(vera).objects.get(pk=vera.pk).has_perm("governance.edit_all_teams")
    # No role at all: reads nothing any more.
    client.post(f"/settings/members/{vera.pk}/", {"form": "role", "role": ""})
    assert not type(vera).objects.get(pk=vera.pk).has_perm("attribution.view_dailycost")


def test_an_admin_manages_memberships_audited(world):
    client, vera = world["clients"]["admin"], world["users"]["viewer"]
    assert client.post(f"/settings/members/{vera.pk}/", {"form": "membership", "team": world["beta"].pk,
                                                         "role": "lead"}).status_code == 302  # fmt: skip
    assert Membership.objects.get(user=vera, team=world["beta"]).role == "lead"
    membership = Membership.objects.get(user=vera, team=world["alpha"])
    assert (
        client.post(
            f"/settings/members/{vera.pk}/", {"form": "remove", "membership": membership.pk}
        ).status_code
        == 302
    )
    assert not Membership.objects.filter(pk=membership.pk).exists()
    actions = list(
        AuditEvent.objects.filter(object_type="governance.membership").values_list("action", flat=True)
    )
    assert sorted(actions) == ["create", "delete"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"form": "role", "role": "root"},
            "Select a valid choice. root is not one of the available choices.",
        ),
        ({"form": "membership", "team": "", "role": "lead"}, "Team: This field is required."),
        ({"form": "membership", "team": "999999", "role": "lead"}, "Select a valid choice"),
        ({"form": "membership", "team": "1", "role": "owner"}, "Select a valid choice. owner is not one"),
    ],
)
def test_bad_member_changes_are_refused_clearly_and_store_nothing(world, values, message):
    vera = world["users"]["viewer"]
    before = (
        list(vera.groups.values_list("name", flat=True)),
        list(Membership.objects.values_list("pk", "role")),
    )
    response = world["clients"]["admin"].post(f"/settings/members/{vera.pk}/", values)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert (
        list(vera.groups.values_list("name", flat=True)),
        list(Membership.objects.values_list("pk", "role")),
    ) == before
    assert not AuditEvent.objects.filter(object_type__in=["auth.user", "governance.membership"]).exists()


def test_an_admin_cannot_remove_their_own_admin_role(world):
    ada = world["users"]["admin"]
    response = world["clients"]["admin"].post(
        f"/settings/members/{ada.pk}/", {"form": "role", "role": "viewer"}
    )
    assert (
        response.status_code == 400
        and "cannot take the admin role from yourself" in response.content.decode()
    )
    assert list(ada.groups.values_list("name", flat=True)) == ["admin"]


def test_the_members_list_pages_and_its_queries_do_not_grow(world, django_assert_max_num_queries):
    for index in range(60):
        user = UserFactory(username=f"u{index:02d}", roles=["viewer"])
        MembershipFactory(user=user, team=world["alpha"], role="member")
    with django_assert_max_num_queries(12):
        html = world["clients"]["admin"].get(MEMBERS).content.decode()
    assert "Page 1 of 2" in html and "65 rows" in html
