"""Every create, update and delete of a governed object (mapping rule, allocation rule, exchange
rate, cloud account, credential reference) is written by its service as one AuditEvent with the
actor and the values before and after, in the same transaction as the change; the admin goes
through the same services; a bulk rate load is one summarising event."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.urls import reverse

from attribution import signals
from attribution.allocation.services import allocation_rule_delete, allocation_rule_save
from attribution.connectors.credentials import cloud_account_credentials_set
from attribution.connectors.services import cloud_account_delete, cloud_account_save
from attribution.currency.services import exchange_rate_delete, exchange_rate_save, exchange_rates_upsert
from attribution.mapping.services import (
    dimension_rule_create,
    dimension_rule_delete,
    dimension_rule_update,
    rules_reapply_request,
)
from attribution.models import AllocationRule, AllocationShare, CloudAccount, DimensionRule, ExchangeRate
from governance.models import AuditEvent
from governance.services import audit_event_record
from tests.factories import CloudAccountFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

RULE = {
    "name": "ML prod is search",
    "priority": 10,
    "match_field": "sub_account_id",
    "operator": "equals",
    "value": "ml-prod-222",
}


@pytest.fixture
def actor(db):
    return UserFactory(username="fiona", roles=["finance"])


@pytest.fixture
def team(db):
    return TeamFactory(slug="search", name="Search")


def _events(object_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type=object_type).order_by("id"))


def test_a_mapping_rule_create_update_delete_is_three_events_with_before_and_after(actor, team):
    rule = dimension_rule_create(
        rule_data={**RULE, "set_team_id": team.pk}, actor=actor, remote_addr="10.0.0.7"
    )
    rule, _ = dimension_rule_update(rule=rule, rule_data={"priority": 3}, actor=actor)
    rule_id = rule.pk
    dimension_rule_delete(rule=rule, actor=actor)

    created, updated, deleted = _events("attribution.dimensionrule")
    assert [e.action for e in (created, updated, deleted)] == ["create", "update", "delete"]
    assert {e.object_id for e in (created, updated, deleted)} == {str(rule_id)}
    assert all(e.actor == actor and e.actor_label == "fiona" for e in (created, updated, deleted))
    assert created.remote_addr == "10.0.0.7"
    assert created.changes["before"] is None
    assert created.changes["after"]["value"] == "ml-prod-222"
    assert created.changes["after"]["set_team_id"] == team.pk
    assert updated.changes == {"before": {"priority": 10}, "after": {"priority": 3}}
    assert deleted.changes["after"] is None and deleted.changes["before"]["priority"] == 3


def test_saving_a_rule_unchanged_writes_no_event(actor, team):
    rule = dimension_rule_create(rule_data={**RULE, "set_team_id": team.pk}, actor=actor)
    dimension_rule_update(rule=rule, rule_data={"priority": 10}, actor=actor)
    assert [e.action for e in _events("attribution.dimensionrule")] == ["create"]


def test_a_change_and_its_event_commit_together_or_not_at_all(actor, team):
    # Whatever fails while the event is written (here: a listener that raises) undoes the change.
    def refuse(**kwargs):
        raise RuntimeError("audit log unavailable")

    signals.audited_change.connect(refuse, dispatch_uid="test.refuse")
    try:
        with pytest.raises(RuntimeError):
            dimension_rule_create(rule_data={**RULE, "set_team_id": team.pk}, actor=actor)
        with pytest.raises(RuntimeError):
            exchange_rates_upsert(
                rows=[{"date": "2026-10-19", "from": "EUR", "to": "USD", "rate": "1.08"}], source="ecb"
            )
    finally:
        signals.audited_change.disconnect(dispatch_uid="test.refuse")
    assert not DimensionRule.objects.exists() and not ExchangeRate.objects.exists()
    assert not AuditEvent.objects.exists()


def test_governance_listens_to_audited_change_from_app_ready():
    lookup_keys = [entry[0] for entry in signals.audited_change.receivers]
    assert any(key[0] == "governance.audit_event_on_change" for key in lookup_keys)


def test_an_allocation_rule_with_its_shares_is_one_event_per_change(actor, team):
    ads = TeamFactory(slug="ads", name="Ads")
    rule = AllocationRule(name="GPU pool", match_tag_key="pool", match_tag_value="gpu", method="fixed")
    shares = [{"team_id": team.pk, "percent": "60"}, {"team_id": ads.pk, "percent": "40"}]
    allocation_rule_save(rule=rule, shares=shares, actor=actor)
    allocation_rule_save(
        rule=rule,
        shares=[{"team_id": team.pk, "percent": "50"}, {"team_id": ads.pk, "percent": "50"}],
        actor=actor,
    )
    created, updated = _events("attribution.allocationrule")
    assert created.changes["after"]["shares"] == [
        {"team_id": team.pk, "model_id": None, "percent": "60.0000"},
        {"team_id": ads.pk, "model_id": None, "percent": "40.0000"},
    ]
    assert updated.changes["before"] == {
        "shares": [
            {"team_id": team.pk, "model_id": None, "percent": "60.0000"},
            {"team_id": ads.pk, "model_id": None, "percent": "40.0000"},
        ]
    }
    assert [share["percent"] for share in updated.changes["after"]["shares"]] == ["50.0000", "50.0000"]

    # Shares that do not total 100 % are refused with nothing written or audited.
    with pytest.raises(Exception, match="total 90%"):
        allocation_rule_save(
            rule=rule, shares=[{"team_id": team.pk, "percent": "50"}, {"team_id": ads.pk, "percent": "40"}]
        )
    assert sorted(AllocationShare.objects.values_list("percent", flat=True)) == [Decimal(50), Decimal(50)]
    assert len(_events("attribution.allocationrule")) == 2

    allocation_rule_delete(rule=rule, actor=actor)
    assert _events("attribution.allocationrule")[-1].action == "delete"
    assert not AllocationRule.objects.exists()


def test_a_cloud_account_and_its_credential_reference_are_audited_without_secrets(actor, monkeypatch):
    account = CloudAccount(
        provider="aws", name="AWS prod", slug="aws-prod", source_settings={"bucket": "cur"}
    )
    cloud_account_save(account=account, actor=actor)
    account.source_settings = {"bucket": "cur", "credentials": {"secret_access_key": "env:AWS_SECRET"}}
    cloud_account_save(account=account, actor=actor)
    created, updated = _events("attribution.cloudaccount")
    assert created.action == "create" and created.changes["after"]["slug"] == "aws-prod"
    assert updated.changes == {
        "before": {"source_settings": {"bucket": "cur"}},
        "after": {
            "source_settings": {"bucket": "cur", "credentials": {"secret_access_key": "env:AWS_SECRET"}}
        },
    }
    assert "credentials_ciphertext" not in json.dumps(created.changes)

    # A secret in place of a reference is refused before anything is written.
    account.source_settings = {"secret_access_key": "AKIAREALSECRET"}
    with pytest.raises(Exception, match="looks like a credential"):
        cloud_account_save(account=account, actor=actor)
    assert len(_events("attribution.cloudaccount")) == 2

    monkeypatch.setenv("INFERENSYS_CREDENTIALS_KEY", Fernet.generate_key().decode())
    cloud_account_credentials_set(account_id=account.pk, values={"secret_access_key": "s3cr3t"}, actor=actor)
    credential_event = _events("attribution.cloudaccount")[-1]
    assert credential_event.action == "credentials_set" and credential_event.actor == actor
    assert "s3cr3t" not in json.dumps(credential_event.changes)

    account_id = account.pk
    cloud_account_delete(account=account, actor=actor)
    deleted = _events("attribution.cloudaccount")[-1]
    assert (deleted.action, deleted.object_id) == ("delete", str(account_id))


def test_a_bulk_rate_load_is_one_summarising_event(actor):
    start = dt.date(2026, 1, 1)
    rows = [
        {
            "date": (start + dt.timedelta(days=index % 365)).isoformat(),
            "from": code,
            "to": "USD",
            "rate": "1.1",
        }
        for index, code in enumerate(["EUR"] * 365 + ["GBP"] * 365 + ["JPY"] * 365)
    ] + [
        {"date": (start + dt.timedelta(days=index)).isoformat(), "from": "CHF", "to": "USD", "rate": "1.2"}
        for index in range(365)
    ]
    changes = exchange_rates_upsert(rows=rows * 1, source="ecb", actor=actor)
    assert len(changes) == 1460
    (event,) = _events("attribution.exchangerate")
    assert (event.action, event.object_id, event.actor) == ("bulk_load", "bulk", actor)
    assert (event.changes["created"], event.changes["updated"]) == (1460, 0)
    assert (event.changes["first_date"], event.changes["last_date"]) == ("2026-01-01", "2026-12-31")
    assert event.changes["pairs"] == ["CHF->USD", "EUR->USD", "GBP->USD", "JPY->USD"]
    assert len(event.changes["rates"]) == 100 and event.changes["rates_truncated"] is True

    # Loading the same rates again changes nothing and records nothing.
    assert exchange_rates_upsert(rows=rows, source="ecb", actor=actor) == []
    assert len(_events("attribution.exchangerate")) == 1


def test_one_rate_edited_by_hand_is_validated_and_audited(actor):
    rate = ExchangeRate(
        date=dt.date(2026, 10, 19), from_currency="eur", to_currency="USD", rate=Decimal("1.08")
    )
    exchange_rate_save(rate=rate, actor=actor)
    rate.rate = Decimal("1.09")
    exchange_rate_save(rate=rate, actor=actor)
    bad = ExchangeRate(date=dt.date(2026, 10, 19), from_currency="XXX", to_currency="USD", rate=Decimal("1"))
    with pytest.raises(Exception, match="not an ISO 4217 code"):
        exchange_rate_save(rate=bad, actor=actor)
    exchange_rate_delete(rate=rate, actor=actor)
    created, updated, deleted = _events("attribution.exchangerate")
    assert created.changes["after"]["from_currency"] == "EUR"
    assert updated.changes == {"before": {"rate": "1.080000000000"}, "after": {"rate": "1.090000000000"}}
    assert deleted.action == "delete"


def test_asking_to_reapply_the_rules_is_audited(actor):
    run = rules_reapply_request(actor=actor)
    (event,) = AuditEvent.objects.filter(action="reapply_rules")
    assert (event.object_type, event.object_id, event.actor) == (
        "attribution.backgroundrun",
        str(run.pk),
        actor,
    )


def test_audit_event_record_still_writes_one_event_for_governance_objects(actor):
    account = CloudAccountFactory(slug="gcp-prod")
    event = audit_event_record(actor=actor, action="update", obj=account, changes={"x": [1, 2]})
    assert (event.object_type, event.object_id, event.actor_label) == (
        "attribution.cloudaccount",
        str(account.pk),
        "fiona",
    )


# --- The admin goes through the same services ---------------------------------------------------


@pytest.fixture
def root_client(client):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def _admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_admin_changes_of_rules_and_rates_are_audited(root_client, team):
    response = root_client.post(
        _admin_url(DimensionRule, "add"),
        {**RULE, "set_team": team.pk, "is_active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = DimensionRule.objects.get()
    data = {**RULE, "priority": "4", "set_team": team.pk, "is_active": "on"}
    assert root_client.post(_admin_url(DimensionRule, "change", rule.pk), data).status_code == 302
    assert root_client.post(_admin_url(DimensionRule, "delete", rule.pk), {"post": "yes"}).status_code == 302
    events = _events("attribution.dimensionrule")
    assert [(e.action, e.actor_label) for e in events] == [
        ("create", "root"),
        ("update", "root"),
        ("delete", "root"),
    ]
    assert events[1].changes == {"before": {"priority": 10}, "after": {"priority": 4}}

    response = root_client.post(
        _admin_url(ExchangeRate, "add"),
        {
            "date": "2026-10-19",
            "from_currency": "EUR",
            "to_currency": "USD",
            "rate": "1.0842",
            "source": "hand",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    (rate_event,) = _events("attribution.exchangerate")
    assert (rate_event.action, rate_event.actor_label) == ("create", "root")

    ads = TeamFactory(slug="ads", name="Ads")
    response = root_client.post(
        _admin_url(AllocationRule, "add"),
        {
            "name": "GPU pool B",
            "priority": "100",
            "match_tag_key": "pool",
            "match_tag_value": "gpu-b",
            "method": "fixed",
            "idle_policy": "own_line",
            "is_active": "on",
            "shares-TOTAL_FORMS": "2",
            "shares-INITIAL_FORMS": "0",
            "shares-0-team": team.pk,
            "shares-0-percent": "60",
            "shares-1-team": ads.pk,
            "shares-1-percent": "40",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    (rule_event,) = _events("attribution.allocationrule")
    assert rule_event.action == "create" and len(rule_event.changes["after"]["shares"]) == 2
    assert apps.get_model("attribution", "AllocationShare").objects.count() == 2
