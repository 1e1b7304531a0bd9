"""Suggested mapping rules: learned from tagged resources that share an untagged one's name, project
or service; scored, previewed, never applied until a person accepts; accept creates the rule through
the audited API and re-applies; edit and dismiss; admin and finance only."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from attribution.ingest import services
from attribution.mapping.suggestions import rule_suggestions_refresh, suggestion_candidates
from attribution.mapping.tasks import rules_reapply_task
from attribution.models import CostLineItem, DimensionRule, RuleSuggestion
from governance.models import AuditEvent
from tests.attribution.ingest_fixtures import FOCUS_COLUMNS, csv_write, focus_row
from tests.factories import MembershipFactory, ServedModelFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

ML = "345678901234"
PLATFORM = "456789012345"


def _arn(name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:{ML}:endpoint/{name}"


def _row(billed: str, *, resource: str, tags: dict, sub: str = ML, service: str = "Amazon SageMaker", day=1):
    return focus_row(
        BilledCost=billed,
        EffectiveCost=billed,
        ContractedCost=billed,
        ListCost=billed,
        BillingPeriodStart="2026-10-01T00:00:00Z",
        BillingPeriodEnd="2026-11-01T00:00:00Z",
        ChargePeriodStart=f"2026-10-0{day}T00:00:00Z",
        ChargePeriodEnd=f"2026-10-0{day + 1}T00:00:00Z",
        Tags=json.dumps(tags),
        SubAccountId=sub,
        ServiceName=service,
        ResourceId=resource,
    )


ROWS = [
    # Tagged production endpoints: the evidence.
    _row(
        "900.00",
        resource=_arn("llama-3-1-70b-search"),
        tags={"user:team": "search", "user:model": "llama-70b"},
    ),
    _row("800.00", resource=_arn("llama-3-1-70b-ads"), tags={"user:team": "ads", "user:model": "llama-70b"}),
    _row("30.00", resource=_arn("bge-large-recsys"), tags={"user:team": "recsys", "user:model": "bge"}),
    # Untagged twins, named like them.
    _row("904.51", resource=_arn("llama-3-1-70b-search-canary"), tags={}),
    _row("450.00", resource=_arn("llama-3-1-70b-search-shadow"), tags={}, day=2),
    _row("33.79", resource=_arn("bge-large-recsys-backfill"), tags={}),
    # A name shared by two teams: no pure stem, no suggestion.
    _row("12.00", resource=_arn("llama-3-1-70b-experiment"), tags={}),
    # The platform account: one tagged bucket, untagged storage and NAT beside it.
    _row(
        "2.00",
        resource="arn:aws:s3:::acme-platform-tfstate",
        tags={"user:team": "platform"},
        sub=PLATFORM,
        service="Amazon S3",
    ),  # fmt: skip
    _row("466.10", resource="arn:aws:s3:::acme-ml-artifacts", tags={}, sub=PLATFORM, service="Amazon S3"),
    _row(
        "175.55",
        resource="arn:aws:ec2:us-east-1:456789012345:natgateway/nat-0abc",
        tags={},
        sub=PLATFORM,
        service="Amazon EC2",
    ),  # fmt: skip
]


@pytest.fixture
def world(tmp_path: Path):
    for slug in ("search", "ads", "recsys", "platform"):
        TeamFactory(slug=slug, name=slug.title())
    ServedModelFactory(slug="llama-70b", name="Llama 70B")
    ServedModelFactory(slug="bge", name="BGE")
    account = services.cloud_account_get_or_create(slug="acme", provider="aws")
    path = csv_write(tmp_path / "focus.csv", FOCUS_COLUMNS, ROWS)
    for planned in services.ingest_runs_create(account=account, paths=[path], source_format="focus"):
        assert services.ingest_run_execute(run_id=planned.pk).state == "succeeded"
    return account


def _untagged_cost() -> Decimal:
    return sum(
        (
            item.billed_cost
            for item in CostLineItem.objects.filter(team__isnull=True, deployment__isnull=True)
        ),
        Decimal(0),
    )


def test_it_proposes_the_narrowest_pure_pattern_per_family_with_its_evidence(world):
    summary = rule_suggestions_refresh()
    assert summary.created == 3
    suggestions = {s.value: s for s in RuleSuggestion.objects.select_related("set_team", "set_model")}
    canary = suggestions[r"[/:]llama-3-1-70b-search([-_.][^/:]*)?$"]
    assert (canary.set_team.slug, canary.set_model.slug) == ("search", "llama-70b")
    assert (canary.match_field, canary.operator, canary.account_id) == ("resource_id", "regex", world.pk)
    assert canary.untagged_cost == Decimal("1354.51") and canary.untagged_resources == 2
    assert canary.evidence["resources"][0]["resource"] == _arn("llama-3-1-70b-search")
    # Dollars moved come from the rule preview: the search endpoint itself is tagged, so only the twins.
    assert canary.preview["billed_cost"] == {"USD": "1354.5100000000"}
    bge = suggestions[r"[/:]bge-large([-_.][^/:]*)?$"]
    assert (bge.set_team.slug, bge.set_model.slug, bge.untagged_cost) == ("recsys", "bge", Decimal("33.79"))
    platform = suggestions[PLATFORM]
    assert (platform.kind, platform.match_field, platform.set_team.slug) == (
        "sub_account",
        "sub_account_id",
        "platform",
    )
    assert platform.set_model is None and platform.untagged_cost == Decimal("641.65")
    # One tagged resource agreeing: 1 x (1 - 1/4); the account-wide kind counts for less.
    assert canary.confidence == Decimal("0.75") and platform.confidence == Decimal("0.675")
    # Never applied by itself.
    assert not DimensionRule.objects.exists()
    assert _untagged_cost() == Decimal("2041.95")


def test_an_experiment_shared_by_two_teams_gets_no_suggestion(world):
    covered = {r.resource_id for c in suggestion_candidates() for r in c.covered}
    assert _arn("llama-3-1-70b-experiment") not in covered


def test_accept_creates_the_rule_audited_and_reapplies(world, django_capture_on_commit_callbacks):
    rule_suggestions_refresh()
    finance = UserFactory(username="fin", roles=["finance"])
    client = APIClient()
    client.force_authenticate(finance)
    listed = client.get("/api/v1/rule-suggestions").json()
    assert [row["untagged_cost"] for row in listed][:1] == ["1354.5100000000"]  # largest first
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/api/v1/rule-suggestions/{listed[0]['id']}/accept")
    assert response.status_code == 201, response.content
    assert len(callbacks) == 1  # the re-application, enqueued after commit; run it as the worker would
    rules_reapply_task(response.json()["reapply_run"])
    rule = DimensionRule.objects.get(pk=response.json()["rule"]["id"])
    assert (rule.set_team.slug, rule.priority, rule.operator) == ("search", 150, "regex")
    assert AuditEvent.objects.filter(object_type="attribution.dimensionrule", action="create").count() == 1
    assert AuditEvent.objects.filter(object_type="attribution.rulesuggestion", action="accept").count() == 1
    # The twins now belong to search.
    search = CostLineItem.objects.filter(resource_id__in=[_arn("llama-3-1-70b-search-canary")])
    assert {item.team.slug for item in search.select_related("team")} == {"search"}
    assert _untagged_cost() == Decimal("2041.95") - Decimal("1354.51")
    # Accepting twice is refused with a reason; a refresh does not revive it.
    again = client.post(f"/api/v1/rule-suggestions/{listed[0]['id']}/accept")
    assert again.status_code == 400 and "already accepted" in json.dumps(again.json())
    rule_suggestions_refresh()
    assert RuleSuggestion.objects.filter(state="accepted").count() == 1
    assert RuleSuggestion.objects.filter(state="open").count() == 2


def test_edit_then_dismiss(world):
    rule_suggestions_refresh()
    admin = UserFactory(username="admin", roles=["admin"])
    client = APIClient()
    client.force_authenticate(admin)
    bge = RuleSuggestion.objects.get(value__contains="bge-large")
    response = client.patch(
        f"/api/v1/rule-suggestions/{bge.pk}", {"value": r"[/:]bge-large-recsys"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["value"] == r"[/:]bge-large-recsys"
    bad = client.patch(f"/api/v1/rule-suggestions/{bge.pk}", {"value": "(unclosed"}, format="json")
    assert bad.status_code == 400 and "regular expression" in json.dumps(bad.json())
    bge.refresh_from_db()
    assert bge.value == r"[/:]bge-large-recsys"  # the bad edit changed nothing
    assert client.post(f"/api/v1/rule-suggestions/{bge.pk}/dismiss").status_code == 200
    rule_suggestions_refresh()
    assert RuleSuggestion.objects.get(fingerprint=bge.fingerprint).state == "dismissed"
    assert not DimensionRule.objects.exists()
    assert AuditEvent.objects.filter(object_type="attribution.rulesuggestion").count() == 2


def test_only_admin_and_finance_see_or_decide(world):
    rule_suggestions_refresh()
    some = RuleSuggestion.objects.first()
    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=some.set_team, role="lead")
    client = APIClient()
    client.force_authenticate(lead)
    assert client.get("/api/v1/rule-suggestions").status_code == 403
    assert client.post(f"/api/v1/rule-suggestions/{some.pk}/accept").status_code == 403
    assert not DimensionRule.objects.exists()


def test_the_unallocated_page_shows_reasons_resources_and_suggestions_to_finance_only(
    world, client, django_assert_max_num_queries
):
    rule_suggestions_refresh()
    finance = UserFactory(username="fin", roles=["finance"])
    client.force_login(finance)
    with django_assert_max_num_queries(20):
        response = client.get("/unallocated/", {"start": "2026-10-01", "end": "2026-10-31"})
    page = response.content.decode()
    assert response.status_code == 200
    # Every untagged dollar is unallocated here (allocation has not run: "not allocated yet").
    assert response.context["page"].unallocated_total == {"USD": Decimal("2041.95")}
    assert "not allocated yet" in page
    assert _arn("llama-3-1-70b-search-canary") in page  # top untagged resources
    assert page.count('data-action="accept"') == 3
    assert 'id="unallocated-restricted"' not in page

    lead = UserFactory(username="lead", roles=["team_lead"])
    MembershipFactory(user=lead, team=RuleSuggestion.objects.first().set_team, role="lead")
    client.force_login(lead)
    page = client.get("/unallocated/").content.decode()
    assert 'id="unallocated-restricted"' in page
    assert "2,041" not in page and "canary" not in page


def test_the_unallocated_trend_is_the_same_built_checked_or_unchecked(
    world, client, page_figures_checked_and_unchecked
):
    client.force_login(UserFactory(username="fin", roles=["finance"]))
    url = "/unallocated/?start=2026-10-01&end=2026-10-31"
    checked, unchecked = page_figures_checked_and_unchecked(client, url)
    assert checked["trend"]["data"]
    assert unchecked == checked


def test_the_unallocated_page_reads_a_fixed_number_of_queries_however_many_resources_and_suggestions(
    world, client, tmp_path, assert_page_queries_flat
):
    rule_suggestions_refresh()

    def grow():
        # A second account: its tagged endpoints and, beside each, an untagged twin (a suggestion).
        rows = []
        for index in range(6):
            team = TeamFactory(slug=f"grown-{index}", name=f"Grown {index}").slug
            tags = {"user:team": team, "user:model": "bge"}
            rows.append(_row("10.00", resource=_arn(f"grown{index}-endpoint"), tags=tags, sub="999999999999"))
            rows.append(
                _row("7.00", resource=_arn(f"grown{index}-endpoint-canary"), tags={}, sub="999999999999")
            )
        account = services.cloud_account_get_or_create(slug="acme-two", provider="aws")
        path = csv_write(tmp_path / "more.csv", FOCUS_COLUMNS, rows)
        for planned in services.ingest_runs_create(account=account, paths=[path], source_format="focus"):
            assert services.ingest_run_execute(run_id=planned.pk).state == "succeeded"
        rule_suggestions_refresh()
        return [_arn(f"grown{index}-endpoint-canary") for index in range(6)]

    client.force_login(UserFactory(username="fin", roles=["finance"]))
    url = "/unallocated/?start=2026-10-01&end=2026-10-31"
    response = assert_page_queries_flat(client, url, grow=grow, ceiling=20)
    assert response.content.decode().count('data-action="accept"') > 3
