"""The Settings pages in a real browser, as admin and as finance: each renders, logs no console
error and has no serious or critical axe-core violation; a team and an exchange rate are created
through their forms (keyboard-labelled inputs, CSRF) and appear in the list; an API token's secret
is shown once; a lead cannot reach another team's channel form. Screenshots at 1280 and 2560 px."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from attribution.models import AllocatedCost, AllocationRule, ExchangeRate, Team
from governance.models import AuditEvent, NotificationChannel
from governance.services import api_token_create
from routing.models import DeploymentRouting
from tests.attribution.views.test_browser import _seed_costs
from tests.factories import MembershipFactory, UserFactory

SETTINGS_PAGES = {
    "Exchange rates": "/settings/exchange-rates/",
    "Teams": "/settings/teams/",
    "Models and deployments": "/settings/models/",
    "Allocation rules": "/settings/allocation-rules/",
    "Members and roles": "/settings/members/",
    "API tokens": "/settings/api-tokens/",
    "Notification channels": "/settings/channels/",
    "Cloud accounts": "/accounts/",
    "Mapping rules": "/rules/",
}
# Moved into Settings, but screenshotted by tests/browser/test_pages.py with its own data.
SHOT_ELSEWHERE = {"Cloud accounts", "Mapping rules"}
# What finance may not open (admin only): not linked for them.
ADMIN_ONLY = {"Members and roles"}


@pytest.fixture
def world(db):
    _seed_costs()
    users = {
        "admin": UserFactory(username="admin1", roles=["admin"]),
        "finance": UserFactory(username="finance1", roles=["finance"]),
        "lead": UserFactory(username="lead1", roles=["team_lead"]),
    }
    search, ads = Team.objects.get(slug="search"), Team.objects.get(slug="ads")
    MembershipFactory(user=users["lead"], team=search, role="lead")
    for day, rate in ((dt.date(2026, 10, 19), "1.0842"), (dt.date(2026, 10, 20), "1.0817")):
        ExchangeRate.objects.create(
            date=day, from_currency="EUR", to_currency="USD", rate=Decimal(rate), source="ecb"
        )
    ExchangeRate.objects.create(
        date=dt.date(2026, 10, 20),
        from_currency="GBP",
        to_currency="USD",
        rate=Decimal("1.2931"),
        source="boe",
    )
    api_token_create(user=users["admin"], name="billing-export", scopes=["read"])
    api_token_create(user=users["finance"], name="finance-notebook", scopes=["read", "write:exchange_rates"])
    NotificationChannel.objects.create(
        name="search-oncall", kind="email", target="search@example.com", team=search
    )
    ads_channel = NotificationChannel.objects.create(
        name="ads-hook",
        kind="webhook",
        target="https://hooks.example.com/ads",
        secret_reference="env:ADS_HOOK_SECRET",
        team=ads,
    )
    pool = DeploymentRouting.objects.select_related("deployment").first()
    rule = AllocationRule.objects.create(
        name="Shared GPU pool by tokens", match_tag_key="pool", match_tag_value="shared", method="tokens"
    )
    AllocatedCost.objects.filter(allocated_method_id="tokens").update(rule=rule)
    return {"users": users, "ads_channel": ads_channel, "pool": pool}


def _check(tab, label: str, path: str) -> list[str]:
    status = tab.visit(path)
    failures = [] if status == 200 else [f"{label} ({path}): HTTP {status}"]
    failures += [f"{label}: {problem}" for problem in tab.problems]
    failures += [f"{label}: axe {violation}" for violation in tab.axe_violations()]
    if tab.page.locator("h1").count() != 1:
        failures.append(f"{label}: no single h1")
    return failures


@pytest.mark.parametrize("role", ["admin", "finance"])
def test_every_settings_page_renders_cleanly(world, browser_tab, role):
    browser_tab.login(world["users"][role].username)
    settings_links = (
        browser_tab.page.locator(".sidenav__section", has_text="Settings").locator("a").all_inner_texts()
    )
    failures = []
    for label, path in SETTINGS_PAGES.items():
        linked = label in settings_links
        if linked is (role == "finance" and label in ADMIN_ONLY):
            failures.append(f"{label}: linked={linked} for {role}")
        if not linked:
            continue
        failures += _check(browser_tab, label, path)
        if label not in SHOT_ELSEWHERE:
            browser_tab.screenshot(label, role=role)
    assert not failures, "\n".join(failures)


def test_admin_creates_a_team_and_an_exchange_rate_through_the_forms(world, browser_tab):
    page = browser_tab.page
    browser_tab.login("admin1")
    browser_tab.visit("/settings/teams/")
    team_form = page.locator("#team-form")
    team_form.get_by_label("Name", exact=True).fill("Growth experiments")
    team_form.get_by_label("Cost center").fill("CC-77")
    page.get_by_role("button", name="Create team").click()
    page.wait_for_selector("#team-growth-experiments")
    assert "Team 'Growth experiments' created" in page.locator(".messages").inner_text()
    assert Team.objects.filter(slug="growth-experiments", cost_center="CC-77").exists()

    browser_tab.visit("/settings/exchange-rates/")
    form = page.locator("#rate-form")
    form.get_by_label("Date").fill("2026-10-21")
    form.get_by_label("From", exact=True).fill("EUR")
    form.get_by_label("To", exact=True).fill("USD")
    form.get_by_label("Rate").fill("1.0799")
    page.get_by_role("button", name="Add rate").click()
    page.wait_for_selector(".message--success")
    assert "1.0799" in page.locator("#exchange-rates").inner_text()
    assert ExchangeRate.objects.get(date=dt.date(2026, 10, 21), from_currency="EUR").rate == Decimal("1.0799")
    # A bad rate: the error names the field; nothing is stored.
    form = page.locator("#rate-form")
    form.get_by_label("Date").fill("2026-10-22")
    form.get_by_label("From", exact=True).fill("EUR")
    form.get_by_label("To", exact=True).fill("EUR")
    form.get_by_label("Rate").fill("1")
    page.get_by_role("button", name="Add rate").click()
    assert "both EUR" in page.locator("#rate-form-errors").inner_text()
    assert not ExchangeRate.objects.filter(date=dt.date(2026, 10, 22)).exists()
    # The form's page answers a refused submission with HTTP 400, which Chromium logs; nothing else.
    assert [problem for problem in browser_tab.problems if "status of 400" not in problem] == []
    assert browser_tab.axe_violations() == []
    assert AuditEvent.objects.filter(object_type="attribution.team", action="create").exists()


def test_finance_adds_a_rate_and_sees_a_new_token_secret_once(world, browser_tab):
    page = browser_tab.page
    browser_tab.login("finance1")
    browser_tab.visit("/settings/exchange-rates/")
    form = page.locator("#rate-form")
    form.get_by_label("Date").fill("2026-10-21")
    form.get_by_label("From", exact=True).fill("GBP")
    form.get_by_label("To", exact=True).fill("USD")
    form.get_by_label("Rate").fill("1.2950")
    page.get_by_role("button", name="Add rate").click()
    page.wait_for_selector(".message--success")
    assert ExchangeRate.objects.filter(date=dt.date(2026, 10, 21), from_currency="GBP").exists()

    browser_tab.visit("/settings/api-tokens/")
    page.locator("#token-form").get_by_label("Name").fill("quarter-close")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-secret").input_value()
    assert secret.startswith("ifs_")
    assert browser_tab.axe_violations() == []
    browser_tab.visit("/settings/api-tokens/")
    assert secret not in page.content() and "quarter-close" in page.content()


def test_a_lead_cannot_reach_another_teams_channel_form(world, browser_tab):
    browser_tab.login("lead1")
    browser_tab.visit("/settings/channels/")
    html = browser_tab.page.content()
    assert "search-oncall" in html and "ads-hook" not in html
    response = browser_tab.page.goto(f"{browser_tab.base_url}/settings/channels/{world['ads_channel'].pk}/")
    assert response.status == 404
    assert "hooks.example.com" not in browser_tab.page.content()
    # Nor the admin-only pages, nor the Django admin.
    assert browser_tab.page.goto(f"{browser_tab.base_url}/settings/members/").status == 403
    browser_tab.page.goto(f"{browser_tab.base_url}/admin/")
    assert "/admin/login/" in browser_tab.page.url
