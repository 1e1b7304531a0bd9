"""Settings → Allocation rules: the rules with their shares and their preview (what each moved in
the last 30 days, only the caller's teams for team roles); admin creates and edits them through the
audited service; bad input (shares not totalling 100, no pool, unknown slug) stores nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import AllocatedCost, AllocationRule, AllocationShare
from governance.models import AuditEvent
from tests.factories import CloudAccountFactory, DeploymentFactory
from tests.personas import PERSONAS, personas_create

pytestmark = pytest.mark.django_db
URL = "/settings/allocation-rules/"


@pytest.fixture
def world():
    world = personas_create()
    account = CloudAccountFactory(slug="aws-prod", provider="aws")
    pool = DeploymentFactory(slug="gpu-pool", account=account)
    rule = AllocationRule.objects.create(name="GPU pool by tokens", match_deployment=pool, method="tokens")
    day = timezone.localdate() - dt.timedelta(days=3)
    for team, amount in ((world["alpha"], "611.11"), (world["beta"], "722.22")):
        AllocatedCost.objects.create(
            day=day,
            account=account,
            billing_period_start=day.replace(day=1),
            provider="aws",
            team=team,
            deployment=pool,
            charge_category="Usage",
            billing_currency="USD",
            billed_cost=Decimal(amount),
            effective_cost=Decimal(amount),
            allocated_method_id="tokens",
            rule=rule,
        )
    world.update(rule=rule, pool=pool)
    return world


# persona: (status, sees alpha's 611.11, sees beta's 722.22, may edit)
MATRIX = {
    "admin": (200, True, True, True),
    "finance": (200, True, True, False),
    "lead": (200, True, False, False),
    "other_lead": (200, False, True, False),
    "viewer": (200, True, False, False),
    "anonymous": (302, False, False, False),
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_preview_shows_each_role_only_its_teams_and_only_admin_edits(world, persona):
    status, sees_alpha, sees_beta, may_edit = MATRIX[persona]
    client = world["clients"][persona]
    response = client.get(URL)
    assert response.status_code == status
    html = response.content.decode()
    assert ("$611.11" in html) is sees_alpha
    assert ("$722.22" in html) is sees_beta
    assert ("$1,333.33" in html) is (sees_alpha and sees_beta)  # the pool total only for who reads all
    assert ('id="allocation-form"' in html) is may_edit
    edit = client.get(f"/settings/allocation-rules/{world['rule'].pk}/")
    assert edit.status_code == (200 if may_edit else 302 if persona == "anonymous" else 403)
    client.post(
        URL,
        {
            "name": "Platform evenly",
            "priority": "50",
            "match_tag_key": "pool",
            "match_tag_value": "platform",
            "method": "even",
            "idle_policy": "own_line",
            "is_active": "on",
        },
    )
    assert AllocationRule.objects.filter(name="Platform evenly").exists() is may_edit


def test_an_admin_creates_and_edits_a_fixed_split_audited(world):
    client = world["clients"]["admin"]
    values = {
        "name": "Search pool",
        "priority": "10",
        "match_tag_key": "pool",
        "match_tag_value": "search",
        "method": "fixed",
        "idle_policy": "spread",
        "is_active": "on",
        "shares": "alpha = 60\nbeta = 40",
    }
    assert client.post(URL, values).status_code == 302
    rule = AllocationRule.objects.get(name="Search pool")
    shares = {(share.team.slug, share.percent) for share in AllocationShare.objects.filter(rule=rule)}
    assert shares == {("alpha", Decimal("60.0000")), ("beta", Decimal("40.0000"))}
    form = client.get(f"/settings/allocation-rules/{rule.pk}/").content.decode()
    assert "alpha = 60" in form and "beta = 40" in form
    assert (
        client.post(
            f"/settings/allocation-rules/{rule.pk}/", {**values, "shares": "alpha = 75\nbeta = 25"}
        ).status_code
        == 302
    )
    events = list(
        AuditEvent.objects.filter(object_type="attribution.allocationrule", object_id=str(rule.pk)).order_by(
            "id"
        )
    )
    assert [event.action for event in events] == ["create", "update"]
    assert [share["percent"] for share in events[1].changes["after"]["shares"]] == ["75.0000", "25.0000"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"shares": "alpha = 60\nbeta = 30"}, "100"),
        ({"shares": "alpha = 60\nnobody = 40"}, "no team or model with the slug &#x27;nobody&#x27;"),
        ({"shares": "alpha = sixty"}, "is not a percent"),
        ({"match_tag_key": ""}, "Say which cost is the pool"),
        ({"name": "GPU pool by tokens"}, "already exists"),
    ],
)
def test_a_bad_rule_is_refused_clearly_and_stores_nothing(world, overrides, message):
    values = {
        "name": "Search pool",
        "priority": "10",
        "match_tag_key": "pool",
        "match_tag_value": "search",
        "method": "fixed",
        "idle_policy": "spread",
        "shares": "alpha = 60\nbeta = 40",
        **overrides,
    }
    response = world["clients"]["admin"].post(URL, values)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert AllocationRule.objects.count() == 1 and not AllocationShare.objects.exists()
    assert not AuditEvent.objects.exists()


def test_the_list_and_its_preview_take_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    for index in range(30):
        rule = AllocationRule.objects.create(
            name=f"r{index}", match_tag_key="pool", match_tag_value=f"p{index}", method="fixed"
        )
        AllocationShare.objects.create(rule=rule, team=world["alpha"], percent=Decimal("100"))
    with django_assert_max_num_queries(14):
        html = world["clients"]["finance"].get(URL).content.decode()
    assert html.count('id="allocation-rule-') == 31 and html.count("Alpha 100%") == 30
