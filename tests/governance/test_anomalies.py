"""Anomaly detection compares like with like on demo-shaped data: bills two days late, each team's
history allocated (its share of a shared pool included) and the days without a bill estimated from
usage, the estimates running above the bill as the demo's do. Steady teams are never flagged, on a
billed day or an estimated one; a real spike is, with the contributor that explains it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import AllocatedCost, DailyCost, SpendEstimate
from governance.anomalies import anomalies_detect, anomalies_find
from governance.models import Alert
from tests.factories import CloudAccountFactory, DailyCostFactory, DeploymentFactory, TeamFactory

pytestmark = pytest.mark.django_db

LAST_BILL = dt.date(2026, 11, 30)  # bills land two days late: Dec 1 and 2 are estimated
LATEST = dt.date(2026, 12, 2)
FIRST_ESTIMATE = dt.date(2026, 11, 14)  # estimates kept (reconciled) since then, as the replay leaves
BASES = {"search": 400, "assistant": 1300, "ads-ranking": 500, "fraud": 90, "support-bot": 300}
POOL_SHARE = Decimal("0.35")  # each team's share of the shared pool, on top of its direct cost
ESTIMATE_BIAS = Decimal("1.15")  # the estimates run 15 % above the bill


def _amount(base: int, day: dt.date) -> Decimal:
    """A team's direct cost: its base with a weekly shape and a little day-to-day wobble."""
    weekly = Decimal("0.85") if day.weekday() >= 5 else Decimal("1")
    return (base * weekly + base * Decimal(day.toordinal() % 5) / 100).quantize(Decimal("0.01"))


@pytest.fixture
def demo():
    account = CloudAccountFactory(slug="gcp-prod", provider="gcp")
    pool = DeploymentFactory(slug="shared-pool", account=account, provider="gcp")
    teams, direct = {}, {}
    for slug in BASES:
        teams[slug] = TeamFactory(slug=slug)
        direct[slug] = DeploymentFactory(slug=f"{slug}-direct", account=account, provider="gcp")
    bills, allocated, estimates = [], [], []
    day = LAST_BILL - dt.timedelta(days=50)
    while day <= LATEST:
        cell = {
            "day": day, "account": account, "billing_period_start": day.replace(day=1), "provider": "gcp",
            "charge_category": "Usage", "billing_currency": "USD",
        }  # fmt: skip
        pool_total = Decimal("0")
        for slug, base in BASES.items():
            cost = _amount(base, day)
            share = (cost * POOL_SHARE).quantize(Decimal("0.01"))
            pool_total += share
            if day <= LAST_BILL:
                # The bill tags each team's direct cost; the pool is untagged, allocated by usage.
                bills.append(DailyCostFactory.build(
                    **cell, team=teams[slug], model=direct[slug].model, deployment=direct[slug],
                    billed_cost=cost, effective_cost=cost, service_name="Vertex AI", sku_id=f"{slug}-sku",
                ))  # fmt: skip
                allocated += [
                    AllocatedCost(**cell, team=teams[slug], model=direct[slug].model, deployment=direct[slug],
                                  billed_cost=cost, effective_cost=cost, allocated_method_id="direct"),
                    AllocatedCost(**cell, team=teams[slug], model=pool.model, deployment=pool,
                                  billed_cost=share, effective_cost=share, allocated_method_id="gpu_seconds"),
                ]  # fmt: skip
            if day >= FIRST_ESTIMATE:
                for deployment, figure in ((direct[slug], cost), (pool, share)):
                    estimates.append(SpendEstimate(
                        day=day, deployment=deployment, team=teams[slug], model=deployment.model,
                        currency="USD", estimated_cost=(figure * ESTIMATE_BIAS).quantize(Decimal("0.01")),
                        basis="unit_cost", billed_cost=figure if day <= LAST_BILL else None,
                        reconciled_at=timezone.now() if day <= LAST_BILL else None,
                    ))  # fmt: skip
        if day <= LAST_BILL:
            bills.append(DailyCostFactory.build(
                **cell, deployment=pool, model=pool.model, billed_cost=pool_total, effective_cost=pool_total,
                service_name="Vertex AI", sku_id="pool-sku",
            ))  # fmt: skip
        day += dt.timedelta(days=1)
    DailyCost.objects.bulk_create(bills)
    AllocatedCost.objects.bulk_create(allocated)
    SpendEstimate.objects.bulk_create(estimates)
    return {"account": account, "teams": teams, "direct": direct, "pool": pool}


def _flagged(day: dt.date) -> set[tuple[str, str]]:
    return {(anomaly.dimension, anomaly.value) for anomaly in anomalies_find(day=day)}


def test_steady_teams_are_not_flagged_on_billed_or_estimated_days(demo):
    """Read as tagged billed cost (no pool share) against estimates (pool share and the estimates'
    15 % included), every team's estimated days were a jump of ~55 %: all flagged on Dec 1 and 2."""
    for day in (LAST_BILL - dt.timedelta(days=1), LAST_BILL, LATEST - dt.timedelta(days=1), LATEST):
        assert _flagged(day) == set(), day


def test_a_spike_on_an_estimated_day_is_flagged_against_what_the_estimates_said_before(demo):
    """Support bot's traffic on its deployment runs at five times its usual day on Dec 2, the
    latest day (no bill yet): the team, its deployment and model are anomalies, nobody else."""
    direct = demo["direct"]["support-bot"]
    spike = SpendEstimate.objects.get(day=LATEST, deployment=direct)
    spike.estimated_cost *= 5
    spike.save()
    flagged = _flagged(LATEST)
    assert {item for item in flagged if item[0] == "team"} == {("team", "support-bot")}
    assert {("deployment", "support-bot-direct"), ("model", direct.model.slug)} <= flagged
    raised = {(anomaly.dimension, anomaly.value): anomaly for anomaly, _ in anomalies_detect(day=LATEST)}
    team = raised[("team", "support-bot")]
    usual = _amount(BASES["support-bot"], LATEST) * (1 + POOL_SHARE) * ESTIMATE_BIAS
    # Expected on the estimates' own basis (15 % over the bill), not on the bill's.
    assert abs(team.expected - usual) < usual * Decimal("0.06")
    assert team.basis == ["estimated"] and team.not_in_basis == ["service", "sku"]
    top = team.contributors[0]
    assert (top["dimension"], top["value"], top["basis"]) == ("deployment", "support-bot-direct", "estimated")
    alert = Alert.objects.get(dedup_key=f"anomaly:team:support-bot:{LATEST}")
    assert "(estimated from usage, bill not landed)" in alert.message
    assert "mostly deployment support-bot-direct (+1," in alert.message and "USD" in alert.message
    assert alert.details["contributors"][0]["delta"] == str(top["delta"])
    assert alert.details["not_in_basis"] == ["service", "sku"]


def test_a_spike_on_a_billed_day_is_flagged_on_the_allocated_basis(demo):
    """Fraud's direct cost triples on Nov 30 (billed): flagged on its allocated cost; the
    allocation has no service or SKU, so the contributors are by deployment, model, team."""
    fraud = demo["teams"]["fraud"]
    row = AllocatedCost.objects.get(day=LAST_BILL, team=fraud, deployment=demo["direct"]["fraud"])
    AllocatedCost.objects.filter(pk=row.pk).update(effective_cost=row.effective_cost * 3)
    flagged = _flagged(LAST_BILL)
    assert {item for item in flagged if item[0] == "team"} == {("team", "fraud")}
    anomaly = next(item for item in anomalies_find(day=LAST_BILL) if item.dimension == "team")
    assert anomaly.basis == ["allocated"] and anomaly.not_in_basis == ["service", "sku"]
    assert (anomaly.contributors[0]["value"], anomaly.contributors[0]["basis"]) == (
        "fraud-direct",
        "allocated",
    )


def test_estimated_days_are_not_judged_against_bills_without_estimate_history(demo):
    """With only the open days estimated (no estimate history to compare with), an estimated day
    is left out, not compared with the bills: the steady teams' estimates (55 % over their tagged
    bill, 15 % over their allocated cost) flag nothing, and neither would a spike (not judged)."""
    SpendEstimate.objects.filter(day__lte=LAST_BILL).delete()
    assert _flagged(LATEST) == set()
