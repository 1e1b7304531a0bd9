"""Settings → Teams: each role sees the teams it may see with member counts; admin
create and rename (audited, slug kept); bad input is refused with a clear error and stores nothing."""

from __future__ import annotations

import pytest

from attribution.models import Team
from governance.models import AuditEvent
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.personas import PERSONAS, personas_create

pytestmark = pytest.mark.django_db
URL = "/settings/teams/"


@pytest.fixture
def world():
    return personas_create()


# persona: (status, sees alpha, sees beta, may create, may rename)
MATRIX = {
    "admin": (200, True, True, True, True),
    "finance": (200, True, True, False, False),  # finance reads every team; admin edits teams
    "lead": (200, True, False, False, False),
    "other_lead": (200, False, True, False, False),
    "viewer": (200, True, False, False, False),
    "anonymous": (302, False, False, False, False),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_role_sees_its_teams_and_only_admin_changes_them(world, persona):
    status, sees_alpha, sees_beta, may_create, may_rename = MATRIX[persona]
    client = world["clients"][persona]
    response = client.get(URL)
    assert response.status_code == status
    html = response.content.decode()
    assert ('id="team-alpha"' in html) is sees_alpha
    assert ('id="team-beta"' in html) is sees_beta
    assert ('id="team-form"' in html) is may_create
    assert (f'href="/settings/teams/{world["alpha"].pk}/"' in html) is (may_rename and sees_alpha)
    created = client.post(URL, {"name": "Gamma"})
    assert created.status_code == (302 if persona in ("admin", "anonymous") else 403)
    assert Team.objects.filter(name="Gamma").exists() is may_create
    # Another team's edit form is not reachable: 404 if not visible, 403 if visible but not editable.
    edit = client.get(f"/settings/teams/{world['beta'].pk}/")
    assert (
        edit.status_code
        == {True: 200, False: 302 if persona == "anonymous" else 404 if not sees_beta else 403}[may_rename]
    )
    renamed = client.post(f"/settings/teams/{world['alpha'].pk}/", {"name": "Alpha prime"})
    assert Team.objects.filter(name="Alpha prime").exists() is may_rename
    if not may_rename:
        assert renamed.status_code in (302, 403, 404)


def test_members_are_counted_and_the_row_shows_it(world):
    MembershipFactory(user=UserFactory(username="x1"), team=world["alpha"], role="member")
    html = world["clients"]["finance"].get(URL).content.decode()
    row = html[html.index('id="team-alpha"') :]
    row = row[: row.index("</tr>")]
    # lena (lead), vera (member), x1 (member): three members, one lead.
    assert 'data-value="3"' in row and 'data-value="1"' in row


def test_creating_and_renaming_is_audited_and_keeps_the_slug(world):
    client = world["clients"]["admin"]
    assert client.post(URL, {"name": "Search & Ranking", "cost_center": "CC-42"}).status_code == 302
    team = Team.objects.get(name="Search & Ranking")
    assert team.slug == "search-ranking" and team.cost_center == "CC-42"
    response = client.post(f"/settings/teams/{team.pk}/", {"name": "Search", "cost_center": "CC-43"})
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.name, team.slug, team.cost_center) == ("Search", "search-ranking", "CC-43")
    events = AuditEvent.objects.filter(object_type="attribution.team", object_id=str(team.pk)).order_by("id")
    assert [event.action for event in events] == ["create", "update"]
    assert events[1].changes == {
        "before": {"cost_center": "CC-42", "name": "Search & Ranking"},
        "after": {"cost_center": "CC-43", "name": "Search"},
    }
    assert events[1].actor_label == "ada"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": ""}, "Name: This field is required."),
        ({"name": "alpha"}, "A team named &#x27;alpha&#x27; already exists."),
        ({"name": "New", "slug": "beta"}, "A team with the slug &#x27;beta&#x27; already exists."),
        ({"name": "New", "slug": "Bad Slug!"}, "is not a slug"),
        ({"name": "!!!"}, "Give a slug"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_is_stored(world, values, message):
    before = list(Team.objects.values_list("pk", "name", "slug"))
    response = world["clients"]["admin"].post(URL, values)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(Team.objects.values_list("pk", "name", "slug")) == before
    assert not AuditEvent.objects.filter(object_type="attribution.team").exists()
    rename = world["clients"]["admin"].post(f"/settings/teams/{world['alpha'].pk}/", {"name": "Beta"})
    assert (
        rename.status_code == 400
        and "A team named &#x27;Beta&#x27; already exists." in rename.content.decode()
    )
    assert Team.objects.get(pk=world["alpha"].pk).name == "Alpha"


def test_the_list_pages_and_its_queries_do_not_grow(world, django_assert_max_num_queries):
    for index in range(60):
        team = TeamFactory(slug=f"t{index:02d}", name=f"Team {index:02d}")
        MembershipFactory(user=UserFactory(username=f"m{index}"), team=team, role="member")
    client = world["clients"]["admin"]
    with django_assert_max_num_queries(12):
        html = client.get(URL).content.decode()
    assert "Page 1 of 2" in html and "62 rows" in html
    assert 'id="team-t59"' in client.get(URL, {"page": 2}).content.decode()
