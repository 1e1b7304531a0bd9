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

from attribution.models import Team
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
    DailyCostFactory(
        team=search, day=today.replace(day=1), billed_cost=Decimal("321.50"), effective_cost=Decimal("321.50")
    )
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


def _more_budgets(count: int) -> list[str]:
    """`count` budgets of every kind of scope, each with spend this month, a threshold, an open
    action and a stored forecast (what each row reads); returns each row's name and spend."""
    from django.utils import timezone

    from governance.models import BudgetEnforcement, BudgetForecast
    from governance.periods import budget_period
    from tests.factories import CloudAccountFactory, DeploymentFactory, ServedModelFactory

    today = dt.date.today()
    account = CloudAccountFactory(slug="gcp-more", provider="gcp")
    texts = []
    for index in range(count):
        team = TeamFactory(slug=f"more-{index}", name=f"More {index}")
        model = ServedModelFactory(slug=f"model-{index}")
        DeploymentFactory(slug=f"dep-{index}", model=model, provider="gcp")
        DailyCostFactory(
            team=team, model=model, account=account, day=today.replace(day=1),
            billed_cost=Decimal(f"{index + 1}0.25"), effective_cost=Decimal(f"{index + 1}0.25"),
        )  # fmt: skip
        scope = [{"team": team}, {"team": team, "model": model}, {"team": team, "provider": "gcp"},
                 {"team": team, "account": account}][index % 4]  # fmt: skip
        budget = BudgetFactory(name=f"More budget {index}", amount=Decimal("100000"), **scope)
        threshold = BudgetThreshold.objects.create(budget=budget, percent=Decimal("1"), action="notify")
        period = budget_period(budget=budget, at=timezone.now())
        BudgetEnforcement.objects.create(
            budget=budget, threshold=threshold, action="notify", basis="actual",
            period_start=period.start, period_end=period.end, limit_amount=Decimal("1000"),
            reason="1 % reached", applied_at=timezone.now(),
        )  # fmt: skip
        BudgetForecast.objects.create(
            budget=budget, period_start=period.start, period_end=period.end, currency="USD", method="ets",
            point=Decimal("20000"), lower=Decimal("1"), upper=Decimal("2"), spend_to_date=Decimal("1"),
            computed_at=timezone.now(),
        )  # fmt: skip
        texts += [f"More budget {index}", f"{index + 1}0.25"]
    return texts


@pytest.mark.parametrize("persona", ["admin", "lead"])
def test_the_budget_list_reads_a_fixed_number_of_queries_however_many_budgets(
    world, persona, assert_page_queries_flat
):
    # Two budgets, then ten: spend, forecast and actions of all rows are read together.
    client = _client(world["users"][persona])
    if persona == "lead":

        def grow():
            from governance.models import Membership

            texts = _more_budgets(8)
            for team in Team.objects.filter(slug__startswith="more-"):
                Membership.objects.create(user=world["users"]["lead"], team=team, role="lead")
            return texts
    else:

        def grow():
            return _more_budgets(8)

    assert_page_queries_flat(client, "/governance/budgets/", grow=grow, ceiling=14)


def test_every_budget_row_shows_what_its_own_page_shows(world):
    """The batched read of the list and the budget's own read agree to the cent, scope by scope."""
    from governance.selectors import budget_status, budget_statuses

    _more_budgets(4)
    budgets = list(Budget.objects.order_by("id"))
    assert budget_statuses(budgets=budgets) == [budget_status(budget=budget) for budget in budgets]
    spends = [status["spend_total"] for status in budget_statuses(budgets=budgets)]
    assert spends == [Decimal("321.50"), Decimal("0.00"), Decimal("10.25"), Decimal("20.25"),
                      Decimal("30.25"), Decimal("40.25")]  # fmt: skip


def test_the_burn_down_is_the_same_built_checked_or_unchecked(world, page_figures_checked_and_unchecked):
    client = _client(world["users"]["finance"])
    url = f"/governance/budgets/{world['budget'].pk}/"
    checked, unchecked = page_figures_checked_and_unchecked(client, url)
    assert checked["burndown"]["data"]
    assert unchecked == checked


def test_the_detail_page_reads_the_spend_and_the_forecast_once_for_figures_and_chart(world):
    """The figures and the burn-down come from one read of the period's spend and stored forecast."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from governance.models import BudgetForecast
    from governance.periods import budget_period

    budget = world["budget"]
    period = budget_period(budget=budget, at=timezone.now())
    last_day = period.end - dt.timedelta(days=1)
    BudgetForecast.objects.create(
        budget=budget, period_start=period.start, period_end=period.end, currency="USD", method="ets",
        point=Decimal("900.00"), lower=Decimal("800.00"), upper=Decimal("1000.00"),
        spend_to_date=Decimal("321.50"), computed_at=timezone.now(),
        daily=[{"day": last_day.isoformat(), "forecast": "900.00", "lower": "800.00", "upper": "1000.00"}],
    )  # fmt: skip
    with CaptureQueriesContext(connection) as captured:
        response = _client(world["users"]["lead"]).get(f"/governance/budgets/{budget.pk}/")
    html = response.content.decode()
    start = html.index('<script id="figures" type="application/json">') + len(
        '<script id="figures" type="application/json">'
    )
    figure = json.loads(html[start : html.index("</script>", start)])["burndown"]
    forecast = next(trace for trace in figure["data"] if trace["name"] == "Forecast (ets)")
    assert forecast["x"] == [last_day.isoformat()] and forecast["y"] == [900.0]
    assert figure["data"][0]["y"][0] == 321.5 and "900.00" in html

    def reads(text: str) -> int:
        return sum(text in query["sql"] for query in captured.captured_queries)

    assert reads('SUM("attribution_dailycost"."effective_cost")') == 1
    assert reads('SUM("attribution_allocatedcost"."effective_cost")') == 1
    assert reads('SUM("attribution_spendestimate"."estimated_cost")') == 1
    assert reads('FROM "governance_budgetforecast"') == 1


def test_a_budgets_page_reads_a_fixed_number_of_queries_however_long_its_history(
    world, assert_page_queries_flat
):
    from django.utils import timezone

    from governance.models import BudgetEvent

    budget = world["budget"]

    def grow():
        texts = []
        for index in range(4):
            threshold = BudgetThreshold.objects.create(
                budget=budget, percent=Decimal(10 + index), basis="forecast", action="notify"
            )
            BudgetEvent.objects.create(
                budget=budget, threshold=threshold, kind="fired", action="notify",
                threshold_label=f"label-{index}", basis="forecast", period_start=dt.date.today(),
                period_end=dt.date.today(), currency="USD", spend_billed=Decimal("1"),
                spend_estimated=Decimal("0"), limit_amount=Decimal("1"), created_at=timezone.now(),
            )  # fmt: skip
            Alert.objects.create(
                kind="budget",
                team=budget.team,
                budget=budget,
                message=f"alert-{index}",
                dedup_key=f"b{index}",
            )
            texts += [f"label-{index}", f"alert-{index}"]
        return texts

    client = _client(world["users"]["lead"])
    assert_page_queries_flat(client, f"/governance/budgets/{budget.pk}/", grow=grow, ceiling=20)


def test_the_budget_form_reads_a_fixed_number_of_queries_however_many_thresholds_and_teams(
    world, assert_page_queries_flat
):
    budget = world["budget"]

    def grow():
        for index in range(4):
            BudgetThreshold.objects.create(budget=budget, percent=Decimal(50 + index), action="notify")
            TeamFactory(slug=f"form-team-{index}", name=f"Form team {index}")
        return ['value="53', "Form team 3"]

    client = _client(world["users"]["admin"])
    assert_page_queries_flat(client, f"/governance/budgets/{budget.pk}/edit", grow=grow, ceiling=14)


@pytest.mark.parametrize("persona", ["admin", "lead"])
def test_the_alerts_page_reads_a_fixed_number_of_queries_however_many_alerts(
    world, persona, assert_page_queries_flat
):
    from governance.models import AlertDelivery, NotificationChannel

    search = world["search"]
    # One delivery before counting too: the page reads deliveries and their channels per page.
    channel = NotificationChannel.objects.create(
        name="ops hook", kind="webhook", target="https://hooks.example.com/x", team=search
    )
    AlertDelivery.objects.create(alert=Alert.objects.get(dedup_key="s1"), channel=channel)

    def grow():
        for index in range(6):
            alert = Alert.objects.create(
                kind="anomaly", team=search, budget=world["budget"], message=f"spike-{index}",
                dedup_key=f"g{index}",
            )  # fmt: skip
            AlertDelivery.objects.create(alert=alert, channel=channel)
        return [f"spike-{index}" for index in range(6)]

    client = _client(world["users"][persona])
    assert_page_queries_flat(client, "/governance/alerts/", grow=grow, ceiling=12)


@pytest.mark.parametrize("persona", ["admin", "lead"])
def test_the_quotas_page_reads_a_fixed_number_of_queries_however_many_quotas(
    world, persona, assert_page_queries_flat
):
    from tests.factories import ServedModelFactory

    def grow():
        for index in range(6):
            model = ServedModelFactory(slug=f"quota-model-{index}", name=f"Quota model {index}")
            Quota.objects.create(
                team=world["search"], model=model, metric="requests", window="day", limit=1000 + index
            )
        return [f"Quota model {index}" for index in range(6)]

    client = _client(world["users"][persona])
    assert_page_queries_flat(client, "/governance/quotas/", grow=grow, ceiling=10)


def test_the_audit_log_reads_a_fixed_number_of_queries_however_many_events(world, assert_page_queries_flat):
    def grow():
        for index in range(10):
            AuditEvent.objects.create(
                actor_label=f"actor-{index}", action="update", object_type="governance.budget",
                object_id=str(index),
            )  # fmt: skip
        return [f"actor-{index}" for index in range(10)]

    client = _client(world["users"]["finance"])
    assert_page_queries_flat(client, "/governance/audit/", grow=grow, ceiling=10)
