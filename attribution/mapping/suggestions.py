"""Suggested mapping rules, learned from the untagged line items and the tagged ones around them.

Untagged spend is rarely anonymous: a canary endpoint is named like the team's production one, a
node pool like its siblings, a project belongs to one team. For the cost that mapping leaves with
no team and no deployment ("untagged"), three kinds of suggestion are tried, most specific first:

1. **Name pattern** — the workload's name: the last part of its resource id (ARN resource part,
   GCP/Azure resource path, SageMaker/Vertex endpoint, node pool, VM scale set) or a name tag
   (`name`, EKS node group, GKE node pool, AKS pool). Names are cut into stems at `-`, `_` and `.`
   ("llama-3-1-70b-search-canary" -> "llama-3-1-70b", "llama-3-1-70b-search", ...). A stem is
   usable when tagged resources in the same account share it and (nearly) all of their dollars
   belong to one team and model (purity >= PURITY_MIN); each untagged resource takes the shortest
   usable stem of at least two parts, so one rule covers the whole family.
2. **Sub-account** — what is left, by member account / project / subscription, when the tagged
   cost there belongs to one team.
3. **Service** — what is left, by service in an account, when the tagged cost of that service
   belongs to one team.

Confidence = purity × (1 − 2^−(n+1)) × a factor per kind (narrower kinds first), with n the
tagged resources that agree. The dollars a suggestion would move come from the rule preview
(dimension_rule_preview), the same one the rules page shows. Suggestions are never applied by
themselves: a person accepts one (the rule is created through the audited rules API and history
re-applied), edits it first, or dismisses it. A refresh keeps decisions: it updates open
suggestions, drops open ones no longer supported, and never revives a dismissed or accepted one.
"""

# SQL here is fixed text; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from attribution.mapping.services import dimension_rule_clean, dimension_rule_create, dimension_rule_preview
from attribution.models import (
    CloudAccount,
    DimensionRule,
    IngestRun,
    RuleMatchField,
    RuleOperator,
    RuleSuggestion,
    ServedModel,
    SuggestionKind,
    SuggestionState,
    Team,
)

PURITY_MIN = Decimal("0.95")
KIND_FACTOR = {
    SuggestionKind.NAME_PATTERN: Decimal("1"),
    SuggestionKind.SUB_ACCOUNT: Decimal("0.9"),
    SuggestionKind.SERVICE: Decimal("0.8"),
}
# Suggested rules come after hand-written ones (priority 100): a person's rule wins a tie.
SUGGESTED_RULE_PRIORITY = 150
# Normalised tag keys that name a workload (not an owner): EC2 Name, EKS/GKE/AKS node pools.
NAME_TAG_KEYS = (
    "name",
    "eks:nodegroup-name",
    "aws:eks:nodegroup-name",
    "goog-k8s-node-pool-name",
    "aks-managed-poolname",
    "sagemaker:endpoint-name",
)
_SEPARATORS = re.compile(r"([-_.])")
# Opaque ids say nothing about the workload: instance ids, numbers, GUIDs, long hex.
_OPAQUE = re.compile(r"^(i-[0-9a-f]+|\d+|[0-9a-f]{8}-[0-9a-f-]{27,}|[0-9a-f]{16,})$", re.IGNORECASE)
_REGEX_META = re.compile(r"([.^$*+?()\[\]{}|\\])")
ZERO = Decimal(0)
CONFIDENCE_QUANTUM = Decimal("0.0001")

_RESOURCES_SQL = """
SELECT li.account_id, li.sub_account_id, li.service_name, li.resource_id, tag_set.normalized_tags,
       li.team_id, li.model_id, li.deployment_id, li.billing_currency, sum(li.billed_cost), count(*)
  FROM attribution_costlineitem li
  JOIN attribution_tagset tag_set ON tag_set.id = li.tag_set_id
 WHERE li.ingest_run_id = ANY(%(runs)s)
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""


@dataclass
class Resource:
    """The line items of one resource (or of no resource) with one mapping, summed."""

    account_id: int
    sub_account_id: str
    service_name: str
    resource_id: str
    tags: dict
    team_id: int | None
    model_id: int | None
    deployment_id: int | None
    currency: str
    billed_cost: Decimal
    line_items: int
    # (source, name): source "resource" (last part of the resource id) or "tag:<key>".
    names: list[tuple[str, str]] = field(default_factory=list)

    @property
    def untagged(self) -> bool:
        return self.team_id is None and self.deployment_id is None

    @property
    def label(self) -> str:
        return self.resource_id or f"{self.service_name} (no resource id)"


@dataclass
class Candidate:
    kind: str
    account_id: int
    currency: str
    match_field: str
    tag_key: str
    operator: str
    value: str
    description: str
    team_id: int | None
    model_id: int | None
    purity: Decimal
    evidence: list[Resource]
    covered: list[Resource] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        text = "\x1f".join(
            [self.kind, str(self.account_id), self.match_field, self.tag_key, self.operator, self.value]
        )
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def confidence(self) -> Decimal:
        agreeing = len({resource.label for resource in self.evidence if resource.team_id == self.team_id})
        strength = 1 - Decimal(2) ** -(agreeing + 1)
        return min(Decimal(1), self.purity * strength * KIND_FACTOR[self.kind]).quantize(CONFIDENCE_QUANTUM)


def _last_part(resource_id: str) -> str:
    part = re.split(r"[/:]", resource_id.rstrip("/"))[-1] if resource_id else ""
    return "" if not part or _OPAQUE.match(part) else part


def _names(resource: Resource) -> list[tuple[str, str]]:
    names = []
    for key in NAME_TAG_KEYS:
        value = str(resource.tags.get(key) or "").strip()
        if value and not _OPAQUE.match(value):
            names.append((f"tag:{key}", value))
    part = _last_part(resource.resource_id)
    if part:
        names.append(("resource", part))
    return names


def _stems(name: str) -> list[str]:
    """Prefixes of `name` cut at separators, shortest first, of at least two parts (or the name)."""
    pieces = _SEPARATORS.split(name)
    words = pieces[0::2]
    stems = []
    for count in range(1, len(words) + 1):
        stem = "".join(pieces[: 2 * count - 1])
        if count >= 2 or len(words) == 1:
            stems.append(stem)
    return stems


def _has_stem(name: str, stem: str) -> bool:
    lowered, stem = name.lower(), stem.lower()
    return lowered == stem or (lowered.startswith(stem) and lowered[len(stem)] in "-_.")


def _stem_regex(stem: str, *, whole_value: bool) -> str:
    """A regex matching names with this stem: in a resource id, as its last part."""
    escaped = _REGEX_META.sub(r"\\\1", stem)
    return f"^{escaped}([-_.].*)?$" if whole_value else f"[/:]{escaped}([-_.][^/:]*)?$"


def _owner(evidence: list[Resource]) -> tuple[int | None, int | None, Decimal] | None:
    """The (team, model) holding the most of the evidence's dollars, and its share (purity).

    Model is kept only when it is as pure as the team; None when the evidence is not pure."""
    total = sum((abs(resource.billed_cost) for resource in evidence), ZERO)
    if total <= 0:
        return None
    by_team: dict[int | None, Decimal] = defaultdict(Decimal)
    by_pair: dict[tuple[int | None, int | None], Decimal] = defaultdict(Decimal)
    for resource in evidence:
        by_team[resource.team_id] += abs(resource.billed_cost)
        by_pair[(resource.team_id, resource.model_id)] += abs(resource.billed_cost)
    team_id, team_cost = max(by_team.items(), key=lambda item: item[1])
    purity = team_cost / total
    if team_id is None or purity < PURITY_MIN:
        return None
    (pair_team, model_id), pair_cost = max(by_pair.items(), key=lambda item: item[1])
    if pair_team != team_id or pair_cost / total < PURITY_MIN:
        model_id = None
    return team_id, model_id, purity


def _load_resources() -> list[Resource]:
    runs = IngestRun.objects.current_ids()
    if not runs:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_RESOURCES_SQL, {"runs": runs})
        rows = cursor.fetchall()
    resources = []
    for (
        account_id,
        sub_account,
        service,
        resource_id,
        tags,
        team,
        model,
        deployment,
        currency,
        cost,
        count,
    ) in rows:
        resource = Resource(
            account_id=account_id,
            sub_account_id=sub_account or "",
            service_name=service or "",
            resource_id=resource_id or "",
            # Django's connection hands jsonb over as text.
            tags=json.loads(tags) if isinstance(tags, str) else tags or {},
            team_id=team,
            model_id=model,
            deployment_id=deployment,
            currency=currency,
            billed_cost=cost or ZERO,
            line_items=count,
        )
        resource.names = _names(resource)
        resources.append(resource)
    return resources


def _name_candidates(untagged: list[Resource], tagged: list[Resource]) -> list[Candidate]:
    by_key: dict[tuple, Candidate] = {}
    for resource in untagged:
        for source, name in resource.names:
            chosen = None
            for stem in _stems(name):
                evidence = [
                    other
                    for other in tagged
                    if other.account_id == resource.account_id
                    and any(src == source and _has_stem(other_name, stem) for src, other_name in other.names)
                ]
                owner = _owner(evidence) if evidence else None
                if owner is not None:
                    chosen = (stem, evidence, owner)
                    break
            if chosen is None:
                continue
            stem, evidence, (team_id, model_id, purity) = chosen
            is_tag = source.startswith("tag:")
            subject = "tag " + source.removeprefix("tag:") if is_tag else "resources"
            key = (resource.account_id, resource.currency, source, stem.lower())
            if key not in by_key:
                by_key[key] = Candidate(
                    kind=SuggestionKind.NAME_PATTERN,
                    account_id=resource.account_id,
                    currency=resource.currency,
                    match_field=RuleMatchField.TAG if is_tag else RuleMatchField.RESOURCE_ID,
                    tag_key=source.removeprefix("tag:") if is_tag else "",
                    operator=RuleOperator.REGEX,
                    value=_stem_regex(stem, whole_value=is_tag),
                    description=f"{subject} named {stem}*",
                    team_id=team_id,
                    model_id=model_id,
                    purity=purity,
                    evidence=evidence,
                )
            if resource not in by_key[key].covered:
                by_key[key].covered.append(resource)
            break  # one name pattern per resource: the first source that has evidence
    return list(by_key.values())


def _group_candidates(
    untagged: list[Resource], tagged: list[Resource], *, kind: str, attribute: str
) -> list[Candidate]:
    groups: dict[tuple, list[Resource]] = defaultdict(list)
    for resource in untagged:
        value = getattr(resource, attribute)
        if value:
            groups[(resource.account_id, resource.currency, value)].append(resource)
    candidates = []
    for (account_id, currency, value), covered in groups.items():
        evidence = [r for r in tagged if r.account_id == account_id and getattr(r, attribute) == value]
        owner = _owner(evidence) if evidence else None
        if owner is None:
            continue
        team_id, model_id, purity = owner
        field_name = (
            RuleMatchField.SUB_ACCOUNT if kind == SuggestionKind.SUB_ACCOUNT else RuleMatchField.SERVICE
        )
        candidates.append(
            Candidate(
                kind=kind,
                account_id=account_id,
                currency=currency,
                match_field=field_name,
                tag_key="",
                operator=RuleOperator.EQUALS,
                value=value,
                description=f"{'sub-account' if kind == SuggestionKind.SUB_ACCOUNT else 'service'} {value}",
                team_id=team_id,
                model_id=model_id,
                purity=purity,
                evidence=evidence,
                covered=covered,
            )
        )
    return candidates


def suggestion_candidates(resources: list[Resource] | None = None) -> list[Candidate]:
    """Every suggestion the current line items support, each untagged resource in at most one."""
    resources = _load_resources() if resources is None else resources
    untagged = [resource for resource in resources if resource.untagged and resource.billed_cost]
    # A credit or refund with no owner is shared by nature (it follows the spend it refunds): a
    # mapping rule for it would hand one team every credit. Only spend is suggested for.
    untagged = [resource for resource in untagged if resource.billed_cost > 0]
    tagged = [resource for resource in resources if resource.team_id is not None]
    candidates = _name_candidates(untagged, tagged)
    taken = {id(resource) for candidate in candidates for resource in candidate.covered}
    rest = [resource for resource in untagged if id(resource) not in taken]
    sub_accounts = _group_candidates(
        rest, tagged, kind=SuggestionKind.SUB_ACCOUNT, attribute="sub_account_id"
    )
    candidates += sub_accounts
    taken |= {id(resource) for candidate in sub_accounts for resource in candidate.covered}
    rest = [resource for resource in rest if id(resource) not in taken]
    candidates += _group_candidates(rest, tagged, kind=SuggestionKind.SERVICE, attribute="service_name")
    return candidates


# --- Writes -----------------------------------------------------------------------------------------


def _evidence_payload(candidate: Candidate, names: dict[str, dict[int, str]]) -> dict[str, Any]:
    resources: dict[str, dict[str, Any]] = {}
    for resource in candidate.evidence:
        entry = resources.setdefault(
            resource.label,
            {
                "resource": resource.label,
                "team": names["team"].get(resource.team_id),
                "model": names["model"].get(resource.model_id),
                "billed_cost": ZERO,
            },
        )
        entry["billed_cost"] += resource.billed_cost
    ordered = sorted(resources.values(), key=lambda entry: -abs(entry["billed_cost"]))
    covered = sorted({resource.label for resource in candidate.covered})
    return {
        "purity": str(candidate.purity.quantize(CONFIDENCE_QUANTUM)),
        "tagged_resources": len(ordered),
        "resources": [{**entry, "billed_cost": str(entry["billed_cost"])} for entry in ordered[:10]],
        "untagged_samples": covered[:10],
    }


def _rule_name(candidate: Candidate, names: dict[str, dict[int, str]], account_slug: str) -> str:
    target = " / ".join(
        value
        for value in (names["team"].get(candidate.team_id), names["model"].get(candidate.model_id))
        if value
    )
    return f"Suggested: {candidate.description} in {account_slug} → {target}"[:200]


def rule_data_of(suggestion: RuleSuggestion) -> dict[str, Any]:
    return {
        "name": suggestion.name,
        "priority": SUGGESTED_RULE_PRIORITY,
        "account_id": suggestion.account_id,
        "match_field": suggestion.match_field,
        "tag_key": suggestion.tag_key,
        "operator": suggestion.operator,
        "value": suggestion.value,
        "set_team_id": suggestion.set_team_id,
        "set_model_id": suggestion.set_model_id,
        "set_deployment_id": suggestion.set_deployment_id,
        "is_active": True,
    }


@dataclass
class RefreshSummary:
    created: int = 0
    updated: int = 0
    removed: int = 0
    kept_decided: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def rule_suggestions_refresh(*, with_preview: bool = True) -> RefreshSummary:
    """Recompute the suggestions from the current line items; decisions already made are kept."""
    candidates = suggestion_candidates()
    names = {
        "team": dict(Team.objects.values_list("id", "slug")),
        "model": dict(ServedModel.objects.values_list("id", "slug")),
    }
    accounts = dict(CloudAccount.objects.values_list("id", "slug"))
    summary = RefreshSummary()
    with transaction.atomic():
        existing = {row.fingerprint: row for row in RuleSuggestion.objects.select_for_update()}
        seen = set()
        for candidate in candidates:
            fingerprint = candidate.fingerprint
            seen.add(fingerprint)
            row = existing.get(fingerprint)
            if row is not None and row.state != SuggestionState.OPEN:
                summary.kept_decided += 1
                continue
            values = {
                "kind": candidate.kind,
                "name": _rule_name(candidate, names, accounts.get(candidate.account_id, "")),
                "account_id": candidate.account_id,
                "match_field": candidate.match_field,
                "tag_key": candidate.tag_key,
                "operator": candidate.operator,
                "value": candidate.value,
                "set_team_id": candidate.team_id,
                "set_model_id": candidate.model_id,
                "confidence": candidate.confidence,
                "currency": candidate.currency,
                "untagged_cost": sum((resource.billed_cost for resource in candidate.covered), ZERO),
                "untagged_resources": len({resource.label for resource in candidate.covered}),
                "evidence": _evidence_payload(candidate, names),
            }
            if row is None:
                row = RuleSuggestion.objects.create(fingerprint=fingerprint, **values)
                summary.created += 1
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.save()
                summary.updated += 1
            if with_preview:
                row.preview = dimension_rule_preview(rule_data=rule_data_of(row), limit=10)
                row.save(update_fields=["preview"])
        stale = [
            row.pk for fp, row in existing.items() if fp not in seen and row.state == SuggestionState.OPEN
        ]
        summary.removed = RuleSuggestion.objects.filter(pk__in=stale).delete()[0]
    return summary


def _claim(suggestion_id: int) -> RuleSuggestion:
    suggestion = RuleSuggestion.objects.select_for_update().get(pk=suggestion_id)
    if suggestion.state != SuggestionState.OPEN:
        raise ValidationError({"state": f"This suggestion was already {suggestion.state}; refresh the list."})
    return suggestion


EDITABLE_FIELDS = ("name", "match_field", "tag_key", "operator", "value", "set_team_id", "set_model_id")


def rule_suggestion_update(*, suggestion_id: int, data: dict[str, Any]) -> tuple[RuleSuggestion, dict]:
    """Edit an open suggestion before accepting it; validated as a rule, preview recomputed.

    Returns the suggestion and {field: [old, new]}. Must run inside a transaction."""
    suggestion = _claim(suggestion_id)
    merged = {**rule_data_of(suggestion), **{key: data[key] for key in EDITABLE_FIELDS if key in data}}
    clean = dimension_rule_clean(rule_data=merged)
    changes = {}
    for name in EDITABLE_FIELDS:
        if name in clean and getattr(suggestion, name) != clean[name]:
            changes[name] = [getattr(suggestion, name), clean[name]]
            setattr(suggestion, name, clean[name])
    if changes:
        suggestion.preview = dimension_rule_preview(rule_data=rule_data_of(suggestion), limit=10)
        suggestion.save()
    return suggestion, changes


def rule_suggestion_accept(
    *, suggestion_id: int, actor_id: int | None, actor: Any = None, remote_addr: str | None = None
) -> tuple[RuleSuggestion, DimensionRule]:
    """Create the suggested rule (validated like any rule, audited by dimension_rule_create). The
    caller audits the decision and re-applies in the same transaction (governance/api/suggestions.py)."""
    suggestion = _claim(suggestion_id)
    rule = dimension_rule_create(rule_data=rule_data_of(suggestion), actor=actor, remote_addr=remote_addr)
    suggestion.state = SuggestionState.ACCEPTED
    suggestion.rule = rule
    suggestion.decided_by_id = actor_id
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["state", "rule", "decided_by", "decided_at", "updated_at"])
    return suggestion, rule


def rule_suggestion_dismiss(*, suggestion_id: int, actor_id: int | None) -> RuleSuggestion:
    suggestion = _claim(suggestion_id)
    suggestion.state = SuggestionState.DISMISSED
    suggestion.decided_by_id = actor_id
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["state", "decided_by", "decided_at", "updated_at"])
    return suggestion
