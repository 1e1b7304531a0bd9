"""Suggested allocation-rule changes for cost that no mapping rule can own.

Mapping suggestions (attribution/mapping/suggestions.py) give an untagged resource to the team
and model that own its siblings. What is left after them has no single owner by nature; the
largest part of it on the amortized basis is idle capacity of shared GPU pools: a pool rule with
idle_policy `own_line` shows the unused GPU-seconds of a day as an `idle` line nobody carries.
Spreading it over the teams that used the pool that day (idle_policy `spread`) is the usual
showback choice, and the allocation engine already does it.

Per account, for every active gpu_seconds rule that left idle cost there: when its pools report
GPU-seconds, switch it to idle_policy `spread`; when they report tokens but no GPU-seconds (the
gateway does not meter GPUs, so every day looks unused and the whole pool is idle), split it by
tokens instead (the suggestion kinds idle_spread and pool_tokens). The dollars it moves are
measured, not estimated: allocation runs with the change inside
a transaction that is rolled back, and the unallocated sums of the affected accounts and days are
compared (days without any user stay unallocated as `no_usage`, so they are not counted as
moved). Confidence = moved / idle amortized dollars (how much of the idle cost has users to carry
it). Nothing changes until a person accepts: the rules are saved through allocation_rule_save
(audited), the decision is audited, and allocation re-runs for the affected accounts after commit.

Left alone on purpose: untagged platform cost, tax and credits. Allocation rules match a
deployment or a tag, and that cost carries neither; spreading it needs a new rule match (by
account / charge category) in the allocation engine. Credits are kept visible as unallocated too:
spreading a credit only by the teams of one account would hide where it came from.
"""

# SQL here is fixed text; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from attribution.allocation.services import allocation_rule_save, allocation_run
from attribution.audit import audited_change_send, model_snapshot, snapshot_changes
from attribution.models import (
    AllocatedCost,
    AllocationMethod,
    AllocationRule,
    AllocationSuggestion,
    AllocationSuggestionKind,
    CloudAccount,
    IdlePolicy,
    RuleSuggestion,
    SuggestionState,
    Team,
    UnallocatedReason,
    UsageRecord,
)

ZERO = Decimal(0)
CONFIDENCE_QUANTUM = Decimal("0.0001")


class _Rollback(Exception):
    """Raised inside the preview transaction so that nothing it wrote is kept."""


@dataclass
class IdleCandidate:
    kind: str
    account_id: int
    currency: str
    rule_changes: dict[str, dict[str, str]]
    rule_ids: list[int]
    account_ids: list[int]
    idle_billed: Decimal
    idle_effective: Decimal
    idle_days: dict[int, list] = field(default_factory=dict)  # account id -> days with idle rows

    @property
    def fingerprint(self) -> str:
        text = "\x1f".join([self.kind, str(self.account_id), *map(str, self.rule_ids)])
        return hashlib.sha256(text.encode()).hexdigest()


def _idle_rows():
    return AllocatedCost.objects.filter(
        unallocated_reason=UnallocatedReason.IDLE,
        rule__is_active=True,
        rule__method=AllocationMethod.GPU_SECONDS,
        rule__idle_policy=IdlePolicy.OWN_LINE,
    )


def _pool_usage(rule_ids: list[int]) -> dict[int, tuple[bool, bool]]:
    """{rule id: (its pools report GPU-seconds, its pools report tokens)} over the idle rows' deployments."""
    deployments: dict[int, set[int]] = defaultdict(set)
    for rule_id, deployment_id in (
        _idle_rows().filter(rule_id__in=rule_ids).values_list("rule_id", "deployment_id").distinct()
    ):
        if deployment_id is not None:
            deployments[rule_id].add(deployment_id)
    reported = {
        row["deployment_id"]: (row["gpu"] or ZERO, (row["input"] or 0) + (row["output"] or 0))
        for row in UsageRecord.objects.filter(
            deployment_id__in={d for ds in deployments.values() for d in ds}
        )
        .values("deployment_id")
        .annotate(gpu=Sum("gpu_seconds"), input=Sum("input_tokens"), output=Sum("output_tokens"))
    }
    return {
        rule_id: (
            any(reported.get(d, (ZERO, 0))[0] > 0 for d in deployments[rule_id]),
            any(reported.get(d, (ZERO, 0))[1] > 0 for d in deployments[rule_id]),
        )
        for rule_id in rule_ids
    }


def allocation_suggestion_candidates() -> list[IdleCandidate]:
    """Per account, up to two candidates for gpu_seconds pools that left idle cost as its own line:
    pools whose deployments report GPU-seconds -> spread the idle part over their users; pools
    whose deployments report tokens but no GPU-seconds (a gateway that does not meter GPUs: every
    day is "nobody used it") -> split them by tokens. Pools that report neither are left alone."""
    per_account: dict[tuple[int, str], dict[int, tuple[Decimal, Decimal]]] = defaultdict(dict)
    for row in (
        _idle_rows()
        .values("account_id", "billing_currency", "rule_id")
        .annotate(billed=Sum("billed_cost"), effective=Sum("effective_cost"))
        .order_by("account_id", "rule_id")
    ):
        per_account[(row["account_id"], row["billing_currency"])][row["rule_id"]] = (
            row["billed"],
            row["effective"],
        )
    usage = _pool_usage(sorted({rule_id for rules in per_account.values() for rule_id in rules}))
    candidates = []
    for (account_id, currency), rules in per_account.items():
        by_kind: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
        for rule_id in rules:
            has_gpu, has_tokens = usage[rule_id]
            if has_gpu:
                by_kind[AllocationSuggestionKind.IDLE_SPREAD][str(rule_id)] = {
                    "idle_policy": IdlePolicy.SPREAD
                }
            elif has_tokens:
                by_kind[AllocationSuggestionKind.POOL_TOKENS][str(rule_id)] = {
                    "method": AllocationMethod.TOKENS
                }
        for kind, changes in by_kind.items():
            rule_ids = sorted(int(rule_id) for rule_id in changes)
            # A rule without an account may pool cost in several accounts: its change moves them all.
            days: dict[int, list] = defaultdict(list)
            for account, day in (
                _idle_rows()
                .filter(rule_id__in=rule_ids)
                .values_list("account_id", "day")
                .distinct()
                .order_by("day")
            ):
                days[account].append(day)
            candidates.append(
                IdleCandidate(
                    kind=kind,
                    account_id=account_id,
                    currency=currency,
                    rule_changes=changes,
                    rule_ids=rule_ids,
                    account_ids=sorted(days),
                    idle_billed=sum((rules[rule_id][0] for rule_id in rule_ids), ZERO),
                    idle_effective=sum((rules[rule_id][1] for rule_id in rule_ids), ZERO),
                    idle_days=dict(days),
                )
            )
    return candidates


def _unallocated(*, idle_days: dict[int, list]) -> tuple[Decimal, Decimal]:
    condition = Q()
    for account_id, days in idle_days.items():
        condition |= Q(account_id=account_id, day__in=days)
    sums = (
        AllocatedCost.objects.filter(condition)
        .exclude(unallocated_reason="")
        .aggregate(billed=Sum("billed_cost"), effective=Sum("effective_cost"))
    )
    return sums["billed"] or ZERO, sums["effective"] or ZERO


def rule_changes_preview(
    *, rule_changes: dict[str, dict[str, str]], idle_days: dict[int, list]
) -> tuple[Decimal, Decimal]:
    """(billed, amortized) dollars that these rule changes move out of unallocated, measured by
    running the allocation with the changes and rolling it back."""
    before = _unallocated(idle_days=idle_days)
    after: tuple[Decimal, Decimal] = before
    try:
        with transaction.atomic():
            for rule_id, change in rule_changes.items():
                AllocationRule.objects.filter(pk=int(rule_id)).update(**change)
            for account_id, days in idle_days.items():
                allocation_run(account_id=account_id, days=days, check=None)
            after = _unallocated(idle_days=idle_days)
            raise _Rollback
    except _Rollback:
        pass
    return before[0] - after[0], before[1] - after[1]


def _evidence(candidate: IdleCandidate) -> dict[str, Any]:
    teams = dict(Team.objects.values_list("id", "slug"))
    rules = AllocationRule.objects.in_bulk(candidate.rule_ids)
    idle = {
        row["rule_id"]: row
        for row in _idle_rows()
        .filter(rule_id__in=candidate.rule_ids, account_id=candidate.account_id)
        .values("rule_id")
        .annotate(effective=Sum("effective_cost"), billed=Sum("billed_cost"))
    }
    users: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in (
        AllocatedCost.objects.filter(rule_id__in=candidate.rule_ids, team__isnull=False)
        .values("rule_id", "team_id")
        .annotate(effective=Sum("effective_cost"))
    ):
        users[row["rule_id"]][teams.get(row["team_id"], "")] += row["effective"] or ZERO
    entries = []
    for rule_id in candidate.rule_ids:
        rule = rules.get(rule_id)
        entries.append(
            {
                "rule": rule.name if rule else str(rule_id),
                "rule_id": rule_id,
                "idle_effective_cost": str(idle.get(rule_id, {}).get("effective") or ZERO),
                "idle_billed_cost": str(idle.get(rule_id, {}).get("billed") or ZERO),
                "users": [
                    {"team": team, "effective_cost": str(cost)}
                    for team, cost in sorted(users[rule_id].items(), key=lambda item: -item[1])
                ],
            }
        )
    entries.sort(key=lambda entry: -Decimal(entry["idle_effective_cost"]))
    return {
        "idle_effective_cost": str(candidate.idle_effective),
        "idle_billed_cost": str(candidate.idle_billed),
        "days": sum(len(days) for days in candidate.idle_days.values()),
        "rules": entries,
    }


def allocation_suggestions_refresh() -> dict[str, int]:
    """Recompute the allocation suggestions; decisions already made are kept."""
    accounts = dict(CloudAccount.objects.values_list("id", "slug"))
    summary = {"created": 0, "updated": 0, "removed": 0, "kept_decided": 0}
    candidates = allocation_suggestion_candidates()
    with transaction.atomic():
        existing = {row.fingerprint: row for row in AllocationSuggestion.objects.select_for_update()}
        seen = set()
        for candidate in candidates:
            seen.add(candidate.fingerprint)
            row = existing.get(candidate.fingerprint)
            if row is not None and row.state != SuggestionState.OPEN:
                summary["kept_decided"] += 1
                continue
            moved_billed, moved_effective = rule_changes_preview(
                rule_changes=candidate.rule_changes, idle_days=candidate.idle_days
            )
            confidence = (
                min(Decimal(1), max(ZERO, moved_effective / candidate.idle_effective))
                if candidate.idle_effective > 0
                else ZERO
            )
            where = accounts.get(candidate.account_id, candidate.account_id)
            values = {
                "kind": candidate.kind,
                "name": (
                    f"Suggested: spread idle GPU capacity of {len(candidate.rule_ids)} pool(s) in "
                    f"{where} over the teams using them"
                    if candidate.kind == AllocationSuggestionKind.IDLE_SPREAD
                    else f"Suggested: split {len(candidate.rule_ids)} pool(s) in {where} that report no "
                    "GPU-seconds by tokens over the teams using them"
                )[:200],
                "rule_changes": candidate.rule_changes,
                "account_id": candidate.account_id,
                "rule_ids": candidate.rule_ids,
                "account_ids": candidate.account_ids,
                "confidence": confidence.quantize(CONFIDENCE_QUANTUM),
                "currency": candidate.currency,
                "moved_effective_cost": moved_effective,
                "moved_billed_cost": moved_billed,
                "evidence": _evidence(candidate),
            }
            if row is None:
                AllocationSuggestion.objects.create(fingerprint=candidate.fingerprint, **values)
                summary["created"] += 1
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.save()
                summary["updated"] += 1
        stale = [pk.pk for fp, pk in existing.items() if fp not in seen and pk.state == SuggestionState.OPEN]
        summary["removed"] = AllocationSuggestion.objects.filter(pk__in=stale).delete()[0]
    return summary


def _claim(suggestion_id: int) -> AllocationSuggestion:
    suggestion = AllocationSuggestion.objects.select_for_update().get(pk=suggestion_id)
    if suggestion.state != SuggestionState.OPEN:
        raise ValidationError({"state": f"This suggestion was already {suggestion.state}; refresh the list."})
    return suggestion


def _decide(
    suggestion: AllocationSuggestion, *, state: str, actor_id: int | None, actor: Any, remote_addr: str | None
) -> None:
    before = model_snapshot(suggestion)
    suggestion.state = state
    suggestion.decided_by_id = actor_id
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["state", "decided_by", "decided_at", "updated_at"])
    audited_change_send(
        actor=actor,
        action="update",
        obj=suggestion,
        changes=snapshot_changes(before, model_snapshot(suggestion)),
        remote_addr=remote_addr,
    )


def allocation_suggestion_accept(
    *, suggestion_id: int, actor_id: int | None, actor: Any = None, remote_addr: str | None = None
) -> tuple[AllocationSuggestion, list[AllocationRule]]:
    """Apply the suggested rule changes (each saved and audited by allocation_rule_save), audit the
    decision, and re-run allocation of the affected accounts once the transaction has committed."""
    from attribution.allocation.tasks import allocation_run_task

    with transaction.atomic():
        suggestion = _claim(suggestion_id)
        rules = list(AllocationRule.objects.select_for_update().filter(pk__in=suggestion.rule_ids))
        for rule in rules:
            for name, value in suggestion.rule_changes.get(str(rule.pk), {}).items():
                setattr(rule, name, value)
            allocation_rule_save(rule=rule, actor=actor, remote_addr=remote_addr)
        _decide(
            suggestion,
            state=SuggestionState.ACCEPTED,
            actor_id=actor_id,
            actor=actor,
            remote_addr=remote_addr,
        )
        for account_id in suggestion.account_ids:
            transaction.on_commit(lambda account_id=account_id: allocation_run_task.delay(account_id))
    return suggestion, rules


def allocation_suggestion_dismiss(
    *, suggestion_id: int, actor_id: int | None, actor: Any = None, remote_addr: str | None = None
) -> AllocationSuggestion:
    with transaction.atomic():
        suggestion = _claim(suggestion_id)
        _decide(
            suggestion,
            state=SuggestionState.DISMISSED,
            actor_id=actor_id,
            actor=actor,
            remote_addr=remote_addr,
        )
    return suggestion


# --- Reads ------------------------------------------------------------------------------------------


@dataclass
class RankedSuggestion:
    kind: str  # "mapping" (a RuleSuggestion) or "allocation" (an AllocationSuggestion)
    id: int
    name: str
    dollars: Decimal
    currency: str
    confidence: Decimal


def suggestions_ranked() -> list[RankedSuggestion]:
    """Open mapping and allocation suggestions, largest first by the dollars they move out of
    unallocated: a mapping rule's untagged billed cost (billed and amortized are equal for the
    usage it covers), an allocation change's amortized dollars as measured by its preview."""
    ranked = [
        RankedSuggestion("mapping", row.pk, row.name, row.untagged_cost, row.currency, row.confidence)
        for row in RuleSuggestion.objects.filter(state=SuggestionState.OPEN)
    ] + [
        RankedSuggestion(
            "allocation", row.pk, row.name, row.moved_effective_cost, row.currency, row.confidence
        )
        for row in AllocationSuggestion.objects.filter(state=SuggestionState.OPEN)
    ]
    ranked.sort(key=lambda item: (-item.dollars, item.kind, item.id))
    return ranked
