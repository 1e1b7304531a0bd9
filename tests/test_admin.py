"""Django admin: every model is there and opens; pipeline tables are read-only; no secrets shown;
changes to governed objects are audited; a team lead cannot reach other teams' budgets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from attribution.models import CloudAccount, CostLineItem, IngestRun
from governance.models import Alert, AuditEvent, Budget, BudgetThreshold, NotificationChannel, Quota
from governance.services import api_token_create
from routing.models import Gateway, PolicyDocument, PushAttempt, RoutingPolicy
from tests.factories import (
    BudgetFactory,
    CloudAccountFactory,
    DailyCostFactory,
    DeploymentFactory,
    MembershipFactory,
    ServedModelFactory,
    TeamFactory,
    UserFactory,
    line_item_create,
)

pytestmark = pytest.mark.django_db

DOMAIN_APPS = ("attribution", "governance", "routing")


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _line_item(run: IngestRun, line: int, team=None) -> CostLineItem:
    start = timezone.make_aware(dt.datetime(2026, 10, 1))
    return line_item_create(
        account=run.account,
        ingest_run=run,
        source_line=line,
        billing_period_start=dt.date(2026, 10, 1),
        billed_cost=Decimal("1.2345"),
        effective_cost=Decimal("1.2000"),
        billing_currency="USD",
        charge_period_start=start,
        charge_period_end=start + dt.timedelta(hours=1),
        billing_period_start_at=start,
        billing_period_end_at=start + dt.timedelta(days=31),
        charge_category="Usage",
        provider_name="AWS",
        billing_account_id="123456789012",
        resource_id=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/e{line}",
        team=team,
    )


@pytest.fixture
def objects():
    """One row of every model, so every change page can be opened."""
    account = CloudAccountFactory(slug="aws-prod")
    team = TeamFactory(slug="search", name="Search")
    served = ServedModelFactory(slug="llama", name="llama-3.1-70b")
    DeploymentFactory(slug="llama-aws", model=served, account=account)
    run = IngestRun.objects.create(
        account=account,
        billing_period_start=dt.date(2026, 10, 1),
        billing_period_end=dt.date(2026, 11, 1),
        state="succeeded",
        source_sums={"billed_cost": "2.4690"},
        database_sums={"billed_cost": "2.4690"},
    )
    _line_item(run, 1, team)
    _line_item(run, 2)
    run.rejected_rows.create(file_path="cur/part-0.csv", line_number=7, raw_text="x,y", reason="bad date")
    run.account.tag_keys.create(key="user:team", normalized_key="team", last_seen_run=run)
    apps.get_model("attribution", "UsageRecord").objects.create(
        bucket_start=timezone.make_aware(dt.datetime(2026, 10, 1, 12)),
        reporter="haproxy-1",
        deployment=DeploymentFactory(slug="llama-aws"),
        team=team,
        model=served,
        requests=10,
    )
    cell = DailyCostFactory(account=account, team=team, model=served)
    apps.get_model("attribution", "DailyTagCost").objects.create(
        day=cell.day,
        account=account,
        billing_period_start=cell.billing_period_start,
        provider=cell.provider,
        team=team,
        model=served,
        charge_category=cell.charge_category,
        billing_currency=cell.billing_currency,
        tag_key="env",
        tag_value="prod",
        billed_cost=cell.billed_cost,
    )
    apps.get_model("attribution", "DailyResourceCost").objects.create(
        day=cell.day,
        account=account,
        billing_period_start=cell.billing_period_start,
        provider=cell.provider,
        service_name="Amazon S3",
        resource="arn:aws:s3:::logs",
        billing_currency=cell.billing_currency,
        billed_cost=cell.billed_cost,
    )
    budget = BudgetFactory(name="Search monthly", team=team)
    BudgetThreshold.objects.create(budget=budget, percent=Decimal("80"))
    Quota.objects.create(team=team, metric="tokens", window="minute", limit=100_000)
    NotificationChannel.objects.create(name="ops mail", kind="email", target="ops@example.com")
    alert = Alert.objects.create(
        kind="budget_threshold", budget=budget, team=team, message="80 %", dedup_key="k1"
    )
    _governance_history(budget=budget, alert=alert)
    owner = UserFactory(username="tokenowner")
    MembershipFactory(user=owner, team=team)
    token, plaintext = api_token_create(user=owner, name="ci", scopes=["read"])
    gateway = Gateway.objects.create(
        name="Edge HAProxy", slug="edge", kind="haproxy", token_prefix="gw1234", token_hash="f" * 64
    )
    RoutingPolicy.objects.create(model=served)
    document = PolicyDocument.objects.create(
        gateway=gateway, version=1, content={"routes": []}, content_hash="c" * 64
    )
    PushAttempt.objects.create(document=document, gateway=gateway, outcome="succeeded", status_code=200)
    _routing_state(served)
    _rules_allocation_and_runs(account, team, served)
    return {
        "team": team,
        "budget": budget,
        "token": token,
        "plaintext": plaintext,
        "gateway": gateway,
        "document": document,
        "run": run,
    }


def _routing_state(served) -> None:
    from attribution.models import Deployment
    from routing import models as r

    deployment = Deployment.objects.get(slug="llama-aws")
    r.DeploymentRouting.objects.create(deployment=deployment, capacity_tps=Decimal("5000"))
    r.RouteLatency.objects.create(deployment=deployment, origin="us-east-1", p95_ms=420)
    r.EgressRate.objects.create(provider="aws", scope="internet", price_per_gb=Decimal("0.09"))
    r.WeightPin.objects.create(
        model=served,
        weights={"llama-aws": 100},
        reason="test",
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    r.RouteState.objects.create(model=served, request_class="realtime", weights={str(deployment.pk): "1"})


def _rules_allocation_and_runs(account, team, served) -> None:
    from attribution import models as m

    deployment = m.Deployment.objects.get(slug="llama-aws")
    day = dt.date(2026, 10, 1)
    m.DimensionRule.objects.create(
        name="pool tag", match_field="tag", tag_key="pool", value="gpu-a", set_deployment=deployment
    )
    rule = m.AllocationRule.objects.create(name="GPU pool A", match_deployment=deployment, method="tokens")
    m.AllocationShare.objects.create(rule=rule, team=team, percent=Decimal("100"))
    m.EstimateCalibration.objects.create(
        deployment=deployment, basis="unit_cost", currency="USD", factor=Decimal("1.05"),
        learned_at=timezone.make_aware(dt.datetime(2026, 10, 2)), window_first=day, window_last=day,
        days_used=1, estimated=Decimal("10"), billed=Decimal("10.5"),
    )  # fmt: skip
    m.AllocatedCost.objects.create(
        day=day, account=account, billing_period_start=day, provider="aws", team=team, model=served,
        deployment=deployment, charge_category="Usage", billing_currency="USD", billed_cost=Decimal("1.5"),
        effective_cost=Decimal("1.2"), allocated_method_id="tokens", rule=rule,
    )  # fmt: skip
    m.UnitCost.objects.create(
        day=day, model=served, deployment=deployment, provider="aws", currency="USD",
        effective_cost=Decimal("1.2"), input_tokens=1_000_000, cost_per_1m_input_tokens=Decimal("1.2"),
    )  # fmt: skip
    m.PriceCard.objects.create(deployment=deployment, unit="hour", price=Decimal("98.32"), valid_from=day)
    m.SpendEstimate.objects.create(
        day=day, deployment=deployment, team=team, model=served, currency="USD",
        estimated_cost=Decimal("1.3"), basis="unit_cost",
    )  # fmt: skip
    m.ExchangeRate.objects.create(date=day, from_currency="EUR", to_currency="USD", rate=Decimal("1.08"))
    m.UsageBatch.objects.create(reporter="haproxy-1", batch_id="b-1", payload_sha256="a" * 64, records=1)
    aware_hour = timezone.make_aware(dt.datetime(2026, 10, 1, 12))
    m.UsageHourly.objects.create(hour=aware_hour, deployment=deployment, team=team, model=served, requests=10)
    m.UsageDaily.objects.create(day=day, deployment=deployment, team=team, model=served, requests=10)
    m.SyncRun.objects.create(account=account, kind="billing", state="succeeded")
    m.BillingPeriodVersion.objects.create(account=account, billing_period_start=day, source_version="exec-1")
    m.BackgroundRun.objects.create(kind="rules_reapply", state="succeeded")
    m.RuleSuggestion.objects.create(
        fingerprint="f" * 64, kind="name_pattern", name="llama pods", account=account,
        match_field="resource_id", operator="regex", value="^llama-", set_team=team,
        confidence=Decimal("0.9"), currency="USD", untagged_cost=Decimal("12.5"),
    )  # fmt: skip
    m.AllocationSuggestion.objects.create(
        fingerprint="a" * 64, kind="idle_spread", name="spread idle", account=account, rule_ids=[1],
        account_ids=[account.pk], confidence=Decimal("0.5"), currency="USD",
        moved_effective_cost=Decimal("50"), moved_billed_cost=Decimal("50"),
    )  # fmt: skip


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def _governance_history(*, budget, alert) -> None:
    """One row of each table that evaluations, leases and deliveries write."""
    from governance.lease_services import lease_request
    from governance.models import AlertDelivery, BudgetEnforcement, BudgetEvent, BudgetForecast

    now = timezone.now()
    period = {"period_start": dt.date(2026, 10, 1), "period_end": dt.date(2026, 11, 1)}
    enforcement = BudgetEnforcement.objects.create(
        budget=budget, action="notify", basis="actual", limit_amount=Decimal("800"), reason="80 %",
        applied_at=now, **period,
    )  # fmt: skip
    BudgetEvent.objects.create(
        budget=budget, enforcement=enforcement, kind="applied", action="notify", threshold_label="80 %",
        basis="actual", currency="USD", spend_billed=Decimal("810"), spend_estimated=Decimal("0"),
        limit_amount=Decimal("800"), created_at=now, **period,
    )  # fmt: skip
    BudgetForecast.objects.create(
        budget=budget, currency="USD", method="ets", point=Decimal("900"), lower=Decimal("850"),
        upper=Decimal("950"), spend_to_date=Decimal("810"), computed_at=now, **period,
    )  # fmt: skip
    lease_request(holder="gateway:edge", amount=Decimal("5"), budget_id=budget.pk)
    AlertDelivery.objects.create(alert=alert, channel=NotificationChannel.objects.first(), state="sent")


def test_it_registers_every_model_of_the_three_apps():
    missing = [
        model._meta.label
        for app_label in DOMAIN_APPS
        for model in apps.get_app_config(app_label).get_models()
        if not admin.site.is_registered(model)
    ]
    assert missing == []


def test_it_opens_every_changelist_add_and_change_page(superuser_client, objects):
    for app_label in DOMAIN_APPS:
        for model in apps.get_app_config(app_label).get_models():
            model_admin = admin.site._registry[model]
            response = superuser_client.get(_url(model, "changelist"))
            assert response.status_code == 200, model._meta.label
            obj = model._default_manager.first()
            assert obj is not None, f"fixture has no {model._meta.label}"
            response = superuser_client.get(_url(model, "change", obj.pk))
            assert response.status_code == 200, model._meta.label
            add = superuser_client.get(_url(model, "add"))
            expected = 200 if model_admin.has_add_permission(_request(superuser_client)) else 403
            assert add.status_code == expected, model._meta.label


def _request(client):
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = User.objects.get(pk=client.session["_auth_user_id"])
    return request


def test_it_keeps_line_items_read_only_and_never_counts_the_whole_table(
    superuser_client, objects, django_assert_max_num_queries
):
    line_item_admin = admin.site._registry[CostLineItem]
    assert line_item_admin.show_full_result_count is False
    assert superuser_client.get(_url(CostLineItem, "add")).status_code == 403

    item = CostLineItem.objects.first()
    page = superuser_client.get(_url(CostLineItem, "change", item.pk)).content.decode()
    assert 'name="_save"' not in page  # view only
    response = superuser_client.post(_url(CostLineItem, "change", item.pk), {"billed_cost": "0"})
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.billed_cost == Decimal("1.2345")

    # No N+1 on the list, however many rows the page shows.
    for line in range(3, 40):
        _line_item(objects["run"], line)
    with django_assert_max_num_queries(10):
        assert superuser_client.get(_url(CostLineItem, "changelist")).status_code == 200


def test_it_shows_ingest_run_sums_read_only(superuser_client, objects):
    run = objects["run"]
    page = superuser_client.get(_url(IngestRun, "change", run.pk)).content.decode()
    assert "2.4690" in page
    assert 'name="source_sums"' not in page  # no input, just the value
    assert superuser_client.post(_url(IngestRun, "change", run.pk), {}).status_code == 403


def test_it_never_shows_a_token_hash(superuser_client, objects):
    token, gateway = objects["token"], objects["gateway"]
    pages = [
        superuser_client.get(_url(type(token), "changelist")),
        superuser_client.get(_url(type(token), "change", token.pk)),
        superuser_client.get(_url(Gateway, "changelist")),
        superuser_client.get(_url(Gateway, "change", gateway.pk)),
    ]
    for response in pages:
        html = response.content.decode()
        assert token.token_hash not in html
        assert gateway.token_hash not in html
        assert objects["plaintext"] not in html
        assert "token_hash" not in html
    assert token.prefix in pages[0].content.decode()


def test_it_revokes_tokens_from_the_admin_with_an_audit_entry(superuser_client, objects):
    token = objects["token"]
    response = superuser_client.post(
        _url(type(token), "changelist"), {"action": "revoke_tokens", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="revoke", object_id=str(token.pk), actor_label="root").exists()


def test_it_keeps_policy_documents_immutable(superuser_client, objects):
    document = objects["document"]
    page = superuser_client.get(_url(PolicyDocument, "change", document.pk)).content.decode()
    assert 'name="_save"' not in page
    assert (
        superuser_client.post(_url(PolicyDocument, "change", document.pk), {"version": 9}).status_code == 403
    )
    assert (
        superuser_client.post(_url(PolicyDocument, "delete", document.pk), {"post": "yes"}).status_code == 403
    )
    document.refresh_from_db()
    assert document.version == 1


def test_it_audits_a_budget_change_made_in_the_admin(superuser_client, objects):
    budget = objects["budget"]
    data = {
        "name": budget.name,
        "team": budget.team_id,
        "period": "month",
        "amount": "2500.00",
        "currency": "USD",
        "action": "throttle",
        "timezone": "UTC",
        "fiscal_year_start_month": "1",
        "is_active": "on",
        "thresholds-TOTAL_FORMS": "1",
        "thresholds-INITIAL_FORMS": "1",
        "thresholds-0-id": budget.thresholds.get().pk,
        "thresholds-0-budget": budget.pk,
        "thresholds-0-percent": "90",
        "thresholds-0-basis": "actual",
        "thresholds-0-action": "",
    }
    response = superuser_client.post(_url(Budget, "change", budget.pk), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    budget.refresh_from_db()
    assert budget.amount == Decimal("2500.00")
    event = AuditEvent.objects.get(object_type="governance.budget", object_id=str(budget.pk), action="update")
    assert event.actor_label == "root"
    assert event.changes["amount"] == {"from": "1000.0000000000", "to": "2500.00"}
    assert event.changes["action"] == {"from": "notify", "to": "throttle"}
    threshold_event = AuditEvent.objects.get(object_type="governance.budgetthreshold", action="update")
    assert threshold_event.changes == {"percent": {"from": "80.00", "to": "90"}}


@pytest.mark.parametrize("roles", [["team_lead"], ["finance"], ["admin"]])
def test_the_admin_is_for_superusers_only(client, objects, roles):
    """Staff status is not enough: the admin bypasses the roles' row scoping, so a staff team lead (or
    finance, or even the admin role without superuser) is sent to the admin login, reads nothing and
    changes nothing; the Settings pages are theirs."""
    call_command("setup_roles", stdout=None)
    other_team = TeamFactory(slug="ads", name="Ads")
    other_budget = BudgetFactory(name="Ads monthly", team=other_team)
    staff = UserFactory(username="staffer", is_staff=True, roles=roles)
    MembershipFactory(user=staff, team=objects["team"], role="lead")
    client.force_login(staff)

    for url in (reverse("admin:index"), _url(Budget, "changelist"), _url(Budget, "change", other_budget.pk)):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url
    login_page = client.get(reverse("admin:login")).content.decode()
    assert "not authorized to access this page" in login_page
    assert "Ads monthly" not in login_page

    response = client.post(
        _url(Budget, "add"),
        {"name": "Sneaky", "team": other_team.pk, "period": "month", "amount": "1", "currency": "USD",
         "action": "notify", "timezone": "UTC", "fiscal_year_start_month": "1",
         "thresholds-TOTAL_FORMS": "0", "thresholds-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 302
    assert not Budget.objects.filter(name="Sneaky").exists()


def test_a_superuser_opens_the_admin(superuser_client, objects):
    assert superuser_client.get(reverse("admin:index")).status_code == 200
    assert superuser_client.get(_url(Budget, "changelist")).status_code == 200


def test_it_audits_changes_to_cloud_account_source_settings(superuser_client, objects):
    account = CloudAccount.objects.get(slug="aws-prod")
    response = superuser_client.post(
        _url(CloudAccount, "change", account.pk),
        {
            "provider": "aws",
            "name": account.name,
            "slug": account.slug,
            "billing_currency": "USD",
            "sync_interval_minutes": "360",
            "source_settings": '{"bucket": "cur-exports", "secret_access_key": "env:AWS_SECRET"}',
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(object_type="attribution.cloudaccount", action="update")
    assert event.actor_label == "root"
    assert event.changes["after"]["source_settings"] == {
        "bucket": "cur-exports",
        "secret_access_key": "env:AWS_SECRET",
    }

    # A secret pasted in place of a reference is refused, and nothing is recorded.
    response = superuser_client.post(
        _url(CloudAccount, "change", account.pk),
        {
            "provider": "aws",
            "name": account.name,
            "slug": account.slug,
            "billing_currency": "USD",
            "source_settings": '{"secret_access_key": "AKIAREALSECRET"}',
        },
    )
    assert response.status_code == 200
    assert "looks like a credential" in response.content.decode()
    assert AuditEvent.objects.filter(object_type="attribution.cloudaccount").count() == 1


def test_it_refuses_a_mapping_rule_whose_regex_cannot_be_evaluated(superuser_client, objects):
    # Defect 1 of issue 10: the admin form accepted "(" and every later ingest failed.
    from attribution.models import DimensionRule

    before = DimensionRule.objects.count()
    data = {
        "name": "Broken",
        "priority": "5",
        "match_field": "service_name",
        "operator": "regex",
        "value": "(",
        "set_team": objects["team"].pk,
        "is_active": "on",
    }
    response = superuser_client.post(_url(DimensionRule, "add"), data)
    assert response.status_code == 200
    assert "Not a valid regular expression" in response.content.decode()
    assert DimensionRule.objects.count() == before
    data["value"] = "^amazon (ec2|sagemaker)$"
    response = superuser_client.post(_url(DimensionRule, "add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert DimensionRule.objects.count() == before + 1


def test_it_refuses_fixed_shares_that_do_not_total_100_percent(superuser_client, objects):
    # Defect 5 of issue 10: the rule's form accepted shares totalling 90 % without a word.
    from attribution.models import AllocationRule, AllocationShare, Team

    ads = TeamFactory(slug="ads", name="Ads")
    data = {
        "name": "GPU pool B",
        "priority": "100",
        "match_tag_key": "pool",
        "match_tag_value": "gpu-b",
        "method": "fixed",
        "idle_policy": "own_line",
        "is_active": "on",
        "shares-TOTAL_FORMS": "2",
        "shares-INITIAL_FORMS": "0",
        "shares-0-team": objects["team"].pk,
        "shares-0-percent": "60",
        "shares-1-team": ads.pk,
        "shares-1-percent": "30",
    }
    response = superuser_client.post(_url(AllocationRule, "add"), data)
    assert response.status_code == 200
    assert "must total exactly 100%; its 2 shares total 90%" in response.content.decode()
    assert not AllocationRule.objects.filter(name="GPU pool B").exists()
    data["shares-1-percent"] = "40"
    response = superuser_client.post(_url(AllocationRule, "add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = AllocationRule.objects.get(name="GPU pool B")
    share = rule.shares.get(team=ads)
    # One share edited on its own may not break the total either, nor be deleted alone.
    response = superuser_client.post(
        _url(AllocationShare, "change", share.pk),
        {"rule": rule.pk, "team": ads.pk, "percent": "35"},
    )
    assert response.status_code == 200
    assert "total 95%" in response.content.decode()
    share.refresh_from_db()
    assert share.percent == Decimal("40")
    assert (
        superuser_client.post(_url(AllocationShare, "delete", share.pk), {"post": "yes"}).status_code == 403
    )
    assert Team.objects.filter(slug="ads").exists() and rule.shares.count() == 2
