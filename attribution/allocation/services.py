"""Allocation: every line item's cost, per day, to a team / model / deployment, or to a visible
unallocated reason; then the conservation check.

The whole run is SQL over temporary tables, in one transaction per account:

1. `alloc_cells`: one pass over the account's line items of those days, grouped by day, period,
   charge category, currency, team, model, deployment, and the first active AllocationRule the
   line item matches (evaluated only for line items without a team). Each cell has a kind:
   `direct` (has a team), `pool` (matched a rule), `no_rule` (has a deployment or a pool tag but
   no active rule matches), `untagged` (nothing at all; `rule_skipped` while a mapping rule of the
   account cannot be evaluated, since that rule might have mapped it).
2. `alloc_pools`: pool cells per (day, account, period, charge category, currency, rule, model,
   deployment) — the unit that is split, a few hundred rows a day however many line items.
3. `alloc_basis` / `alloc_usage`: the deployments each pool is split over and their usage that day
   (UsageDaily, or UsageRecord aggregated on the fly for days whose rollup is not there yet).
4. `alloc_units`: who gets a share and with which weight (tokens, requests, GPU-seconds, one per
   team, fixed percent), plus an idle unit (see below) or a single unallocated unit.
5. The split itself: exact integer arithmetic on amounts in units of 1e-10 (the column scale) with
   largest remainder, so the shares of a pool add up to the pool's total exactly, for BilledCost
   and EffectiveCost separately, negative amounts (credits) included.

Idle capacity: on a day with no usage on a pool's deployments the pool is one unallocated line,
reason `idle` (rule idle_policy own_line) or `no_usage` (spread: there is nobody to spread it
over). Within a day with some usage, idle is measured only for the gpu_seconds method, where a
capacity exists: capacity = sum(gpu_count) of the pool's deployments x 86,400 GPU-seconds; idle =
capacity - GPU-seconds used (when positive). own_line turns it into an `idle` line with weight
(capacity - used) next to the users' weights; spread leaves it out, so users share the whole
cost. Tokens and requests have no physical capacity to compare with, so those methods never
report partial idle.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q

from attribution import signals
from attribution.audit import audited_change_send, model_snapshot, snapshot_changes
from attribution.ingest.tags import tag_key_normalize
from attribution.models import (
    AllocationMethod,
    AllocationRule,
    AllocationShare,
    CloudAccount,
    DimensionRule,
    IngestRun,
    UnallocatedReason,
)

logger = logging.getLogger(__name__)

# Advisory lock namespace for allocation runs (the key is the account id): two runs of the same
# account would delete each other's rows half-way.
_LOCK_NAMESPACE = 740_001
# Tag keys that make a team-less line item "belong to a pool" even when no rule matches it.
POOL_TAG_KEYS: tuple[str, ...] = ("pool",)


class AllocationRuleError(ValidationError):
    """A rule that cannot be applied (e.g. fixed shares that do not total 100%)."""


@dataclass
class ConservationViolation:
    account_id: int
    day: dt.date
    currency: str
    column: str
    billed: Decimal
    allocated: Decimal


@dataclass
class AllocationResult:
    account_id: int
    days: list[dt.date]
    rows_written: int = 0
    pools: int = 0
    seconds: float = 0.0
    violations: list[ConservationViolation] = field(default_factory=list)

    @property
    def conserved(self) -> bool:
        return not self.violations


def allocation_shares_error(*, name: str, method: str, percents: list[Decimal]) -> str:
    """Why a rule with these shares cannot be saved or applied ("" when it can).

    Fixed shares must total exactly 100 %: a remainder would be money no team carries and no
    reason explains, an excess money allocated twice. Every interface (admin form, service,
    the allocation run itself) asks this one function.
    """
    if method != AllocationMethod.FIXED:
        return ""
    total = sum(percents, Decimal(0))
    if total == Decimal(100):
        return ""
    return (
        f"Allocation rule {name!r} splits by fixed shares, which must total exactly 100%; "
        f"its {len(percents)} shares total {total.normalize():f}%. Adjust the shares so they add up to 100."
    )


def _shares_snapshot(rule: AllocationRule) -> list[dict[str, Any]]:
    return [
        {"team_id": share.team_id, "model_id": share.model_id, "percent": str(share.percent)}
        for share in rule.shares.order_by("team_id", "model_id", "id")
    ]


def allocation_rule_save(
    *,
    rule: AllocationRule,
    shares: list[dict[str, Any]] | None = None,
    actor: Any = None,
    remote_addr: str | None = None,
) -> AllocationRule:
    """Create or update a rule (and, when `shares` is given, replace its shares: dicts with
    team_id, model_id, percent), validated, audited as one change with the shares before and after.

    Raises ValidationError (nothing written) when fixed shares do not total 100 %.
    """
    with transaction.atomic():
        before = None
        if rule.pk is not None:
            saved = AllocationRule.objects.select_for_update().filter(pk=rule.pk).first()
            if saved is not None:
                before = {**model_snapshot(saved), "shares": _shares_snapshot(saved)}
        if shares is not None:
            percents = [Decimal(str(share["percent"])) for share in shares]
        elif rule.pk is not None:
            percents = list(rule.shares.values_list("percent", flat=True))
        else:
            percents = []
        problem = allocation_shares_error(name=rule.name, method=rule.method, percents=percents)
        if problem:
            raise ValidationError(problem)
        rule.full_clean(validate_unique=True)
        rule.save()
        if shares is not None:
            rule.shares.all().delete()
            AllocationShare.objects.bulk_create(
                AllocationShare(
                    rule=rule,
                    team_id=share.get("team_id"),
                    model_id=share.get("model_id"),
                    percent=Decimal(str(share["percent"])),
                )
                for share in shares
            )
        after = {**model_snapshot(rule), "shares": _shares_snapshot(rule)}
        audited_change_send(
            actor=actor,
            action="create" if before is None else "update",
            obj=rule,
            changes=snapshot_changes(before, after),
            remote_addr=remote_addr,
        )
    return rule


def allocation_share_save(
    *, share: AllocationShare, actor: Any = None, remote_addr: str | None = None
) -> AllocationShare:
    """Change one share on its own: the rule's shares must still total 100 % with the others."""
    with transaction.atomic():
        rule = AllocationRule.objects.select_for_update().get(pk=share.rule_id)
        others = rule.shares.exclude(pk=share.pk).values_list("percent", flat=True)
        problem = allocation_shares_error(
            name=rule.name, method=rule.method, percents=[*others, share.percent]
        )
        if problem:
            raise ValidationError(f"{problem} Edit the shares together on the rule's page.")
        saved = AllocationShare.objects.filter(pk=share.pk).first() if share.pk is not None else None
        before = model_snapshot(saved) if saved is not None else None
        share.save()
        audited_change_send(
            actor=actor,
            action="create" if before is None else "update",
            obj=share,
            changes=snapshot_changes(before, model_snapshot(share)),
            remote_addr=remote_addr,
        )
    return share


def allocation_rule_delete(
    *, rule: AllocationRule, actor: Any = None, remote_addr: str | None = None
) -> None:
    with transaction.atomic():
        before = {**model_snapshot(rule), "shares": _shares_snapshot(rule)}
        audited_change_send(
            actor=actor,
            action="delete",
            obj=rule,
            changes=snapshot_changes(before, None),
            remote_addr=remote_addr,
        )
        rule.delete()


def allocation_rule_validate(*, rule: AllocationRule) -> None:
    """Raise AllocationRuleError if the rule cannot be applied as it stands."""
    problem = allocation_shares_error(
        name=rule.name, method=rule.method, percents=[share.percent for share in rule.shares.all()]
    )
    if problem:
        raise AllocationRuleError(f"{problem} Then run allocation again.")


def allocation_rule_create(*, rule_data: dict[str, Any], shares: list[dict[str, Any]]) -> AllocationRule:
    """Create an allocation rule with its fixed shares (`team_id`/`model_id`, `percent`), all or nothing.

    Raises AllocationRuleError when fixed shares do not total 100 %, ValidationError for a bad field.
    """
    with transaction.atomic():
        rule = AllocationRule(**rule_data)
        rule.full_clean()
        rule.save()
        allocation_rule_shares_set(rule=rule, shares=shares)
    return rule


def allocation_rule_shares_set(
    *, rule: AllocationRule, shares: list[dict[str, Any]]
) -> list[AllocationShare]:
    """Replace the rule's shares; refused, leaving the old ones, unless fixed shares total 100 %."""
    objects = [AllocationShare(rule=rule, **share) for share in shares]
    problem = allocation_shares_error(
        name=rule.name, method=rule.method, percents=[Decimal(str(share.percent)) for share in objects]
    )
    if problem:
        raise AllocationRuleError(problem)
    with transaction.atomic():
        rule.shares.all().delete()
        for share in objects:
            share.full_clean(exclude=["rule"])
            share.save()
    return objects


def _rules_for(account_id: int) -> list[AllocationRule]:
    rules = list(
        AllocationRule.objects.filter(is_active=True)
        .filter(Q(account__isnull=True) | Q(account_id=account_id))
        .prefetch_related("shares")
        .order_by("priority", "id")
    )
    for rule in rules:
        allocation_rule_validate(rule=rule)
    return rules


def _rule_case(rules: list[AllocationRule], keys: list[str], params: dict[str, Any]) -> str:
    """A CASE over a cell's deployment and tag columns (tag_0...) naming the first matching rule."""
    if not rules:
        return "NULL::bigint"
    branches = []
    for index, rule in enumerate(rules):
        conditions = []
        if rule.match_deployment_id:
            params[f"rule_dep_{index}"] = rule.match_deployment_id
            conditions.append(f"deployment_id = %(rule_dep_{index})s")
        if rule.match_tag_key:
            column = f"tag_{keys.index(tag_key_normalize(rule.match_tag_key))}"
            if rule.match_tag_value:
                # Tag values keep their case on ingest; slugs and pool names compare case-blind
                # (the tag columns are lower-cased when they are read).
                params[f"rule_value_{index}"] = rule.match_tag_value.strip().lower()
                conditions.append(f"{column} = %(rule_value_{index})s")
            else:
                # Normalisation drops empty values, so a present key always has a value.
                conditions.append(f"{column} IS NOT NULL")
        branches.append(f"WHEN {' AND '.join(conditions)} THEN {int(rule.pk)}")
    return f"CASE WHEN team_id IS NOT NULL THEN NULL {' '.join(branches)} END"


def _untagged_reason(account_id: int) -> str:
    """The reason for the account's cost that carries nothing to allocate it by.

    While a mapping rule of the account is skipped because it cannot be evaluated (see
    attribution.allocation.rules.rules_unevaluable), that rule might have mapped this cost: the
    reason says so, and clears once the rule is fixed and allocation runs again.
    """
    skipped = (
        DimensionRule.objects.filter(is_active=True)
        .exclude(evaluation_error="")
        .filter(Q(account__isnull=True) | Q(account_id=account_id))
        .exists()
    )
    return UnallocatedReason.RULE_SKIPPED if skipped else UnallocatedReason.UNTAGGED


def _pool_keys() -> list[str]:
    """Tag keys that tie cost to a pool: `pool` and every key any rule (active or not) matches on."""
    keys = set(POOL_TAG_KEYS)
    for key in AllocationRule.objects.exclude(match_tag_key="").values_list("match_tag_key", flat=True):
        keys.add(tag_key_normalize(key))
    return sorted(keys)


def _day_bounds(days: list[dt.date]) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC),
        dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
    )


def allocation_days_for(*, account_id: int, billing_period_start: dt.date | None = None) -> list[dt.date]:
    """Days a run must cover: days with line items, plus days that still have allocated rows
    (their line items may have gone with a restatement)."""
    period_filter = "AND billing_period_start = %(period)s" if billing_period_start else ""
    runs = IngestRun.objects.current_ids(account_id=account_id, billing_period_start=billing_period_start)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT (charge_period_start AT TIME ZONE 'UTC')::date FROM attribution_costlineitem
            WHERE ingest_run_id = ANY(%(runs)s)
            UNION
            SELECT DISTINCT day FROM attribution_allocatedcost WHERE account_id = %(account)s {period_filter}
            """,  # noqa: S608
            {"account": account_id, "period": billing_period_start, "runs": runs},
        )
        return sorted(row[0] for row in cursor.fetchall())


def allocation_run(
    *,
    account_id: int,
    days: list[dt.date] | None = None,
    billing_period_start: dt.date | None = None,
    check: str | None = "daily_cost",
) -> AllocationResult:
    """Recompute AllocatedCost of one account for exactly `days` (all days of `billing_period_start`
    or of the account when None), then check conservation and signal any violation.

    `check` names the billed side of the conservation check: "daily_cost" (default; the rollup the
    ingest pipeline rebuilt from the current line items), "line_items" (scan them again), or None.
    """
    started = time.perf_counter()
    CloudAccount.objects.only("id").get(pk=account_id)
    if days is None:
        days = allocation_days_for(account_id=account_id, billing_period_start=billing_period_start)
    days = sorted(set(days))
    result = AllocationResult(account_id=account_id, days=days)
    if not days:
        return result
    rules = _rules_for(account_id)
    first, after_last = _day_bounds(days)
    keys = _pool_keys()
    params: dict[str, Any] = {"account": account_id, "days": days, "first": first, "after_last": after_last}
    params.update({f"key_{index}": key for index, key in enumerate(keys)})
    params["runs"] = IngestRun.objects.current_ids(
        account_id=account_id, charged_from=first, charged_before=after_last
    )
    rule_case = _rule_case(rules, keys, params)
    params["untagged_reason"] = _untagged_reason(account_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, account_id])
        # One hash aggregate over millions of line items; the default 4 MB would spill to disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # JIT-compiling these wide expressions costs seconds per statement and saves less.
        cursor.execute("SET LOCAL jit = off")
        _cells_build(cursor, rule_case, keys, params)
        result.pools = _pools_build(cursor, rules, params)
        cursor.execute(
            "DELETE FROM attribution_allocatedcost WHERE account_id = %(account)s AND day = ANY(%(days)s)",
            params,
        )
        result.rows_written = _rows_insert(cursor, params)
        if check:
            result.violations = _conservation_violations(
                cursor, account_id=account_id, days=days, source=check
            )
    # Signals go out after the commit, so an alert is raised for rows that really are stored.
    _violations_signal(result.violations)
    result.seconds = time.perf_counter() - started
    return result


def _contiguous(days: list[dt.date]) -> bool:
    return (days[-1] - days[0]).days == len(days) - 1


def _cells_build(cursor, rule_case: str, keys: list[str], params: dict[str, Any]) -> None:
    """The one pass over line items, then the rule matching on its (small) result."""
    # For a run of consecutive days the timestamp range says it all; an extra per-row test on
    # the computed day would also spoil the planner's row estimate.
    day_filter = "" if _contiguous(params["days"]) else "WHERE day = ANY(%(days)s)"
    # Line items are summed per tag set first (team-less ones only need their tags); the pool tag
    # values are then read once per tag set (one jsonb lookup per key) and grouped by. Which rule
    # they match is decided per group afterwards.
    tag_columns = [f"tag_{index}" for index in range(len(keys))]
    tag_select = "".join(
        f", lower(tag_set.normalized_tags->>%(key_{index})s) AS tag_{index}" for index in range(len(keys))
    )
    tag_group = "".join(f", {column}" for column in tag_columns)
    any_tag = " OR ".join(f"{column} IS NOT NULL" for column in tag_columns) or "false"
    cell = (
        "day, account_id, billing_period_start, charge_category, billing_currency, "
        "team_id, model_id, deployment_id"
    )
    for table in ("alloc_raw", "alloc_cells"):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
    # Hundreds of groups a day from millions of rows: a hash aggregate. The planner cannot see
    # how few groups there are and would sort every row instead.
    cursor.execute("SET LOCAL enable_sort = off")
    cursor.execute(
        f"""
        CREATE TEMP TABLE alloc_raw ON COMMIT DROP AS
        SELECT {cell} {tag_group},
               SUM(billed_cost) AS billed_cost, SUM(effective_cost) AS effective_cost
        FROM (
            SELECT per_tag_set.* {tag_select}
            FROM (
                SELECT {cell}, tag_set_id,
                       SUM(billed_cost) AS billed_cost, SUM(effective_cost) AS effective_cost
                FROM (
                    SELECT (li.charge_period_start AT TIME ZONE 'UTC')::date AS day, li.account_id,
                           li.billing_period_start, li.charge_category, li.billing_currency,
                           li.team_id, li.model_id, li.deployment_id,
                           CASE WHEN li.team_id IS NULL THEN li.tag_set_id END AS tag_set_id,
                           li.billed_cost, li.effective_cost
                    FROM attribution_costlineitem li
                    WHERE li.account_id = %(account)s
                      AND li.ingest_run_id = ANY(%(runs)s::bigint[])
                      AND li.charge_period_start >= %(first)s AND li.charge_period_start < %(after_last)s
                ) line_items
                {day_filter}
                GROUP BY {cell}, tag_set_id
            ) per_tag_set
            LEFT JOIN attribution_tagset tag_set ON tag_set.id = per_tag_set.tag_set_id
        ) tagged
        GROUP BY {cell} {tag_group}
        """,  # noqa: S608
        params,
    )
    cursor.execute("SET LOCAL enable_sort = on")
    cursor.execute(
        f"""
        CREATE TEMP TABLE alloc_cells ON COMMIT DROP AS
        SELECT day, account_id, billing_period_start, charge_category, billing_currency,
               team_id, model_id, deployment_id, rule_id,
               CASE WHEN team_id IS NOT NULL THEN 'direct'
                    WHEN rule_id IS NOT NULL THEN 'pool'
                    WHEN has_pool THEN 'no_rule'
                    ELSE %(untagged_reason)s END AS kind,
               SUM(billed_cost) AS billed_cost, SUM(effective_cost) AS effective_cost
        FROM (
            SELECT alloc_raw.*, {rule_case} AS rule_id,
                   (team_id IS NULL AND (deployment_id IS NOT NULL OR {any_tag})) AS has_pool
            FROM alloc_raw
        ) matched
        GROUP BY day, account_id, billing_period_start, charge_category, billing_currency,
                 team_id, model_id, deployment_id, rule_id, has_pool
        """,  # noqa: S608
        params,
    )


def _pools_build(cursor, rules: list[AllocationRule], params: dict[str, Any]) -> int:
    """Temp tables for the split: pools, rules, shares, basis, usage and units. Returns #pools."""
    for table in ("alloc_pools", "alloc_rules", "alloc_shares", "alloc_basis", "alloc_usage", "alloc_units"):
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(
        """
        CREATE TEMP TABLE alloc_pools ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY day, billing_period_start, charge_category, billing_currency,
                                          rule_id, model_id, deployment_id) AS pool_id,
               day, account_id, billing_period_start, charge_category, billing_currency,
               rule_id, model_id, deployment_id,
               SUM(billed_cost) AS billed_cost, SUM(effective_cost) AS effective_cost
        FROM alloc_cells WHERE kind = 'pool'
        GROUP BY day, account_id, billing_period_start, charge_category, billing_currency,
                 rule_id, model_id, deployment_id
        """
    )
    pools = cursor.rowcount
    # Temp tables have no statistics until analysed; without them the joins below get
    # nested-loop plans fit for one row.
    cursor.execute("ANALYZE alloc_cells")
    cursor.execute("ANALYZE alloc_pools")
    cursor.execute(
        """CREATE TEMP TABLE alloc_rules (rule_id bigint PRIMARY KEY, name text, method text,
               idle_policy text, match_deployment_id bigint) ON COMMIT DROP"""
    )
    cursor.execute(
        "CREATE TEMP TABLE alloc_shares (rule_id bigint, team_id bigint, model_id bigint, percent numeric) "
        "ON COMMIT DROP"
    )
    if rules:
        cursor.executemany(
            "INSERT INTO alloc_rules VALUES (%s, %s, %s, %s, %s)",
            [(r.pk, r.name, r.method, r.idle_policy, r.match_deployment_id) for r in rules],
        )
        shares = [
            (r.pk, s.team_id, s.model_id, s.percent)
            for r in rules
            if r.method == AllocationMethod.FIXED
            for s in r.shares.all()
        ]
        if shares:
            cursor.executemany("INSERT INTO alloc_shares VALUES (%s, %s, %s, %s)", shares)
    # Which deployments' usage a pool is split by: the pool's own deployment (line items carry
    # it), else the rule's deployment, else every deployment the rule's cost names that day.
    cursor.execute(
        """
        CREATE TEMP TABLE alloc_basis ON COMMIT DROP AS
        SELECT p.pool_id, p.day, COALESCE(p.deployment_id, r.match_deployment_id) AS deployment_id
        FROM alloc_pools p JOIN alloc_rules r USING (rule_id)
        WHERE COALESCE(p.deployment_id, r.match_deployment_id) IS NOT NULL
        UNION
        SELECT p.pool_id, p.day, c.deployment_id
        FROM alloc_pools p JOIN alloc_rules r USING (rule_id)
        JOIN alloc_cells c ON c.kind = 'pool' AND c.day = p.day AND c.account_id = p.account_id
                          AND c.rule_id = p.rule_id AND c.deployment_id IS NOT NULL
        WHERE p.deployment_id IS NULL AND r.match_deployment_id IS NULL
        """
    )
    cursor.execute("ANALYZE alloc_basis")
    cursor.execute("SELECT DISTINCT deployment_id FROM alloc_basis")
    params["basis_deployments"] = [row[0] for row in cursor.fetchall()]
    # Usage of those deployments: the daily rollup where it exists, else the raw buckets, so
    # allocation never waits for the rollup task.
    cursor.execute(
        """
        CREATE TEMP TABLE alloc_usage ON COMMIT DROP AS
        WITH wanted AS (SELECT DISTINCT day, deployment_id FROM alloc_basis),
        rolled_days AS (SELECT DISTINCT day FROM attribution_usagedaily WHERE day = ANY(%(days)s)),
        raw AS (
            SELECT (bucket_start AT TIME ZONE 'UTC')::date AS day, deployment_id, team_id, model_id,
                   SUM(requests)::numeric AS requests,
                   SUM(input_tokens + output_tokens)::numeric AS tokens, SUM(gpu_seconds) AS gpu_seconds
            FROM attribution_usagerecord
            WHERE bucket_start >= %(first)s AND bucket_start < %(after_last)s
              AND deployment_id = ANY(%(basis_deployments)s::bigint[])
            GROUP BY 1, 2, 3, 4
        )
        SELECT u.day, u.deployment_id, u.team_id, u.model_id, SUM(u.requests)::numeric AS requests,
               SUM(u.input_tokens + u.output_tokens)::numeric AS tokens, SUM(u.gpu_seconds) AS gpu_seconds
        FROM attribution_usagedaily u
        WHERE u.day = ANY(%(days)s) AND u.deployment_id = ANY(%(basis_deployments)s::bigint[])
          AND (u.day, u.deployment_id) IN (SELECT day, deployment_id FROM wanted)
        GROUP BY u.day, u.deployment_id, u.team_id, u.model_id
        UNION ALL
        SELECT raw.* FROM raw
        WHERE (raw.day, raw.deployment_id) IN (SELECT day, deployment_id FROM wanted)
          AND raw.day NOT IN (SELECT day FROM rolled_days)
        """,
        params,
    )
    cursor.execute("ANALYZE alloc_usage")
    cursor.execute(
        """
        CREATE TEMP TABLE alloc_units ON COMMIT DROP AS
        WITH basis_usage AS (
            SELECT b.pool_id, r.method, u.team_id, u.model_id, u.deployment_id,
                   u.requests, u.tokens, u.gpu_seconds
            FROM alloc_basis b JOIN alloc_pools p USING (pool_id) JOIN alloc_rules r USING (rule_id)
            JOIN alloc_usage u ON u.day = b.day AND u.deployment_id = b.deployment_id
        ), capacity AS (
            SELECT b.pool_id, SUM(d.gpu_count)::numeric * 86400 AS capacity,
                   COALESCE(SUM(used.gpu_seconds), 0) AS used
            FROM alloc_basis b JOIN attribution_deployment d ON d.id = b.deployment_id
            LEFT JOIN (SELECT day, deployment_id, SUM(gpu_seconds) AS gpu_seconds
                       FROM alloc_usage GROUP BY day, deployment_id) used
                   ON used.day = b.day AND used.deployment_id = b.deployment_id
            GROUP BY b.pool_id
        )
        SELECT pool_id, team_id, model_id, deployment_id,
               SUM(CASE method WHEN 'tokens' THEN tokens WHEN 'requests' THEN requests
                   ELSE gpu_seconds END) AS weight,
               CASE WHEN team_id IS NULL THEN 'untagged' ELSE '' END AS reason,
               NULL::numeric AS capacity
        FROM basis_usage WHERE method IN ('tokens', 'requests', 'gpu_seconds')
        GROUP BY pool_id, team_id, model_id, deployment_id
        HAVING SUM(CASE method WHEN 'tokens' THEN tokens WHEN 'requests' THEN requests
                   ELSE gpu_seconds END) > 0
        UNION ALL
        SELECT pool_id, team_id,
               CASE WHEN COUNT(DISTINCT model_id) = 1 THEN MIN(model_id) END,
               CASE WHEN COUNT(DISTINCT deployment_id) = 1 THEN MIN(deployment_id) END,
               1, CASE WHEN team_id IS NULL THEN 'untagged' ELSE '' END, NULL
        FROM basis_usage WHERE method = 'even' AND (requests > 0 OR tokens > 0 OR gpu_seconds > 0)
        GROUP BY pool_id, team_id
        UNION ALL
        SELECT p.pool_id, s.team_id, COALESCE(s.model_id, p.model_id),
               COALESCE(p.deployment_id, r.match_deployment_id), s.percent, '', NULL
        FROM alloc_pools p JOIN alloc_rules r USING (rule_id) JOIN alloc_shares s USING (rule_id)
        WHERE r.method = 'fixed'
        UNION ALL
        SELECT p.pool_id, NULL, p.model_id, p.deployment_id, c.capacity - c.used, 'idle', c.capacity
        FROM alloc_pools p JOIN alloc_rules r USING (rule_id) JOIN capacity c USING (pool_id)
        WHERE r.method = 'gpu_seconds' AND r.idle_policy = 'own_line' AND c.used > 0 AND c.capacity > c.used
        """
    )
    # A pool nobody used that day is one unallocated line.
    cursor.execute(
        """
        INSERT INTO alloc_units (pool_id, team_id, model_id, deployment_id, weight, reason, capacity)
        SELECT p.pool_id, NULL, p.model_id, COALESCE(p.deployment_id, r.match_deployment_id), 1,
               CASE WHEN r.idle_policy = 'own_line' THEN 'idle' ELSE 'no_usage' END, NULL
        FROM alloc_pools p JOIN alloc_rules r USING (rule_id)
        WHERE NOT EXISTS (SELECT 1 FROM alloc_units u WHERE u.pool_id = p.pool_id)
        """
    )
    return pools


# Amounts are split as integers of 1e-10 (the scale of the money columns). For a pool total T
# (in those units) and weights w_i summing to W, unit i gets floor(T * w_i / W); the units with the
# largest remainders get one more, until the shares add up to T. div/mod on numeric are exact.
_SPLIT_SQL = """
WITH units AS (
    SELECT u.*, p.day, p.account_id, p.billing_period_start, p.charge_category, p.billing_currency,
           p.rule_id, r.method, r.name AS rule_name, r.idle_policy,
           p.billed_cost * 10000000000 AS billed_total, p.effective_cost * 10000000000 AS effective_total,
           SUM(u.weight) OVER (PARTITION BY u.pool_id) AS weight_total,
           row_number() OVER (PARTITION BY u.pool_id ORDER BY u.reason, u.team_id NULLS LAST,
                              u.model_id NULLS LAST, u.deployment_id NULLS LAST) AS unit_order
    FROM alloc_units u JOIN alloc_pools p USING (pool_id) JOIN alloc_rules r USING (rule_id)
), divided AS (
    SELECT units.*,
           div(billed_total * weight, weight_total) AS billed_q,
           mod(billed_total * weight, weight_total) AS billed_m,
           div(effective_total * weight, weight_total) AS effective_q,
           mod(effective_total * weight, weight_total) AS effective_m
    FROM units
), floored AS (
    -- div truncates toward zero; step negative quotients down so every remainder is >= 0.
    SELECT divided.*,
           billed_q - CASE WHEN billed_m < 0 THEN 1 ELSE 0 END AS billed_floor,
           billed_m + CASE WHEN billed_m < 0 THEN weight_total ELSE 0 END AS billed_rem,
           effective_q - CASE WHEN effective_m < 0 THEN 1 ELSE 0 END AS effective_floor,
           effective_m + CASE WHEN effective_m < 0 THEN weight_total ELSE 0 END AS effective_rem
    FROM divided
), ranked AS (
    SELECT floored.*,
           billed_total - SUM(billed_floor) OVER (PARTITION BY pool_id) AS billed_left,
           row_number() OVER (PARTITION BY pool_id ORDER BY billed_rem DESC, unit_order) AS billed_rank,
           effective_total - SUM(effective_floor) OVER (PARTITION BY pool_id) AS effective_left,
           row_number() OVER (PARTITION BY pool_id ORDER BY effective_rem DESC, unit_order) AS effective_rank
    FROM floored
)
SELECT day, account_id, billing_period_start, team_id, model_id, deployment_id, charge_category,
       billing_currency,
       (billed_floor + CASE WHEN billed_rank <= billed_left THEN 1 ELSE 0 END) * 0.0000000001,
       (effective_floor + CASE WHEN effective_rank <= effective_left THEN 1 ELSE 0 END) * 0.0000000001,
       method,
       jsonb_strip_nulls(jsonb_build_object(
           'ratio', trim_scale(round(weight / weight_total, 12))::text,
           'basis', CASE WHEN reason = 'idle' AND capacity IS NOT NULL THEN 'idle_gpu_seconds'
                         WHEN reason IN ('idle', 'no_usage') THEN 'none' ELSE method END,
           'basis_quantity', CASE WHEN reason IN ('idle', 'no_usage') AND capacity IS NULL THEN '0'
                                  ELSE trim_scale(weight)::text END,
           'basis_total', CASE WHEN reason IN ('idle', 'no_usage') AND capacity IS NULL THEN '0'
                               ELSE trim_scale(weight_total)::text END,
           'capacity_gpu_seconds', trim_scale(capacity)::text,
           'rule_id', rule_id, 'rule', rule_name, 'idle_policy', idle_policy)),
       round(weight / weight_total, 12), rule_id, reason
FROM ranked
"""


def _rows_insert(cursor, params: dict[str, Any]) -> int:
    columns = """day, account_id, billing_period_start, team_id, model_id, deployment_id, charge_category,
                 billing_currency, billed_cost, effective_cost, allocated_method_id,
                 allocated_method_details, allocation_ratio, rule_id, unallocated_reason"""
    cursor.execute(
        f"""
        INSERT INTO attribution_allocatedcost (provider, reporting_currency, {columns})
        SELECT acct.provider, '', rows.*
        FROM (
            SELECT day, account_id, billing_period_start, team_id, model_id, deployment_id,
                   charge_category, billing_currency, billed_cost, effective_cost,
                   CASE kind WHEN 'direct' THEN 'direct' ELSE 'unallocated' END,
                   CASE kind WHEN 'direct' THEN '{{"ratio": "1", "basis": "direct"}}'::jsonb
                             ELSE '{{}}'::jsonb END,
                   CASE kind WHEN 'direct' THEN 1 END::numeric, NULL::bigint,
                   CASE kind WHEN 'direct' THEN '' ELSE kind END
            FROM alloc_cells WHERE kind <> 'pool'
            UNION ALL
            ({_SPLIT_SQL})
        ) rows ({columns})
        JOIN attribution_cloudaccount acct ON acct.id = rows.account_id
        """,  # noqa: S608
        params,
    )
    return cursor.rowcount


_BILLED_FROM = {
    # The current line items themselves: the truth, one more scan of them.
    "line_items": """
            SELECT (charge_period_start AT TIME ZONE 'UTC')::date AS day, billing_currency,
                   SUM(billed_cost) AS billed_cost, SUM(effective_cost) AS effective_cost
            FROM attribution_costlineitem
            WHERE account_id = %(account)s AND ingest_run_id = ANY(%(runs)s::bigint[])
              AND charge_period_start >= %(first)s AND charge_period_start < %(after_last)s
            GROUP BY 1, 2""",
    # DailyCost: the billed figures every page shows, rebuilt from the same current line items by
    # the ingest pipeline (independently of allocation) in the swap's transaction. Small.
    "daily_cost": """
            SELECT day, billing_currency, SUM(billed_cost) AS billed_cost,
                   SUM(effective_cost) AS effective_cost
            FROM attribution_dailycost WHERE account_id = %(account)s AND day = ANY(%(days)s)
            GROUP BY 1, 2""",
}
CHECK_SOURCES = tuple(_BILLED_FROM)


def _conservation_violations(
    cursor, *, account_id: int, days: list[dt.date], source: str
) -> list[ConservationViolation]:
    """(day, currency, column) where AllocatedCost does not sum exactly to the billed side."""
    first, after_last = _day_bounds(days)
    cursor.execute(
        f"""
        WITH billed AS ({_BILLED_FROM[source]}
        ), allocated AS (
            SELECT day, billing_currency, SUM(billed_cost) AS billed_cost,
                   SUM(effective_cost) AS effective_cost
            FROM attribution_allocatedcost WHERE account_id = %(account)s AND day = ANY(%(days)s)
            GROUP BY 1, 2
        )
        SELECT day, billing_currency, COALESCE(b.billed_cost, 0), COALESCE(a.billed_cost, 0),
               COALESCE(b.effective_cost, 0), COALESCE(a.effective_cost, 0)
        FROM billed b FULL JOIN allocated a USING (day, billing_currency)
        WHERE day = ANY(%(days)s)
          AND (COALESCE(b.billed_cost, 0) <> COALESCE(a.billed_cost, 0)
               OR COALESCE(b.effective_cost, 0) <> COALESCE(a.effective_cost, 0))
        ORDER BY day, billing_currency
        """,  # noqa: S608
        {
            "account": account_id,
            "days": days,
            "first": first,
            "after_last": after_last,
            "runs": IngestRun.objects.current_ids(
                account_id=account_id, charged_from=first, charged_before=after_last
            ),
        },
    )
    rows = cursor.fetchall()
    violations = []
    for day, currency, billed, allocated, effective, effective_allocated in rows:
        if billed != allocated:
            violations.append(
                ConservationViolation(account_id, day, currency, "BilledCost", billed, allocated)
            )
        if effective != effective_allocated:
            violations.append(
                ConservationViolation(
                    account_id, day, currency, "EffectiveCost", effective, effective_allocated
                )
            )
    return violations


def _violations_signal(violations: list[ConservationViolation]) -> None:
    for violation in violations:
        logger.error(
            "allocation does not reconcile: account %s %s %s %s billed %s allocated %s",
            violation.account_id,
            violation.day,
            violation.currency,
            violation.column,
            violation.billed,
            violation.allocated,
        )
        signals.allocation_conservation_failed.send(
            sender=AllocationResult,
            account_id=violation.account_id,
            day=violation.day,
            currency=violation.currency,
            column=violation.column,
            billed=violation.billed,
            allocated=violation.allocated,
        )


def allocation_conservation_check(
    *, account_id: int, days: list[dt.date], source: str = "line_items"
) -> list[ConservationViolation]:
    """Check stored allocations against the line items; signal (-> governance alert) each violation."""
    days = sorted(set(days))
    if not days:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        violations = _conservation_violations(cursor, account_id=account_id, days=days, source=source)
    _violations_signal(violations)
    return violations


def allocation_accounts_for_days(*, days: list[dt.date]) -> list[int]:
    """Accounts with line items or allocations on any of `days` (for re-runs after late usage)."""
    if not days:
        return []
    first, after_last = _day_bounds(sorted(days))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT account_id FROM attribution_costlineitem
            WHERE charge_period_start >= %(first)s AND charge_period_start < %(after_last)s
              AND ingest_run_id = ANY(%(runs)s)
              AND (charge_period_start AT TIME ZONE 'UTC')::date = ANY(%(days)s)
            UNION
            SELECT DISTINCT account_id FROM attribution_allocatedcost WHERE day = ANY(%(days)s)
            """,
            {
                "days": sorted(days),
                "first": first,
                "after_last": after_last,
                "runs": IngestRun.objects.current_ids(charged_from=first, charged_before=after_last),
            },
        )
        return sorted(row[0] for row in cursor.fetchall())


# The tables an allocation task rewrites: its own rows, their reporting-currency figures, the
# estimates it reconciles and the unit costs rebuilt after it.
ALLOCATION_TABLES = (
    "attribution_allocatedcost",
    "attribution_spendestimate",
    "attribution_unitcost",
)


def allocation_statistics_refresh() -> None:
    """ANALYZE the tables an allocation task has just rewritten.

    The pages read them right after (the overview's allocated basis, unit costs, estimates). A
    freshly rewritten table keeps the planner statistics of whatever was there before (none at all
    after `make demo` on a new database) until autovacuum gets to it, minutes later, or never on a
    server where it is off or lagging; meanwhile the planner guesses a few rows and picks plans
    that cost pages hundreds of milliseconds. ANALYZE reads a fixed-size sample (30k rows at the
    default statistics target), so it costs milliseconds whatever the table size.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(ALLOCATION_TABLES)}")
