"""Dimension mapping rules: resolve each line item to a team, model and deployment.

Precedence (documented in the README, "Mapping rules"):

1. **Explicit mapping wins.** What the line item says itself, its `team` / `model` / `deployment`
   tags and a deployment whose `resource_id` is the line item's resource (the ingest's
   DimensionResolver, mirrored here in SQL), is never overridden by a rule.
2. **Rules fill what is left empty**, per dimension: for each of team, model and deployment, the
   first active rule in (priority, id) order that matches the line item *and sets that dimension*
   wins. One rule may therefore set the team of a line item while an earlier rule set its model.
3. A line item that ends up with a deployment but no model takes the deployment's model.

Applying is a recomputation, not an accumulation: every line item of the (account, period) gets
explicit-mapping-then-rules again, so deleting or narrowing a rule undoes what it did. Only rows
whose dimensions change are written, then DailyCost of the period is rebuilt. Costs move between
teams/models/deployments; totals per day and account never change.

Matching: `equals`, `prefix` and `contains` compare case-insensitively; `regex` is a Postgres
case-insensitive regular expression (`~*`); `exists` (tags only) matches when the normalised tag
key is present, whatever its value. Tag rules read `normalized_tags` (keys normalised across
clouds by the ingest, e.g. `user:team` -> `team`).
"""

# SQL here is assembled only from fixed fragments of this module; values are always parameters.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from attribution import signals
from attribution.audit import audited_change_send, model_snapshot, snapshot_changes
from attribution.choices import IngestState
from attribution.models import (
    BackgroundRun,
    CloudAccount,
    Deployment,
    DimensionRule,
    IngestRun,
    RuleMatchField,
    RuleOperator,
    RunState,
    ServedModel,
    Team,
)
from attribution.models.allocation import regex_pattern_error

logger = logging.getLogger(__name__)

REAPPLY_KIND = "rules_reapply"
# Ties on priority go to the older rule; a rule being previewed before it exists sorts last.
UNSAVED_RULE_ID = 2**62
RULE_FIELDS = (
    "name",
    "priority",
    "account_id",
    "match_field",
    "tag_key",
    "operator",
    "value",
    "set_team_id",
    "set_model_id",
    "set_deployment_id",
    "is_active",
)

# The value a rule compares, per match field. Fixed fragments only (never user input).
_FIELD_SQL = {
    RuleMatchField.TAG: "li.normalized_tags ->> r.tag_key",
    RuleMatchField.RESOURCE_ID: "li.resource_id",
    RuleMatchField.SUB_ACCOUNT: "li.sub_account_id",
    RuleMatchField.BILLING_ACCOUNT: "li.billing_account_id",
    RuleMatchField.SERVICE: "li.service_name",
    RuleMatchField.REGION: "li.region_id",
}
_SUBJECT_SQL = (
    "CASE r.match_field "
    + " ".join(f"WHEN '{field.value}' THEN {sql}" for field, sql in _FIELD_SQL.items())
    + " END"
)
_MATCH_SQL = f"""
    (r.account_id IS NULL OR r.account_id = li.account_id)
    AND CASE r.operator
        WHEN 'exists' THEN li.normalized_tags ? r.tag_key
        WHEN 'equals' THEN lower({_SUBJECT_SQL}) = lower(r.value)
        WHEN 'prefix' THEN left(lower({_SUBJECT_SQL}), length(r.value)) = lower(r.value)
        WHEN 'contains' THEN strpos(lower({_SUBJECT_SQL}), lower(r.value)) > 0
        WHEN 'regex' THEN {_SUBJECT_SQL} ~* r.value
        ELSE false
    END
"""

# Many line items share what mapping looks at (tags, accounts, service, region), so the mapping is
# computed once per distinct combination ("key") into a small indexed temporary table, then joined
# back to the line items by the key's hash. Resource ids are usually unique per line item, so they
# enter the key only where they can matter: when some rule matches on resource ids, or when the
# resource is a deployment's. This keeps the work proportional to the line items plus the (few)
# distinct keys, whatever the planner believes about a freshly loaded table.
_RESOURCE_SQL = """CASE WHEN %(resource_rules)s OR lower(li.resource_id) IN (
        SELECT lower(resource_id) FROM attribution_deployment WHERE resource_id <> '')
    THEN lower(li.resource_id) ELSE '' END"""
_KEY_SQL = f"""md5(concat_ws(chr(31), li.account_id::text, li.tag_set_id::text, {_RESOURCE_SQL},
    li.sub_account_id, li.billing_account_id, li.service_name, li.region_id))"""

# `runs`: the current runs in scope (IngestRun.objects.current_ids), so only their partitions are read.
_CURRENT_ITEMS_SQL = """
    li.ingest_run_id = ANY(%(runs)s) {item_scope}
"""

_KEYS_SQL = """
CREATE TEMP TABLE rule_keys ON COMMIT DROP AS
SELECT keys.key, keys.account_id, tag_set.normalized_tags, keys.resource_id, keys.sub_account_id,
       keys.billing_account_id, keys.service_name, keys.region_id
  FROM (SELECT DISTINCT ON (key) key, account_id, tag_set_id, resource_key AS resource_id, sub_account_id,
               billing_account_id, service_name, region_id
          FROM (SELECT {key_sql} AS key, {resource_sql} AS resource_key, li.*
                  FROM attribution_costlineitem li WHERE {current_items}) li) keys
  JOIN attribution_tagset tag_set ON tag_set.id = keys.tag_set_id
"""

# The team, model and deployment each key resolves to: explicit mapping first, then rules.
_MAPPING_SQL = """
CREATE TEMP TABLE rule_mapping ON COMMIT DROP AS
WITH rules AS ({rules_sql}),
mapped AS (
    SELECT li.key,
           coalesce(tag_team.id, matched.team) AS new_team,
           coalesce(tag_deployment.id, by_resource.id, matched.deployment) AS new_deployment,
           coalesce(tag_model.id, tag_deployment.model_id, by_resource.model_id, matched.model) AS rule_model
      FROM rule_keys li
      LEFT JOIN attribution_team tag_team ON lower(tag_team.slug) = lower(li.normalized_tags ->> 'team')
      LEFT JOIN attribution_model tag_model ON lower(tag_model.slug) = lower(li.normalized_tags ->> 'model')
      LEFT JOIN attribution_deployment tag_deployment
             ON lower(tag_deployment.slug) = lower(li.normalized_tags ->> 'deployment')
      LEFT JOIN LATERAL (
            SELECT d.id, d.model_id FROM attribution_deployment d
             WHERE tag_deployment.id IS NULL AND li.resource_id <> '' AND d.resource_id <> ''
               AND lower(d.resource_id) = lower(li.resource_id)
               AND (d.account_id IS NULL OR d.account_id = li.account_id)
             ORDER BY d.id LIMIT 1
      ) by_resource ON true
      LEFT JOIN LATERAL (
            SELECT (array_agg(r.set_team_id ORDER BY r.priority, r.id)
                        FILTER (WHERE r.set_team_id IS NOT NULL))[1] AS team,
                   (array_agg(r.set_model_id ORDER BY r.priority, r.id)
                        FILTER (WHERE r.set_model_id IS NOT NULL))[1] AS model,
                   (array_agg(r.set_deployment_id ORDER BY r.priority, r.id)
                        FILTER (WHERE r.set_deployment_id IS NOT NULL))[1] AS deployment
              FROM rules r
             WHERE {match_sql}
      ) matched ON true
)
SELECT mapped.key, mapped.new_team, coalesce(mapped.rule_model, deployment.model_id) AS new_model,
       mapped.new_deployment
  FROM mapped LEFT JOIN attribution_deployment deployment ON deployment.id = mapped.new_deployment
"""

# Line items whose stored dimensions differ from what the mapping gives them.
_CHANGED_SQL = """
WITH changed AS (
    SELECT li.id, li.billing_currency, li.billed_cost,
           li.team_id AS old_team, li.model_id AS old_model, li.deployment_id AS old_deployment,
           m.new_team, m.new_model, m.new_deployment
      FROM attribution_costlineitem li
      JOIN rule_mapping m ON m.key = {key_sql}
     WHERE {current_items}
       AND (li.team_id, li.model_id, li.deployment_id)
           IS DISTINCT FROM (m.new_team, m.new_model, m.new_deployment)
)
"""

_SAVED_RULES_SQL = """
    SELECT id, priority, account_id, match_field, tag_key, operator, value,
           set_team_id, set_model_id, set_deployment_id
      FROM attribution_dimensionrule
     WHERE is_active AND id <> %(exclude_rule)s AND id <> ALL(%(skip_rules)s)
"""
_CANDIDATE_RULE_SQL = """
    UNION ALL
    SELECT %(c_id)s::bigint, %(c_priority)s::integer, %(c_account)s::bigint, %(c_match_field)s::text,
           %(c_tag_key)s::text, %(c_operator)s::text, %(c_value)s::text, %(c_team)s::bigint,
           %(c_model)s::bigint, %(c_deployment)s::bigint
"""


# Rows fresh from an ingest carry only explicit mapping, so a row with all three dimensions set
# cannot change: on ingest only the incomplete ones are looked at.
_INCOMPLETE_SQL = " AND (li.team_id IS NULL OR li.model_id IS NULL OR li.deployment_id IS NULL)"


def _current_items_sql(*, period_scope: bool, incomplete_only: bool = False) -> str:
    if not period_scope:
        return _CURRENT_ITEMS_SQL.format(item_scope="")
    return _CURRENT_ITEMS_SQL.format(
        item_scope="AND li.account_id = %(account)s AND li.billing_period_start = %(period)s"
        + (_INCOMPLETE_SQL if incomplete_only else ""),
    )


def rules_unevaluable() -> list[dict[str, Any]]:
    """Active saved rules that Postgres cannot evaluate, each with why: skipped, never fatal.

    Validation keeps such rules out, but one stored around it (an old form, raw SQL) would make
    every statement that evaluates the rules fail with a DataError, the ingest's swap included.
    Each regex is compiled once, in a savepoint; the verdict is recorded on the rule
    (`evaluation_error`) so the rules page and the admin show it, and cleared once it evaluates.
    """
    skipped = []
    fixed = []
    for rule in DimensionRule.objects.filter(is_active=True, operator=RuleOperator.REGEX).only(
        "id", "name", "value", "evaluation_error"
    ):
        problem = regex_pattern_error(rule.value)
        if problem:
            skipped.append(
                {
                    "kind": "rule_skipped",
                    "rule_id": rule.pk,
                    "message": f"Mapping rule #{rule.pk} {rule.name!r} was skipped: {problem} Line items "
                    "only it would map stay unmapped (unallocated, reason untagged) until it is fixed.",
                }
            )
            if rule.evaluation_error != problem:
                DimensionRule.objects.filter(pk=rule.pk).update(evaluation_error=problem)
        elif rule.evaluation_error:
            fixed.append(rule.pk)
    if fixed:
        DimensionRule.objects.filter(pk__in=fixed).update(evaluation_error="")
    for problem in skipped:
        logger.warning("%s", problem["message"])
    return skipped


def _mapping_prepare(
    cursor, *, params: dict[str, Any], with_candidate: bool, period_scope: bool, incomplete_only: bool = False
) -> str:
    """Fill the temporary rule_keys and rule_mapping tables (dropped by _mapping_drop, or at the
    end of the transaction); return the `WITH changed AS (...)` prefix for the caller's statement.

    Rules that cannot be evaluated are left out and listed in `params["skipped_rules"]`."""
    params["skipped_rules"] = rules_unevaluable()
    params["skip_rules"] = [problem["rule_id"] for problem in params["skipped_rules"]]
    current_items = _current_items_sql(period_scope=period_scope, incomplete_only=incomplete_only)
    if period_scope:
        params["runs"] = IngestRun.objects.current_ids(
            account_id=params["account"], billing_period_start=params["period"]
        )
    else:
        params["runs"] = IngestRun.objects.current_ids()
    params["resource_rules"] = with_candidate and params.get("c_match_field") == RuleMatchField.RESOURCE_ID
    params["resource_rules"] |= DimensionRule.objects.filter(
        is_active=True, match_field=RuleMatchField.RESOURCE_ID
    ).exists()
    cursor.execute(
        _KEYS_SQL.format(key_sql=_KEY_SQL, resource_sql=_RESOURCE_SQL, current_items=current_items), params
    )
    rules_sql = _SAVED_RULES_SQL + (_CANDIDATE_RULE_SQL if with_candidate else "")
    cursor.execute(_MAPPING_SQL.format(rules_sql=rules_sql, match_sql=_MATCH_SQL), params)
    cursor.execute("CREATE UNIQUE INDEX ON rule_mapping (key)")
    cursor.execute("ANALYZE rule_mapping")
    return _CHANGED_SQL.format(key_sql=_KEY_SQL, current_items=current_items)


def _mapping_drop(cursor) -> None:
    cursor.execute("DROP TABLE rule_mapping")
    cursor.execute("DROP TABLE rule_keys")


def _base_params() -> dict[str, Any]:
    return {"exclude_rule": -1}


# --- Applying ----------------------------------------------------------------------------------


def remap_update_sql(*, fresh_ingest: bool) -> str:
    """The UPDATE that writes the mapping: one pass over the period's line items joined to the
    small rule_mapping table by key.

    Not `UPDATE ... FROM (the changed rows) WHERE li.id = changed.id`: partitions fresh from COPY
    have no index on id and often no statistics yet, so the planner joined the partition to
    itself in a nested loop, O(rows²) (ten minutes for one month of the GCP demo).
    """
    current_items = _current_items_sql(period_scope=True, incomplete_only=fresh_ingest)
    return f"""
        UPDATE attribution_costlineitem li
           SET team_id = m.new_team, model_id = m.new_model, deployment_id = m.new_deployment
          FROM rule_mapping m
         WHERE {current_items}
           AND m.key = {_KEY_SQL}
           AND (li.team_id, li.model_id, li.deployment_id)
               IS DISTINCT FROM (m.new_team, m.new_model, m.new_deployment)
    """


def dimension_rules_apply(
    *, account_id: int, billing_period_start: dt.date, fresh_ingest: bool = False, run_id: int | None = None
) -> dict[str, Any]:
    """Re-map the current line items of one (account, period) and rebuild its DailyCost if any moved.

    Runs in the caller's transaction if there is one (the ingest swap, via the period_ingested
    receiver), so readers never see the period unmapped. Serialised with ingests of the same
    period by the period's advisory lock. Returns {"line_items": rows whose dimensions changed}.

    `fresh_ingest=True` (the receiver) says the rows carry only explicit mapping: nothing to do
    without an active rule for the account, and only rows missing a dimension can change.

    A rule that cannot be evaluated is skipped, never fatal: it is listed in
    {"skipped_rules": [...]} and, with `run_id` (the ingest run being swapped in), in the run's
    `warnings`.
    """
    # attribution.services is imported here: it imports the ingest stack, and this module is
    # imported from AppConfig.ready() through the receivers.
    from attribution.ingest import loader
    from attribution.ingest import services as attribution_services

    params = {**_base_params(), "account": account_id, "period": billing_period_start}
    if fresh_ingest and not (
        DimensionRule.objects.filter(is_active=True)
        .filter(Q(account_id__isnull=True) | Q(account_id=account_id))
        .exists()
    ):
        return {"line_items": 0, "skipped_rules": []}
    with transaction.atomic():
        loader.period_lock(account_id=account_id, billing_period_start=billing_period_start)
        with connection.cursor() as cursor:
            _mapping_prepare(
                cursor, params=params, with_candidate=False, period_scope=True, incomplete_only=fresh_ingest
            )
            cursor.execute(remap_update_sql(fresh_ingest=fresh_ingest), params)
            moved = cursor.rowcount
            _mapping_drop(cursor)
        if run_id is not None and params["skipped_rules"]:
            run = IngestRun.objects.select_for_update().only("warnings").get(pk=run_id)
            kept = [warning for warning in run.warnings if warning.get("kind") != "rule_skipped"]
            IngestRun.objects.filter(pk=run_id).update(warnings=kept + params["skipped_rules"])
        if moved:
            attribution_services.daily_cost_rebuild(
                account_id=account_id, billing_period_start=billing_period_start
            )
    return {"line_items": moved, "skipped_rules": params["skipped_rules"]}


# --- Preview -----------------------------------------------------------------------------------


def _slug_maps(ids: dict[str, set[int]]) -> dict[str, dict[int, str]]:
    return {
        "team": dict(Team.objects.filter(id__in=ids["team"]).values_list("id", "slug")),
        "model": dict(ServedModel.objects.filter(id__in=ids["model"]).values_list("id", "slug")),
        "deployment": dict(Deployment.objects.filter(id__in=ids["deployment"]).values_list("id", "slug")),
    }


def dimension_rule_preview(*, rule_data: dict[str, Any], limit: int = 50) -> dict[str, Any]:
    """What saving `rule_data` would move, computed in SQL without writing anything.

    `rule_data` is a rule as dimension_rule_clean accepts it; with an `id` it previews an edit of
    that rule (the saved version is left out), and with `is_active: false` (or `delete: true`) it
    previews switching it off. Compares each current line item's stored dimensions with the ones
    it would get, over every account and period. Returns the number of line items and BilledCost
    per currency that would move, and the moves grouped by (from team, model, deployment) ->
    (to ...), the largest first.
    """
    delete = bool(rule_data.get("delete"))
    clean = dimension_rule_clean(rule_data=rule_data, partial=delete)
    rule_id = rule_data.get("id")
    params = {**_base_params(), "exclude_rule": int(rule_id) if rule_id else -1}
    include = not delete and clean.get("is_active", True)
    if include:
        params.update(
            {
                "c_id": int(rule_id) if rule_id else UNSAVED_RULE_ID,
                "c_priority": clean["priority"],
                "c_account": clean.get("account_id"),
                "c_match_field": clean["match_field"],
                "c_tag_key": clean.get("tag_key", ""),
                "c_operator": clean["operator"],
                "c_value": clean.get("value", ""),
                "c_team": clean.get("set_team_id"),
                "c_model": clean.get("set_model_id"),
                "c_deployment": clean.get("set_deployment_id"),
            }
        )
    # Temporary tables only: the preview writes no data, and its transaction drops them.
    with transaction.atomic(), connection.cursor() as cursor:
        changed_sql = _mapping_prepare(cursor, params=params, with_candidate=include, period_scope=False)
        cursor.execute(
            changed_sql
            + """
            SELECT old_team, old_model, old_deployment, new_team, new_model, new_deployment,
                   billing_currency, count(*), sum(billed_cost)
              FROM changed
             GROUP BY 1, 2, 3, 4, 5, 6, 7
             ORDER BY sum(abs(billed_cost)) DESC, count(*) DESC
            """,
            params,
        )
        rows = cursor.fetchall()
        _mapping_drop(cursor)

    ids: dict[str, set[int]] = {"team": set(), "model": set(), "deployment": set()}
    for row in rows:
        for name, index in (("team", 0), ("model", 1), ("deployment", 2)):
            ids[name].update(value for value in (row[index], row[index + 3]) if value is not None)
    slugs = _slug_maps(ids)

    def named(team: int | None, model: int | None, deployment: int | None) -> dict[str, str | None]:
        return {
            "team": slugs["team"].get(team) if team else None,
            "model": slugs["model"].get(model) if model else None,
            "deployment": slugs["deployment"].get(deployment) if deployment else None,
        }

    totals: dict[str, Decimal] = defaultdict(Decimal)
    line_items = 0
    moves = []
    for old_team, old_model, old_dep, new_team, new_model, new_dep, currency, count, billed in rows:
        totals[currency] += billed
        line_items += count
        if len(moves) < limit:
            moves.append(
                {
                    "from": named(old_team, old_model, old_dep),
                    "to": named(new_team, new_model, new_dep),
                    "currency": currency,
                    "line_items": count,
                    "billed_cost": str(billed),
                }
            )
    return {
        "line_items": line_items,
        "billed_cost": {currency: str(amount) for currency, amount in sorted(totals.items())},
        "moves": moves,
        "moves_truncated": len(rows) > limit,
    }


# --- Validation and writes -----------------------------------------------------------------------


def _regex_check(pattern: str) -> None:
    # The same check as DimensionRule.clean(): Python's re and Postgres' own dialect.
    problem = regex_pattern_error(pattern)
    if problem:
        raise ValidationError({"value": problem})


def dimension_rule_clean(*, rule_data: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """Validate rule fields (ids for account/team/model/deployment) and return them cleaned.

    Raises ValidationError with a message per field that says what to change.
    """
    data = {field: rule_data[field] for field in RULE_FIELDS if field in rule_data}
    if partial:
        return data
    errors: dict[str, str] = {}
    data.setdefault("priority", 100)
    data.setdefault("operator", RuleOperator.EQUALS)
    data.setdefault("tag_key", "")
    data.setdefault("value", "")
    data.setdefault("is_active", True)
    data["tag_key"] = (data["tag_key"] or "").strip()
    data["value"] = data["value"] or ""
    if not str(data.get("name", "x")).strip():
        errors["name"] = "Give the rule a name that says what it maps."
    priority = data["priority"]
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        errors["priority"] = "Priority must be a whole number of 0 or more (lower numbers win)."
    if data.get("match_field") not in RuleMatchField.values:
        errors["match_field"] = f"Choose one of {', '.join(RuleMatchField.values)}."
    if data["operator"] not in RuleOperator.values:
        errors["operator"] = f"Choose one of {', '.join(RuleOperator.values)}."
    if data.get("match_field") == RuleMatchField.TAG and not data["tag_key"]:
        errors["tag_key"] = "A tag rule needs the (normalised) tag key, e.g. 'team' or 'cost-center'."
    if data["operator"] == RuleOperator.EXISTS and data.get("match_field") != RuleMatchField.TAG:
        errors["operator"] = "'exists' only applies to tags."
    if data["operator"] != RuleOperator.EXISTS and not data["value"]:
        errors["value"] = "Give the value to compare with."
    if not any(data.get(name) for name in ("set_team_id", "set_model_id", "set_deployment_id")):
        errors["set_team"] = "A rule must set at least one of team, model and deployment."
    for name, model in (
        ("account_id", CloudAccount),
        ("set_team_id", Team),
        ("set_model_id", ServedModel),
        ("set_deployment_id", Deployment),
    ):
        if data.get(name) and not model.objects.filter(pk=data[name]).exists():
            errors[name.removesuffix("_id")] = f"No {model._meta.verbose_name} with id {data[name]}."
    if errors:
        raise ValidationError(errors)
    if data["operator"] == RuleOperator.REGEX:
        _regex_check(data["value"])
    return data


def dimension_rule_create(
    *, rule_data: dict[str, Any], actor: Any = None, remote_addr: str | None = None
) -> DimensionRule:
    """Validate and save a new rule; audited in the same transaction."""
    clean = dimension_rule_clean(rule_data=rule_data)
    with transaction.atomic():
        rule = DimensionRule.objects.create(**clean, evaluation_error="")
        audited_change_send(
            actor=actor,
            action="create",
            obj=rule,
            changes=snapshot_changes(None, model_snapshot(rule)),
            remote_addr=remote_addr,
        )
    return rule


def dimension_rule_update(
    *,
    rule: DimensionRule,
    rule_data: dict[str, Any],
    actor: Any = None,
    remote_addr: str | None = None,
) -> tuple[DimensionRule, dict]:
    """Apply `rule_data` over the saved rule; returns the rule and {field: [old, new]} of changes.
    A change is audited in the same transaction; saving the rule as it was writes nothing."""
    merged = {field: getattr(rule, field) for field in RULE_FIELDS}
    merged.update({field: rule_data[field] for field in RULE_FIELDS if field in rule_data})
    clean = dimension_rule_clean(rule_data=merged)
    changes = {
        field: [getattr(rule, field), value]
        for field, value in clean.items()
        if getattr(rule, field) != value
    }
    if not changes:
        return rule, changes
    before = model_snapshot(rule)
    for field, value in clean.items():
        setattr(rule, field, value)
    # Validated just now: whatever made an earlier version unevaluable is gone.
    rule.evaluation_error = ""
    with transaction.atomic():
        rule.save()
        audited_change_send(
            actor=actor,
            action="update",
            obj=rule,
            changes=snapshot_changes(before, model_snapshot(rule)),
            remote_addr=remote_addr,
        )
    return rule, changes


def dimension_rule_delete(*, rule: DimensionRule, actor: Any = None, remote_addr: str | None = None) -> None:
    with transaction.atomic():
        audited_change_send(
            actor=actor,
            action="delete",
            obj=rule,
            changes=snapshot_changes(model_snapshot(rule), None),
            remote_addr=remote_addr,
        )
        rule.delete()


def dimension_rule_save(
    *,
    rule: DimensionRule | None,
    rule_data: dict[str, Any],
    actor: Any,
    remote_addr: str | None = None,
) -> tuple[DimensionRule, BackgroundRun | None]:
    """Create (rule=None) or update a rule and, if anything changed, start (or join) the
    re-application of the rules to history, all in one transaction. Returns (rule, run or None)."""
    with transaction.atomic():
        if rule is None:
            rule = dimension_rule_create(rule_data=rule_data, actor=actor, remote_addr=remote_addr)
            changed = True
        else:
            rule, changes = dimension_rule_update(
                rule=rule, rule_data=rule_data, actor=actor, remote_addr=remote_addr
            )
            changed = bool(changes)
        run = rules_reapply_start(actor_id=getattr(actor, "pk", None)) if changed else None
    return rule, run


def dimension_rule_remove(
    *, rule: DimensionRule, actor: Any, remote_addr: str | None = None
) -> BackgroundRun:
    """Delete a rule and start (or join) the re-application to history, in one transaction."""
    with transaction.atomic():
        dimension_rule_delete(rule=rule, actor=actor, remote_addr=remote_addr)
        return rules_reapply_start(actor_id=getattr(actor, "pk", None))


# --- Re-applying to history ----------------------------------------------------------------------


def rules_reapply_start(*, actor_id: int | None = None) -> BackgroundRun:
    """Queue a re-application of the rules to every current (account, period).

    A run still pending has not read the rules yet, so it is reused instead of queueing another:
    many edits in a row cost one walk over history.
    """
    with transaction.atomic():
        pending = (
            BackgroundRun.objects.select_for_update()
            .filter(kind=REAPPLY_KIND, state=RunState.PENDING)
            .order_by("id")
            .first()
        )
        if pending is not None:
            return pending
        run = BackgroundRun.objects.create(
            kind=REAPPLY_KIND, params={"actor_id": actor_id}, message="Waiting for a worker"
        )
        signals.rules_reapply_requested.send(sender=BackgroundRun, run_id=run.pk)
    return run


def rules_reapply_request(*, actor: Any, remote_addr: str | None = None) -> BackgroundRun:
    """A person asked to re-apply the rules to history: start (or join) the run, audited."""
    with transaction.atomic():
        run = rules_reapply_start(actor_id=getattr(actor, "pk", None))
        audited_change_send(actor=actor, action="reapply_rules", obj=run, changes={}, remote_addr=remote_addr)
    return run


def rules_reapply_execute(*, run_id: int) -> BackgroundRun:
    """Walk every (account, period) with a current ingest and apply the rules, recording progress.

    Claimed with a conditional UPDATE (pending -> running), so a redelivered task does nothing.
    Each period is its own transaction: an interrupted run leaves every period either re-mapped
    or as it was, and running it again is harmless.
    """
    claimed = BackgroundRun.objects.filter(pk=run_id, state=RunState.PENDING).update(
        state=RunState.RUNNING, started_at=timezone.now(), message="Listing billing periods"
    )
    run = BackgroundRun.objects.get(pk=run_id)
    if claimed != 1:
        return run
    periods = list(
        IngestRun.objects.filter(state=IngestState.SUCCEEDED)
        .order_by("account_id", "billing_period_start")
        .values_list("account_id", "billing_period_start")
        .distinct()
    )
    BackgroundRun.objects.filter(pk=run_id).update(progress_total=len(periods), progress_done=0)
    moved = 0
    skipped: dict[int, dict[str, Any]] = {}
    try:
        for done, (account_id, period) in enumerate(periods, start=1):
            applied = dimension_rules_apply(account_id=account_id, billing_period_start=period)
            moved += applied["line_items"]
            skipped.update((problem["rule_id"], problem) for problem in applied["skipped_rules"])
            BackgroundRun.objects.filter(pk=run_id).update(
                progress_done=done, message=f"Re-mapped {done} of {len(periods)} billing periods"
            )
    except Exception as error:
        # Recorded on the run for the UI, then re-raised so the worker logs the traceback.
        BackgroundRun.objects.filter(pk=run_id).update(
            state=RunState.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    BackgroundRun.objects.filter(pk=run_id).update(
        state=RunState.SUCCEEDED,
        finished_at=timezone.now(),
        message=f"Re-mapped {len(periods)} billing periods; {moved} line items moved"
        + (f"; {len(skipped)} rule(s) skipped because they cannot be evaluated" if skipped else ""),
        result={"periods": len(periods), "line_items_moved": moved}
        | ({"skipped_rules": list(skipped.values())} if skipped else {}),
    )
    run.refresh_from_db()
    return run
