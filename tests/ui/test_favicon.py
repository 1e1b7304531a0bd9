"""The site's icon: linked from every page (signed in or not), served from our own static files under
the Content-Security-Policy, and /favicon.ico (asked for by browsers where a page links no icon, as the
Django admin's) leads to it. Without it every first page load logged a 404 in the console."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _icon_href(html: str) -> str:
    found = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert found, "no icon linked"
    return found.group(1)


def test_the_login_page_and_a_signed_in_page_link_the_icon():
    anonymous = Client()
    login = anonymous.get("/login/")
    assert _icon_href(login.content.decode()) == "/static/favicon.svg"
    # The policy lets the page load it: images from our own origin.
    assert re.search(r"img-src 'self'", login["Content-Security-Policy"])
    signed_in = Client()
    signed_in.force_login(UserFactory(roles=["viewer"]))
    assert _icon_href(signed_in.get("/").content.decode()) == "/static/favicon.svg"


def test_the_icon_is_an_svg_in_our_static_files():
    path = finders.find("favicon.svg")
    assert path is not None
    assert ElementTree.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_favicon_ico_leads_to_the_icon_for_anyone():
    response = Client().get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/favicon.svg"
