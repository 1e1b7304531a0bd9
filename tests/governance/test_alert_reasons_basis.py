"""A budget alert's reasons are its spend on the budget's own basis: allocated amortized cost (a
team's share of a shared pool included) plus the estimates for days not billed yet, so they add up
to what the budget says, to the cent. Every reason links only to a page that can show it: never to
an explorer filter it refuses, for a lead or for finance."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.test import Client

from attribution.models import AllocatedCost, DailyCost, ServedModel, SpendEstimate
from governance.models import Alert
from governance.spend import SpendScope, scope_spend_daily
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

FIRST_BILL, LAST_BILL = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
ESTIMATED_DAYS = (dt.date(2026, 12, 1), dt.date(2026, 12, 2))  # no bill yet
# The alerts' window: a custom period over the last billed fortnight and the estimated days.
WINDOW = {"period_start": "2026-11-16", "period_end": "2026-12-16", "currency": "USD"}
DIRECT = {"search": Decimal("100.10"), "ads": Decimal("70.00")}
POOL_SHARE = {"search": Decimal("33.33"), "ads": Decimal("16.67")}  # of an untagged 50.00 a day
SMALL = Decimal("2.05")  # search's small model, tagged
FRESH = Decimal("40.00")  # a deployment only estimated so far (no bill has ever named it)


def _models(page: str, alert: Alert) -> list[tuple[str, str, str]]:
    """(link or "", text, amount text) of each reason under `alert`'s row."""
    row = page[page.index(f'data-alert="{alert.pk}"') :]
    row = row[: row.index("</tr>")]
    found = re.findall(
        r'<li>(?:<a href="([^"]+)">)?([^<]+)(?:</a>)?\s*<span class="muted">([^<]+)</span>', row
    )
    return [(html.unescape(href), text.strip(), amount.strip()) for href, text, amount in found]


def _dollars(text: str) -> Decimal:
    return Decimal(re.match(r"\$([\d,.]+) in the period", text).group(1).replace(",", ""))


@pytest.fixture
def world():
    account = CloudAccountFactory(slug="gcp-prod", provider="gcp")
    teams = {slug: TeamFactory(slug=slug, name=slug.title()) for slug in DIRECT}
    direct = {
        slug: DeploymentFactory(
            slug=f"{slug}-direct",
            account=account,
            provider="gcp",
            model=ServedModelFactory(slug=f"{slug}-model"),
        )
        for slug in DIRECT
    }
    pool = DeploymentFactory(
        slug="shared-pool", account=account, provider="gcp", model=ServedModelFactory(slug="pool-model")
    )
    small = DeploymentFactory(
        slug="search-small", account=account, provider="gcp", model=ServedModelFactory(slug="small-model")
    )
    fresh = DeploymentFactory(
        slug="fresh-h100", account=account, provider="gcp", model=ServedModelFactory(slug="fresh-model")
    )
    bills, allocated, estimates = [], [], []
    day = FIRST_BILL
    while day <= ESTIMATED_DAYS[-1]:
        cell = {
            "day": day, "account": account, "billing_period_start": day.replace(day=1), "provider": "gcp",
            "charge_category": "Usage", "billing_currency": "USD",
        }  # fmt: skip
        for slug, team in teams.items():
            cost, share = DIRECT[slug], POOL_SHARE[slug]
            if day <= LAST_BILL:
                bills.append(DailyCostFactory.build(
                    **cell, team=team, model=direct[slug].model, deployment=direct[slug],
                    billed_cost=cost, effective_cost=cost, service_name="Vertex AI",
                ))  # fmt: skip
                allocated += [
                    AllocatedCost(**cell, team=team, model=direct[slug].model, deployment=direct[slug],
                                  billed_cost=cost, effective_cost=cost, allocated_method_id="direct"),
                    AllocatedCost(**cell, team=team, model=pool.model, deployment=pool,
                                  billed_cost=share, effective_cost=share, allocated_method_id="gpu_seconds"),
                ]  # fmt: skip
            else:
                estimates += [
                    SpendEstimate(day=day, deployment=deployment, team=team, model=deployment.model,
                                  currency="USD", estimated_cost=amount, basis="unit_cost")
                    for deployment, amount in ((direct[slug], cost), (pool, share))
                ]  # fmt: skip
        if day <= LAST_BILL:
            pool_total = sum(POOL_SHARE.values())
            # The pool's bill names no team: a lead never sees it in the explorer.
            bills += [
                DailyCostFactory.build(**cell, model=pool.model, deployment=pool, billed_cost=pool_total,
                                       effective_cost=pool_total, service_name="Vertex AI"),
                DailyCostFactory.build(**cell, team=teams["search"], model=small.model, deployment=small,
                                       billed_cost=SMALL, effective_cost=SMALL, service_name="Vertex AI"),
            ]  # fmt: skip
            allocated.append(
                AllocatedCost(**cell, team=teams["search"], model=small.model, deployment=small,
                              billed_cost=SMALL, effective_cost=SMALL, allocated_method_id="direct")
            )  # fmt: skip
        else:
            estimates.append(
                SpendEstimate(day=day, deployment=fresh, team=teams["search"], model=fresh.model,
                              currency="USD", estimated_cost=FRESH, basis="unit_cost")
            )  # fmt: skip
        day += dt.timedelta(days=1)
    DailyCost.objects.bulk_create(bills)
    AllocatedCost.objects.bulk_create(allocated)
    SpendEstimate.objects.bulk_create(estimates)

    search = teams["search"]
    alerts = {}
    for name, budget in {
        "search": BudgetFactory(team=search, name="Search"),
        "search_fresh": BudgetFactory(team=search, model=fresh.model, name="Search on fresh"),
        "organisation": BudgetFactory(team=None, name="Everyone"),
        "ads": BudgetFactory(team=teams["ads"], name="Ads"),
    }.items():
        alerts[name] = Alert.objects.create(
            kind="budget_threshold", team=budget.team, budget=budget, message=f"{budget.name} reached 100 %",
            dedup_key=f"budget:{name}", details={**WINDOW, "budget": budget.pk},
        )  # fmt: skip
    # As the detector stores them on the allocated / estimated basis (governance/anomalies.py).
    alerts["anomaly"] = Alert.objects.create(
        kind="anomaly", team=search, message="Team search spent more than usual", dedup_key="anomaly:search",
        details={
            "dimension": "team", "value": "search", "day": "2026-12-02", "currency": "USD",
            "contributors": [
                {"dimension": "deployment", "value": "shared-pool", "delta": "20.00", "basis": "allocated"},
                {"dimension": "model", "value": "pool-model", "delta": "20.00", "basis": "allocated"},
                {"dimension": "deployment", "value": "fresh-h100", "delta": "12.34", "basis": "estimated"},
                {"dimension": "deployment", "value": "search-direct", "delta": "5.00", "basis": "allocated"},
            ],
        },
    )  # fmt: skip
    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=search, role="lead")
    return {
        "lead": lead,
        "finance": UserFactory(username="finance", roles=["finance"]),
        "alerts": alerts,
        "search": search,
        "fresh": fresh,
    }


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_budget_alerts_reasons_add_up_to_the_budgets_spend_with_its_pool_share_and_estimates(world):
    alert = world["alerts"]["search"]
    reasons = _models(_client(world["lead"]).get("/governance/alerts/").content.decode(), alert)
    # By model (the budget fixes the team): Nov 16-30 billed (allocated), Dec 1-2 estimated.
    billed_days, estimated_days = 15, 2
    assert [(text, amount) for _, text, amount in reasons] == [
        ("Model search-model", f"${DIRECT['search'] * 17:,} in the period, $200.20 of it estimated"),
        ("Model pool-model", f"${POOL_SHARE['search'] * 17:,} in the period, $66.66 of it estimated"),
        ("Model fresh-model", "$80.00 in the period, all estimated from usage"),
        ("1 other model", f"${SMALL * billed_days} in the period"),
    ]
    spend = scope_spend_daily(
        scope=SpendScope(team_id=world["search"].pk),
        start=dt.date(2026, 11, 16),
        end=dt.date(2026, 12, 16),
        currency="USD",
    )
    total = (DIRECT["search"] + POOL_SHARE["search"]) * (billed_days + estimated_days)
    total += SMALL * billed_days + FRESH * estimated_days
    assert spend.total == total == Decimal("2379.06")
    assert sum(_dollars(amount) for _, _, amount in reasons) == spend.total


def test_the_organisations_reasons_split_it_by_team_and_add_up_to_its_spend(world):
    reasons = _models(
        _client(world["finance"]).get("/governance/alerts/").content.decode(), world["alerts"]["organisation"]
    )
    everyone = scope_spend_daily(
        scope=SpendScope(), start=dt.date(2026, 11, 16), end=dt.date(2026, 12, 16), currency="USD"
    )
    assert [text for _, text, _ in reasons] == ["Team search", "Team ads"]
    assert sum(_dollars(amount) for _, _, amount in reasons) == everyone.total == Decimal("3852.45")


def test_a_share_of_a_shared_pool_links_to_the_overview_not_to_an_explorer_refusal(world):
    client = _client(world["lead"])
    reasons = {text: url for url, text, _ in _models(client.get("/governance/alerts/").content.decode(),
                                                       world["alerts"]["search"])}  # fmt: skip
    search, pool_model = world["search"], ServedModel.objects.get(slug="pool-model")
    assert reasons["Model pool-model"] == (
        f"/?start=2026-11-16&end=2026-12-15&team={search.pk}&model={pool_model.pk}"
    )
    # The explorer reads the billed rollup, where the pool names no team: for the lead it refuses
    # the model (the link the Alerts page used to give).
    refused = client.get("/explorer/?f_team=search&f_model=pool-model&start=2026-11-16&end=2026-12-15")
    assert "Select a valid choice" in refused.content.decode()
    assert reasons["1 other model"] == ""


def test_a_deployment_known_only_from_estimates_links_to_its_estimate_accuracy(world):
    reasons = _models(
        _client(world["lead"]).get("/governance/alerts/").content.decode(), world["alerts"]["search_fresh"]
    )
    assert reasons == [
        ("/estimates/fresh-h100/", "Deployment fresh-h100", "$80.00 in the period, all estimated from usage")
    ]


@pytest.mark.parametrize("who", ["lead", "finance"])
def test_every_link_on_the_alerts_page_opens_a_page_without_a_form_error(world, who):
    client = _client(world[who])
    page = client.get("/governance/alerts/").content.decode()
    links = [html.unescape(href) for href in re.findall(r'<ul class="contributors".*?</ul>', page, re.S)
             for href in re.findall(r'href="([^"]+)"', href)]  # fmt: skip
    # The lead: search's budget (3 linked models), search on fresh (1), the anomaly (4); finance also
    # the organisation's (2 teams) and ads' (2 models).
    assert len(links) == {"lead": 8, "finance": 12}[who]
    for url in links:
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "errorlist" not in body and "Select a valid choice" not in body, url
    if who == "lead":
        assert "ads" not in " ".join(links) and "Team ads" not in page
