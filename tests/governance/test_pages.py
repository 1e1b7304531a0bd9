"""Governance pages: what each role sees and may do, the burn-down figure, the form's errors, the
audit log's CSV export, and bounded query counts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.test import Client

from governance.models import Alert, AuditEvent, Budget, BudgetThreshold, Quota
from tests.factories import BudgetFactory, DailyCostFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    search, ads = TeamFactory(slug="search", name="Search"), TeamFactory(slug="ads", name="Ads")
    users = {
        "admin": UserFactory(username="admin1", roles=["admin"]),
        "finance": UserFactory(username="finance1", roles=["finance"]),
        "lead": UserFactory(username="lead1", roles=["team_lead"]),
        "other_lead": UserFactory(username="lead2", roles=["team_lead"]),
        "viewer": UserFactory(username="viewer1", roles=["viewer"]),
    }
    MembershipFactory(user=users["lead"], team=search, role="lead")
    MembershipFactory(user=users["other_lead"], team=ads, role="lead")
    MembershipFactory(user=users["viewer"], team=search, role="member")
    budget = BudgetFactory(team=search, name="Search monthly", amount=Decimal("1000"))
    BudgetThreshold.objects.create(budget=budget, percent=Decimal("100"), action="block")
    BudgetFactory(team=ads, name="Ads monthly")
    today = dt.date.today()
    DailyCostFactory(team=search, day=today.replace(day=1), billed_cost=Decimal("321.50"))
    Alert.objects.create(kind="anomaly", team=search, message="Search spike", dedup_key="s1")
    Alert.objects.create(kind="anomaly", team=ads, message="Ads spike", dedup_key="a1")
    Quota.objects.create(team=search, metric="tokens", window="minute", limit=5000)
    return {"users": users, "budget": budget, "search": search}


def _client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# persona: (sees Ads budget, may create, may edit Search budget, sees audit log)
MATRIX = {
    "admin": (True, True, True, True),
    "finance": (True, True, True, True),
    "lead": (False, True, True, False),
    "other_lead": (True, True, False, False),  # sees Ads (their team), not Search
    "viewer": (False, False, False, False),
}


@pytest.mark.parametrize("persona", list(MATRIX))
def test_pages_render_only_what_each_role_may_see_and_do(world, persona):
    sees_ads, may_create, may_edit, reads_audit = MATRIX[persona]
    client = _client(world["users"][persona])
    listing = client.get("/governance/budgets/").content.decode()
    assert ("Ads monthly" in listing) is sees_ads
    assert ("Search monthly" in listing) is (persona != "other_lead")
    assert ('href="/governance/budgets/new"' in listing) is may_create
    assert ("Audit log" in listing) is reads_audit
    detail = client.get(f"/governance/budgets/{world['budget'].pk}/")
    assert detail.status_code == (404 if persona == "other_lead" else 200)
    if detail.status_code == 200:
        assert ("/edit" in detail.content.decode()) is may_edit
    assert client.get(f"/governance/budgets/{world['budget'].pk}/edit").status_code == (
        200 if may_edit else 404 if persona == "other_lead" else 403
    )
    assert client.get("/governance/audit/").status_code == (200 if reads_audit else 403)
    alerts = client.get("/governance/alerts/").content.decode()
    assert ("Ads spike" in alerts) is sees_ads
    assert ('/ack"' in alerts) is (persona != "viewer")


def test_anonymous_users_are_sent_to_log_in(world):
    for url in ("/governance/budgets/", "/governance/alerts/", "/governance/quotas/", "/governance/audit/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_detail_page_shows_spend_and_a_burndown_with_budget_and_threshold_lines(world):
    response = _client(world["users"]["lead"]).get(f"/governance/budgets/{world['budget'].pk}/")
    html = response.content.decode()
    assert "321.5" in html
    start = html.index('<script id="figures" type="application/json">') + len(
        '<script id="figures" type="application/json">'
    )
    figure = json.loads(html[start : html.index("</script>", start)])["burndown"]
    names = [trace["name"] for trace in figure["data"]]
    assert names[:2] == ["Billed", "Estimated"]
    assert "Budget" in names and any(name.startswith("block at 100") for name in names)
    assert figure["data"][0]["y"][0] == 321.5


def test_the_form_creates_a_budget_and_shows_service_errors_without_storing(world):
    client = _client(world["users"]["lead"])
    base = {
        "name": "Search GPUs", "team": world["search"].pk, "period": "custom", "timezone": "UTC",
        "fiscal_year_start_month": 1, "custom_start": "2026-12-10", "custom_end": "2026-12-01",
        "amount": "100", "currency": "USD", "action": "notify", "is_active": "on",
        "thresholds-TOTAL_FORMS": 1, "thresholds-INITIAL_FORMS": 0, "thresholds-0-percent": "90",
        "thresholds-0-basis": "actual",
    }  # fmt: skip
    response = client.post("/governance/budgets/new", base)
    assert response.status_code == 200
    assert "ends (2026-12-01) before it starts (2026-12-10)" in response.content.decode()
    assert not Budget.objects.filter(name="Search GPUs").exists()
    response = client.post("/governance/budgets/new", {**base, "custom_end": "2026-12-31"})
    assert response.status_code == 302
    budget = Budget.objects.get(name="Search GPUs")
    assert budget.thresholds.get().percent == Decimal("90.00")


def test_the_audit_log_filters_and_exports_csv(world):
    client = _client(world["users"]["finance"])
    client.post(f"/governance/alerts/{Alert.objects.get(dedup_key='s1').pk}/ack")
    AuditEvent.objects.create(
        actor_label="someone", action="update", object_type="governance.quota", object_id="9"
    )
    page = client.get("/governance/audit/?actor=finance1").content.decode()
    assert "acknowledge" in page and "governance.quota" not in page.split("<tbody>")[1]
    response = client.get("/governance/audit/?actor=finance1&format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["created_at", "actor", "action"] and [row[2] for row in rows[1:]] == [
        "acknowledge"
    ]


def test_the_budget_list_query_count_does_not_grow_per_row_beyond_its_spend_reads(
    world, django_assert_max_num_queries
):
    client = _client(world["users"]["admin"])
    with django_assert_max_num_queries(40):
        assert client.get("/governance/budgets/").status_code == 200


def test_the_burn_down_is_the_same_built_checked_or_unchecked(world, page_figures_checked_and_unchecked):
    client = _client(world["users"]["finance"])
    url = f"/governance/budgets/{world['budget'].pk}/"
    checked, unchecked = page_figures_checked_and_unchecked(client, url)
    assert checked["burndown"]["data"]
    assert unchecked == checked
