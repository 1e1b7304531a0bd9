"""One navigation, role-aware: what a user may not open is neither linked nor in the HTML."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

PAGES_FOR_ALL = [
    "/",
    "/unallocated/",
    "/governance/budgets/",
    "/governance/alerts/",
    "/governance/quotas/",
    "/routing/",
    "/routing/gateways/",
    "/routing/deployments/",
    "/accounts/",
    "/rules/",
    "/api/docs/",
]


def _page_for(user, path: str = "/governance/budgets/") -> str:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "roles, superuser, sees_audit, sees_admin",
    [
        (["viewer"], False, False, False),
        (["team_lead"], False, False, False),
        (["finance"], False, True, False),
        (["admin"], False, True, False),
        ([], True, True, True),
    ],
)
def test_it_links_what_each_role_may_open(roles, superuser, sees_audit, sees_admin):
    user = UserFactory(roles=roles, is_superuser=superuser, is_staff=superuser)
    html = _page_for(user)
    nav = html[html.index('<nav class="sidenav"') : html.index("</nav>", html.index('<nav class="sidenav"'))]
    for path in PAGES_FOR_ALL:
        assert f'href="{path}"' in nav, path
    assert ('href="/governance/audit/"' in html) is sees_audit
    assert ('href="/admin/"' in html) is sees_admin


@pytest.mark.django_db
def test_it_marks_the_current_page_including_sub_pages():
    html = _page_for(UserFactory(roles=["viewer"]), "/routing/gateways/")
    assert '<a href="/routing/gateways/" class="is-active" aria-current="page">' in html
    assert html.count('aria-current="page"') == 1


@pytest.mark.django_db
def test_a_staff_lead_is_not_linked_to_the_admin():
    # The admin is kept for operators: a staff team lead may still open it (scoped, tests/test_admin.py),
    # but the product's pages never send anyone there except superusers.
    html = _page_for(UserFactory(roles=["team_lead"], is_staff=True))
    assert 'href="/admin/' not in html


@pytest.mark.django_db
def test_it_renders_no_navigation_for_anonymous_visitors():
    html = Client().get("/login/").content.decode()
    assert "sidenav" not in html
