"""Mapping rules: precedence, application on ingest and to history, preview vs apply, conservation."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from attribution.mapping import services as rules
from attribution.models import BackgroundRun, CostLineItem, DailyCost, IngestRun
from tests.attribution.mapping.conftest import by_resource, cents

pytestmark = pytest.mark.django_db(transaction=False)

PERIOD_ONE = dt.date(2024, 3, 1)


def three_rules(dims) -> None:
    rules.dimension_rule_create(
        rule_data={
            "name": "ML prod sub-account is ads",
            "priority": 10,
            "match_field": "sub_account_id",
            "value": "ml-prod-222",
            "set_team_id": dims["ads"].pk,
        }
    )
    rules.dimension_rule_create(
        rule_data={
            "name": "SageMaker is search on the llama pool",
            "priority": 20,
            "match_field": "service_name",
            "operator": "contains",
            "value": "sagemaker",
            "set_team_id": dims["search"].pk,
            "set_deployment_id": dims["pool"].pk,
        }
    )
    rules.dimension_rule_create(
        rule_data={
            "name": "Anything with a cost center is ads",
            "priority": 30,
            "match_field": "tag",
            "tag_key": "cost-center",
            "operator": "exists",
            "set_team_id": dims["ads"].pk,
        }
    )


def apply_all() -> int:
    moved = 0
    for account_id, period in (
        IngestRun.objects.filter(state="succeeded")
        .values_list("account_id", "billing_period_start")
        .distinct()
    ):
        moved += rules.dimension_rules_apply(account_id=account_id, billing_period_start=period)["line_items"]
    return moved


def test_first_rule_wins_per_dimension_and_explicit_tags_win(dims, ingest_periods):
    ingest_periods()
    assert by_resource()["ep-b"] == (None, None, None)
    three_rules(dims)
    assert apply_all() == 2 * 2  # B and C in each of the two periods
    assert by_resource() == {
        "i-a": ("search", None, None),  # explicit tag, no rule matches
        "ep-b": ("ads", "llama-70b", "llama-pool"),  # team from rule 10, deployment (+ model) from rule 20
        "i-c": ("ads", None, None),  # tag exists
        "i-d": ("search", None, None),  # explicit tag beats the sub-account rule
        "fn-e": (None, None, None),
    }
    assert apply_all() == 0  # idempotent


def test_rules_apply_on_ingest_before_anyone_reads_the_period(dims, ingest_periods):
    three_rules(dims)
    ingest_periods()
    assert by_resource()["ep-b"] == ("ads", "llama-70b", "llama-pool")
    ads = DailyCost.objects.filter(team__slug="ads", billing_period_start="2024-03-01").aggregate(
        total=Sum("billed_cost")
    )["total"]
    assert cents(ads) == Decimal("25.75")  # B 20.50 + C 5.25


def test_deleting_a_rule_undoes_it_when_rules_are_reapplied(dims, ingest_periods):
    ingest_periods()
    three_rules(dims)
    apply_all()
    rules.dimension_rule_delete(rule=rules.DimensionRule.objects.get(priority=10))
    apply_all()
    assert by_resource()["ep-b"] == ("search", "llama-70b", "llama-pool")
    rules.DimensionRule.objects.all().delete()
    apply_all()
    assert by_resource()["ep-b"] == (None, None, None)
    assert by_resource()["i-c"] == (None, None, None)


def test_rules_only_move_cost_daily_totals_do_not_change(dims, ingest_periods):
    ingest_periods()

    def per_day() -> dict:
        rows = DailyCost.objects.values("day").annotate(
            billed=Sum("billed_cost"), effective=Sum("effective_cost")
        )
        return {row["day"]: (row["billed"], row["effective"]) for row in rows}

    def per_team() -> dict:
        rows = DailyCost.objects.values("team__slug").annotate(billed=Sum("billed_cost"))
        return {row["team__slug"]: row["billed"] for row in rows}

    days_before, teams_before = per_day(), per_team()
    three_rules(dims)
    apply_all()
    assert per_day() == days_before
    teams_after = per_team()
    assert teams_after != teams_before
    assert sum(teams_after.values()) == sum(teams_before.values())
    assert cents(teams_after["ads"]) == Decimal("51.50")  # (20.50 + 5.25) x 2 periods


def moved_dollars(before: dict, after: dict, amounts: dict) -> tuple[int, Decimal]:
    moved = [pk for pk, dims in after.items() if before[pk] != dims]
    return len(moved), sum((amounts[pk] for pk in moved), Decimal(0))


def test_the_preview_shows_to_the_cent_what_saving_the_rule_then_moves(dims, ingest_periods):
    ingest_periods()
    three_rules(dims)
    apply_all()
    candidate = {
        "name": "Lambda and EC2 in 444 go to search",
        "priority": 5,
        "match_field": "sub_account_id",
        "operator": "regex",
        "value": "^(444|333)$",
        "set_team_id": dims["search"].pk,
    }
    preview = rules.dimension_rule_preview(rule_data=candidate)

    def state() -> dict:
        return {
            pk: (t, m, d)
            for pk, t, m, d in CostLineItem.objects.values_list("pk", "team", "model", "deployment")
        }

    amounts = dict(CostLineItem.objects.values_list("pk", "billed_cost"))
    before = state()
    rules.dimension_rule_create(rule_data=candidate)
    apply_all()
    count, dollars = moved_dollars(before, state(), amounts)
    assert preview["line_items"] == count == 4  # C (ads -> search) and E (none -> search), two periods
    assert Decimal(preview["billed_cost"]["USD"]) == dollars == Decimal("17.166")
    moves = {(m["from"]["team"], m["to"]["team"]): Decimal(m["billed_cost"]) for m in preview["moves"]}
    assert moves == {("ads", "search"): Decimal("10.50"), (None, "search"): Decimal("6.666")}


def test_previewing_a_deletion_and_an_edit(dims, ingest_periods):
    ingest_periods()
    three_rules(dims)
    apply_all()
    first = rules.DimensionRule.objects.get(priority=10)
    deletion = rules.dimension_rule_preview(rule_data={"id": first.pk, "delete": True})
    # Without the sub-account rule, B falls to the SageMaker rule (search): 20.50 x 2
    assert deletion["billed_cost"] == {"USD": "41.0000000000"}
    edit = rules.dimension_rule_preview(
        rule_data={
            "id": first.pk,
            "name": first.name,
            "priority": 10,
            "match_field": "sub_account_id",
            "value": "ml-prod-222",
            "set_team_id": dims["ads"].pk,
        }
    )
    assert edit["line_items"] == 0
    assert (
        CostLineItem.objects.filter(team__slug="search", resource_id="ep-b").count() == 0
    )  # nothing written


def test_it_rejects_invalid_rules_with_a_message_per_field(dims):
    with pytest.raises(ValidationError) as caught:
        rules.dimension_rule_clean(
            rule_data={"name": "x", "match_field": "tag", "operator": "regex", "value": ""}
        )
    assert set(caught.value.message_dict) == {"tag_key", "value", "set_team"}
    with pytest.raises(ValidationError) as caught:
        rules.dimension_rule_clean(
            rule_data={
                "name": "x",
                "match_field": "service_name",
                "operator": "regex",
                "value": "(unclosed",
                "set_team_id": dims["ads"].pk,
            }
        )
    assert "regular expression" in caught.value.message_dict["value"][0]
    with pytest.raises(ValidationError) as caught:
        rules.dimension_rule_clean(
            rule_data={
                "name": "x",
                "match_field": "service_name",
                "operator": "exists",
                "set_team_id": dims["ads"].pk,
            }
        )
    assert "only applies to tags" in caught.value.message_dict["operator"][0]


def test_reapply_walks_every_period_and_reaches_100_percent(
    dims, ingest_periods, django_capture_on_commit_callbacks
):
    ingest_periods()
    three_rules(dims)
    with django_capture_on_commit_callbacks() as callbacks:
        run = rules.rules_reapply_start(actor_id=None)
        again = rules.rules_reapply_start(actor_id=None)
    assert again.pk == run.pk  # a pending run is reused
    assert len(callbacks) == 1
    finished = rules.rules_reapply_execute(run_id=run.pk)
    assert finished.state == "succeeded"
    assert (finished.progress_done, finished.progress_total) == (2, 2)
    assert finished.result == {"periods": 2, "line_items_moved": 4}
    # A redelivered task finds the run no longer pending and does nothing.
    assert rules.rules_reapply_execute(run_id=run.pk).result == finished.result
    assert BackgroundRun.objects.count() == 1
    assert by_resource()["ep-b"][0] == "ads"


def test_conservation_per_currency_and_team_is_exact(dims, ingest_periods):
    ingest_periods()
    line_total = CostLineItem.objects.aggregate(total=Sum("billed_cost"))["total"]
    three_rules(dims)
    apply_all()
    per_team = defaultdict(Decimal)
    for team, billed in DailyCost.objects.values_list("team__slug", "billed_cost"):
        per_team[team] += billed
    assert sum(per_team.values()) == line_total


def test_resource_id_rules_and_deployment_resources(dims, ingest_periods):
    # A deployment billed as resource fn-e is explicit mapping; a resource-id rule fills the rest.
    dims["pool"].resource_id = "FN-E"
    dims["pool"].save()
    ingest_periods()
    assert by_resource()["fn-e"] == (None, "llama-70b", "llama-pool")
    candidate = {
        "name": "Instances i-* are search's",
        "priority": 1,
        "match_field": "resource_id",
        "operator": "prefix",
        "value": "I-",
        "set_team_id": dims["search"].pk,
        "set_deployment_id": dims["pool"].pk,
    }
    preview = rules.dimension_rule_preview(rule_data=candidate)
    rules.dimension_rule_create(rule_data=candidate)
    assert apply_all() == preview["line_items"] == 6  # i-a, i-c, i-d get the deployment; i-c the team too
    assert by_resource()["i-c"] == ("search", "llama-70b", "llama-pool")
    assert by_resource()["i-a"] == ("search", "llama-70b", "llama-pool")
    assert by_resource()["fn-e"] == (None, "llama-70b", "llama-pool")


# --- Defect 1 of issue 10: a rule that cannot be evaluated never breaks an ingest ------------------


def test_an_invalid_regex_already_stored_is_skipped_and_reported_and_the_ingest_succeeds(
    dims, ingest_periods, client
):
    from attribution.models import DimensionRule
    from tests.factories import UserFactory

    # Stored bypassing validation (an old admin form, a raw SQL fix): "(" does not compile in Postgres.
    broken = DimensionRule.objects.create(
        name="Broken regex", priority=1, match_field="service_name", operator="regex", value="(",
        set_team_id=dims["search"].pk,
    )  # fmt: skip
    rules.dimension_rule_create(
        rule_data={
            "name": "ML prod sub-account is ads",
            "priority": 10,
            "match_field": "sub_account_id",
            "value": "ml-prod-222",
            "set_team_id": dims["ads"].pk,
        }
    )
    executed = ingest_periods()  # asserts every run succeeded
    for run in executed:
        run.refresh_from_db()
        assert run.state == "succeeded"
        # Totals to the cent: the source, the line items and the daily rollup agree.
        assert Decimal(run.database_sums["billed_cost"]) == Decimal(run.source_sums["billed_cost"])
        daily = DailyCost.objects.filter(billing_period_start=run.billing_period_start).aggregate(
            total=Sum("billed_cost")
        )["total"]
        assert daily == Decimal(run.source_sums["billed_cost"]) == Decimal("46.083")
        # The run says which rule was skipped and why.
        assert [warning["rule_id"] for warning in run.warnings] == [broken.pk]
        assert "Broken regex" in run.warnings[0]["message"]
        assert "regular expression" in run.warnings[0]["message"]
    broken.refresh_from_db()
    assert "regular expression" in broken.evaluation_error
    # ... and the API shows both: on the run and on the rule.
    client.force_login(UserFactory(roles=["finance"]))
    run_json = client.get(f"/api/v1/ingest-runs/{executed[0].pk}").json()
    assert [warning["rule_id"] for warning in run_json["warnings"]] == [broken.pk]
    rule_json = client.get(f"/api/v1/dimension-rules/{broken.pk}").json()
    assert rule_json["evaluation_error"] == broken.evaluation_error
    # The valid rule still mapped; what only the broken rule could have mapped stays unmapped.
    mapped = by_resource()
    assert mapped["ep-b"][0] == "ads"
    assert mapped["i-c"][0] is None
    # Re-applying and previewing skip it too, and say so.
    outcome = rules.dimension_rules_apply(account_id=executed[0].account_id, billing_period_start=PERIOD_ONE)
    assert [skipped["rule_id"] for skipped in outcome["skipped_rules"]] == [broken.pk]
    preview = rules.dimension_rule_preview(
        rule_data={
            "name": "x",
            "match_field": "service_name",
            "value": "AWS Lambda",
            "set_team_id": dims["ads"].pk,
        }
    )
    assert preview["line_items"] == 2
    # Fixing the rule through the service clears its status.
    rules.dimension_rule_update(rule=broken, rule_data={"value": "^amazon ec2$"})
    broken.refresh_from_db()
    assert broken.evaluation_error == ""


@pytest.mark.parametrize(
    ("pattern", "dialect"),
    [
        ("(", "Python"),  # invalid everywhere; Python is asked first
        ("(?P<name>llama)", "Postgres"),  # Python's named group: Postgres refuses it
        (r"\yllama\y", "Python"),  # Postgres' word boundary: Python's re refuses it
    ],
)
def test_patterns_are_checked_in_both_regex_dialects_by_the_service_and_the_model(dims, pattern, dialect):
    from attribution.models import DimensionRule

    data = {
        "name": "x",
        "match_field": "service_name",
        "operator": "regex",
        "value": pattern,
        "set_team_id": dims["ads"].pk,
    }
    with pytest.raises(ValidationError) as caught:
        rules.dimension_rule_create(rule_data=data)
    assert dialect in caught.value.message_dict["value"][0]
    rule = DimensionRule(
        name="x", match_field="service_name", operator="regex", value=pattern, set_team=dims["ads"]
    )
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert dialect in caught.value.message_dict["value"][0]
    assert not DimensionRule.objects.exists()


def test_the_cost_a_skipped_rule_might_have_mapped_stays_unallocated_with_that_reason(dims, ingest_periods):
    from attribution.allocation.services import allocation_run
    from attribution.models import AllocatedCost, DimensionRule

    broken = DimensionRule.objects.create(
        name="Broken regex", priority=1, match_field="service_name", operator="regex", value="(",
        set_team_id=dims["search"].pk,
    )  # fmt: skip
    executed = ingest_periods()
    account_id = executed[0].account_id

    def unallocated_by_reason() -> dict[str, Decimal]:
        allocation_run(account_id=account_id)
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for reason, billed in AllocatedCost.objects.values_list("unallocated_reason", "billed_cost"):
            totals[reason] += billed
        # Allocated plus unallocated is what was billed, to the cent.
        assert sum(totals.values()) == Decimal("46.083") * 2
        return dict(totals)

    # ep-b, i-c and fn-e (20.50 + 5.25 + 3.333 a period) carry no team: the broken rule might map them.
    assert unallocated_by_reason() == {"": Decimal("34.00"), "rule_skipped": Decimal("58.166")}
    rules.dimension_rule_update(rule=broken, rule_data={"value": "^amazon sagemaker$"})
    apply_all()
    assert unallocated_by_reason() == {"": Decimal("75.00"), "untagged": Decimal("17.166")}
