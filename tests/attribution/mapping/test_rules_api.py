"""The rules API and page: who may read, write and preview; audits; re-apply progress over HTTP."""

from __future__ import annotations

import pytest

from attribution.mapping import services as rules
from attribution.models import DimensionRule
from governance.models import AuditEvent
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

RULE = {
    "name": "ML prod is ads",
    "priority": 10,
    "match_field": "sub_account_id",
    "operator": "equals",
    "value": "ml-prod-222",
    "set_team": "ads",
}


@pytest.fixture
def finance(db):
    return UserFactory(username="fiona", roles=["finance"])


@pytest.fixture
def member(dims):
    return MembershipFactory(team=dims["ads"], user=UserFactory(username="mo")).user


def test_finance_creates_a_rule_audited_with_a_reapply_run(client, dims, finance, ingest_periods):
    ingest_periods()
    client.force_login(finance)
    response = client.post("/api/v1/dimension-rules", RULE, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["rule"]["set_team"] == "ads"
    run_id = body["reapply_run"]
    event = AuditEvent.objects.get(action="create", object_type="attribution.dimensionrule")
    assert event.actor == finance
    assert event.changes["before"] is None and event.changes["after"]["value"] == "ml-prod-222"

    rules.rules_reapply_execute(run_id=run_id)
    progress = client.get(f"/api/v1/background-runs/{run_id}").json()
    assert progress["state"] == "succeeded"
    assert progress["progress"] == 1.0
    assert (progress["progress_done"], progress["progress_total"]) == (2, 2)

    response = client.patch(
        f"/api/v1/dimension-rules/{body['rule']['id']}", {"priority": 3}, content_type="application/json"
    )
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="update").changes == {
        "before": {"priority": 10},
        "after": {"priority": 3},
    }
    response = client.delete(f"/api/v1/dimension-rules/{body['rule']['id']}")
    assert response.status_code == 204
    assert response.headers["X-Reapply-Run"]
    assert AuditEvent.objects.filter(action="delete", object_type="attribution.dimensionrule").count() == 1
    assert not DimensionRule.objects.exists()


def test_members_read_rules_but_cannot_change_or_preview_them(client, dims, member):
    rules.dimension_rule_create(rule_data={**RULE, "set_team": None, "set_team_id": dims["ads"].pk})
    client.force_login(member)
    listing = client.get("/api/v1/dimension-rules")
    assert listing.status_code == 200
    assert [rule["name"] for rule in listing.json()["results"]] == ["ML prod is ads"]
    assert client.post("/api/v1/dimension-rules", RULE, content_type="application/json").status_code == 403
    assert (
        client.post("/api/v1/dimension-rules/preview", RULE, content_type="application/json").status_code
        == 403
    )
    assert client.post("/api/v1/dimension-rules/reapply").status_code == 403
    # Only the set-up rule (written by the system) is in the log: nothing the member tried.
    assert list(AuditEvent.objects.values_list("action", "actor_label")) == [("create", "system")]


def test_invalid_rules_get_a_message_per_field(client, dims, finance):
    client.force_login(finance)
    response = client.post(
        "/api/v1/dimension-rules",
        {**RULE, "match_field": "tag", "operator": "regex", "value": "(open"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "tag_key" in response.json()
    response = client.post(
        "/api/v1/dimension-rules", {**RULE, "set_team": "nobody"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "set_team" in response.json()
    assert not DimensionRule.objects.exists()


def test_the_preview_endpoint_reports_dollars_by_currency(client, dims, finance, ingest_periods):
    ingest_periods()
    client.force_login(finance)
    response = client.post("/api/v1/dimension-rules/preview", RULE, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    # B (20.50) per period; D keeps its explicit team tag
    assert body["line_items"] == 2
    assert body["billed_cost"] == {"USD": "41.0000000000"}
    assert body["moves"][0]["from"]["team"] is None
    assert body["moves"][0]["to"]["team"] == "ads"
    assert not DimensionRule.objects.exists()


def test_reapply_endpoint_returns_a_background_run(client, dims, finance, ingest_periods):
    ingest_periods()
    client.force_login(finance)
    response = client.post("/api/v1/dimension-rules/reapply")
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert AuditEvent.objects.get(action="reapply_rules").object_id == str(run_id)
    rules.rules_reapply_execute(run_id=run_id)
    assert client.get(f"/api/v1/background-runs/{run_id}").json()["progress"] == 1.0


def test_the_rules_page_lists_rules_and_offers_the_editor_to_finance(
    client, dims, finance, member, django_assert_max_num_queries
):
    for priority in range(5):
        rules.dimension_rule_create(
            rule_data={**RULE, "priority": priority, "set_team": None, "set_team_id": dims["ads"].pk}
        )
    client.force_login(finance)
    with django_assert_max_num_queries(16):
        response = client.get("/rules/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="rule-form"' in content
    assert "js/rules.js" in content
    assert content.count("ML prod is ads") == 5  # in the JSON handed to the script
    client.force_login(member)
    content = client.get("/rules/").content.decode()
    assert 'id="rule-form"' not in content
    client.logout()
    assert client.get("/rules/").status_code == 302
