"""Suggested mapping rules (see attribution/mapping/suggestions.py): proposed, never applied by
themselves; a person accepts (creating the rule through the audited API), edits or dismisses."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from attribution.models.allocation import RuleMatchField, RuleOperator
from attribution.models.core import CloudAccount, Deployment, ServedModel, Team

MONEY = {"max_digits": 24, "decimal_places": 10}


class SuggestionState(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class SuggestionKind(models.TextChoices):
    NAME_PATTERN = "name_pattern", "Resource name pattern"
    SUB_ACCOUNT = "sub_account", "Account / project / subscription"
    SERVICE = "service", "Service in an account"


class RuleSuggestion(models.Model):
    """One proposed DimensionRule, with the untagged dollars it covers and the evidence for it.

    `fingerprint` names what the rule matches (kind, account, field, tag key, operator, value):
    a refresh updates the open suggestion of the same fingerprint and never revives a dismissed
    or accepted one.
    """

    fingerprint = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=SuggestionKind.choices)
    state = models.CharField(max_length=10, choices=SuggestionState.choices, default=SuggestionState.OPEN)
    name = models.CharField(max_length=200)
    account = models.ForeignKey(
        CloudAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    match_field = models.CharField(max_length=32, choices=RuleMatchField.choices)
    tag_key = models.CharField(max_length=200, blank=True)
    operator = models.CharField(max_length=16, choices=RuleOperator.choices)
    value = models.CharField(max_length=500)
    set_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    set_model = models.ForeignKey(
        ServedModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    set_deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    confidence = models.DecimalField(max_digits=5, decimal_places=4, help_text="0-1")
    currency = models.CharField(max_length=3)
    untagged_cost = models.DecimalField(**MONEY, help_text="Untagged billed cost the pattern covers")
    untagged_resources = models.PositiveIntegerField(default=0)
    # {"resources": [{"name", "team", "model", "billed_cost"}...], "purity": "0.98", "samples": [...]}
    evidence = models.JSONField(default=dict, blank=True)
    # What dimension_rule_preview says saving the rule would move (line items, billed cost, moves).
    preview = models.JSONField(default=dict, blank=True)
    rule = models.ForeignKey(
        "attribution.DimensionRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-untagged_cost", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="rulesuggestion_confidence_range"
            ),
            models.CheckConstraint(
                condition=Q(set_team__isnull=False)
                | Q(set_model__isnull=False)
                | Q(set_deployment__isnull=False),
                name="rulesuggestion_sets_something",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AllocationSuggestionKind(models.TextChoices):
    IDLE_SPREAD = "idle_spread", "Spread idle pool capacity over the pool's users"
    POOL_TOKENS = "pool_tokens", "Split pools that report no GPU-seconds by tokens"


class AllocationSuggestion(models.Model):
    """One proposed change to allocation rules (see attribution/allocation/suggestions.py) for cost
    that has no single owner, with the amortized dollars it would move out of unallocated, measured
    by running the allocation with the change in a transaction that is rolled back.

    `fingerprint` names the kind, account and rules: a refresh updates the open suggestion of the
    same fingerprint and never revives a dismissed or accepted one.
    """

    fingerprint = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=AllocationSuggestionKind.choices)
    state = models.CharField(max_length=10, choices=SuggestionState.choices, default=SuggestionState.OPEN)
    name = models.CharField(max_length=200)
    account = models.ForeignKey(
        CloudAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The AllocationRule ids the suggestion changes, and the accounts whose allocation it re-runs.
    rule_ids = models.JSONField(default=list)
    account_ids = models.JSONField(default=list)
    # What accepting sets on each of those rules: {"<rule id>": {"method": ..., "idle_policy": ...}}.
    rule_changes = models.JSONField(default=dict)
    confidence = models.DecimalField(max_digits=5, decimal_places=4, help_text="0-1")
    currency = models.CharField(max_length=3)
    moved_effective_cost = models.DecimalField(
        **MONEY, help_text="Amortized (EffectiveCost) dollars the change moves out of unallocated"
    )
    moved_billed_cost = models.DecimalField(
        **MONEY, help_text="Billed dollars the change moves out of unallocated"
    )
    # {"rules": [{"rule", "deployment", "idle_effective_cost", "idle_days", "users": [...]}...]}
    evidence = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-moved_effective_cost", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1),
                name="allocationsuggestion_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name
