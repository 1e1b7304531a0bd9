"""Content-Security-Policy on every page, and no inline script it would have to allow (defect 7)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.security.test_permission_matrix import page_routes

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)


def test_every_page_sends_a_policy_that_allows_only_our_own_scripts():
    client = Client()
    client.force_login(UserFactory(username="root", roles=["admin"], is_staff=True, is_superuser=True))
    checked = 0
    for route in page_routes():
        response = client.get(route)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        policy = response["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
        assert directives["script-src"] == "'self'", route
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", route
        assert INLINE_SCRIPT.findall(response.content.decode()) == [], route
        checked += 1
    assert checked >= 4  # overview, accounts, rules, docs, admin...


def test_swagger_ui_start_up_script_is_served_as_a_file():
    client = Client()
    client.force_login(UserFactory(username="viewer", roles=["viewer"]))
    html = client.get("/api/docs/").content.decode()
    [script_url] = [url for url in re.findall(r'src="([^"]+)"', html) if "script" in url]
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
