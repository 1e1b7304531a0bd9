"""Dimension mapping rules, shared-cost allocation and its results, unit costs, estimates and
exchange rates."""

from __future__ import annotations

import re
import warnings

from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Q

from attribution.models.core import CloudAccount, Deployment, ScopedQuerySet, ServedModel, Team

MONEY = {"max_digits": 24, "decimal_places": 10}
RATIO = {"max_digits": 20, "decimal_places": 12}


class RuleMatchField(models.TextChoices):
    TAG = "tag", "Tag / label (normalised key)"
    RESOURCE_ID = "resource_id", "Resource id"
    SUB_ACCOUNT = "sub_account_id", "Sub-account / project / subscription"
    BILLING_ACCOUNT = "billing_account_id", "Billing account"
    SERVICE = "service_name", "Service"
    REGION = "region_id", "Region"


class RuleOperator(models.TextChoices):
    EQUALS = "equals", "equals"
    PREFIX = "prefix", "starts with"
    CONTAINS = "contains", "contains"
    REGEX = "regex", "matches regex"
    EXISTS = "exists", "exists (tags only)"


def regex_pattern_error(pattern: str) -> str:
    """Why `pattern` cannot be a rule's regex ("" when it can), in both dialects it must satisfy.

    Rules are evaluated by Postgres (`~*`, its ARE dialect) and shown, previewed and tested in
    Python, so a pattern must compile in both. Postgres is asked itself, in a savepoint, because
    only it knows its dialect; a failed check leaves the caller's transaction usable.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # e.g. "[[:alpha:]]": valid, only warned
            re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        return f"Not a valid regular expression for Python's re: {error}."
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT '' ~* %s", [pattern])
    except DatabaseError as error:
        return f"Not a valid regular expression for Postgres: {str(error).splitlines()[0]}."
    return ""


class DimensionRule(models.Model):
    """Resolves line items to team / model / deployment. Lower priority numbers win."""

    name = models.CharField(max_length=200)
    priority = models.PositiveIntegerField(default=100)
    account = models.ForeignKey(
        CloudAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    match_field = models.CharField(max_length=32, choices=RuleMatchField.choices)
    tag_key = models.CharField(max_length=200, blank=True, help_text="Normalised tag key when matching a tag")
    operator = models.CharField(max_length=16, choices=RuleOperator.choices, default=RuleOperator.EQUALS)
    value = models.CharField(max_length=500, blank=True)
    set_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    set_model = models.ForeignKey(
        ServedModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    set_deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    # Why the last ingest or re-apply had to skip this rule ("" = it evaluated): a rule stored
    # without validation must not fail ingests, so it is skipped and the reason shown here.
    evaluation_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        permissions = [("reapply_rules", "Can re-apply the mapping rules to history")]
        constraints = [
            models.CheckConstraint(
                condition=Q(set_team__isnull=False)
                | Q(set_model__isnull=False)
                | Q(set_deployment__isnull=False),
                name="dimensionrule_sets_something",
            ),
            models.CheckConstraint(
                condition=~Q(match_field="tag") | ~Q(tag_key=""), name="dimensionrule_tag_needs_key"
            ),
            models.CheckConstraint(
                condition=Q(operator="exists", match_field="tag") | ~Q(operator="exists"),
                name="dimensionrule_exists_only_for_tags",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.priority} {self.name}"

    def clean(self) -> None:
        if self.operator == RuleOperator.REGEX:
            problem = regex_pattern_error(self.value)
            if problem:
                raise ValidationError({"value": problem})


class AllocationMethod(models.TextChoices):
    TOKENS = "tokens", "Proportional to tokens"
    REQUESTS = "requests", "Proportional to requests"
    GPU_SECONDS = "gpu_seconds", "Proportional to GPU-seconds"
    EVEN = "even", "Evenly"
    FIXED = "fixed", "Fixed shares"


class IdlePolicy(models.TextChoices):
    OWN_LINE = "own_line", "Show idle cost as its own line"
    SPREAD = "spread", "Spread idle cost over users"


class AllocationRule(models.Model):
    """Splits the cost of a shared pool (a deployment, or cost carrying a pool tag) over teams/models."""

    name = models.CharField(max_length=200, unique=True)
    priority = models.PositiveIntegerField(default=100)
    account = models.ForeignKey(
        CloudAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    match_deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.CASCADE, related_name="allocation_rules"
    )
    match_tag_key = models.CharField(max_length=200, blank=True, help_text="e.g. pool")
    match_tag_value = models.CharField(max_length=500, blank=True)
    method = models.CharField(max_length=16, choices=AllocationMethod.choices)
    idle_policy = models.CharField(max_length=16, choices=IdlePolicy.choices, default=IdlePolicy.OWN_LINE)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(match_deployment__isnull=False) | ~Q(match_tag_key=""),
                name="allocationrule_matches_something",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AllocationShare(models.Model):
    """A fixed share of an AllocationRule with method `fixed`; a rule's shares total 100%."""

    rule = models.ForeignKey(AllocationRule, on_delete=models.CASCADE, related_name="shares")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(ServedModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    percent = models.DecimalField(max_digits=7, decimal_places=4)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(percent__gt=0) & Q(percent__lte=100), name="share_percent_range"
            ),
            models.CheckConstraint(
                condition=Q(team__isnull=False) | Q(model__isnull=False), name="share_names_a_target"
            ),
            models.UniqueConstraint(
                fields=["rule", "team", "model"], nulls_distinct=False, name="share_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.percent}%"


class UnallocatedReason(models.TextChoices):
    NONE = "", "Allocated"
    UNTAGGED = "untagged", "Untagged"
    NO_USAGE = "no_usage", "No usage to split by"
    NO_RULE = "no_rule", "No rule covers it"
    IDLE = "idle", "Idle capacity"
    # Unmapped cost of an account that has a mapping rule ingests had to skip (it cannot be
    # evaluated): that rule might have mapped it, so "untagged" would blame the tags.
    RULE_SKIPPED = "rule_skipped", "A mapping rule that could map it is skipped"


class AllocatedCost(models.Model):
    """Cost per day × account × team × model × deployment after allocation.

    Follows FOCUS 1.3 allocation semantics: `allocated_method_id` names the method,
    `allocated_method_details` the ratio and inputs. Rows with a reason are unallocated. For every
    (day, account, currency) the sums equal the billed and effective cost of the line items.
    """

    day = models.DateField()
    account = models.ForeignKey(CloudAccount, on_delete=models.CASCADE, related_name="+")
    billing_period_start = models.DateField()
    provider = models.CharField(max_length=16)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model = models.ForeignKey(ServedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    charge_category = models.CharField(max_length=20)
    billing_currency = models.CharField(max_length=3)
    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    allocated_method_id = models.CharField(max_length=32, help_text="direct, tokens, requests, ...")
    allocated_method_details = models.JSONField(default=dict, blank=True)
    allocation_ratio = models.DecimalField(**RATIO, null=True, blank=True)
    rule = models.ForeignKey(
        AllocationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unallocated_reason = models.CharField(max_length=16, choices=UnallocatedReason.choices, blank=True)
    # Reporting-currency figures and the rate of the charge date that produced them.
    reporting_currency = models.CharField(max_length=3, blank=True)
    exchange_rate = models.DecimalField(**RATIO, null=True, blank=True)
    billed_cost_reporting = models.DecimalField(**MONEY, null=True, blank=True)
    effective_cost_reporting = models.DecimalField(**MONEY, null=True, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["account", "day"]),
            models.Index(fields=["account", "billing_period_start"]),
            models.Index(fields=["team", "day"]),
            models.Index(fields=["model", "day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.allocated_method_id} {self.billed_cost} {self.billing_currency}"


class UnitCostRatioSource(models.TextChoices):
    PRICE_CARD = "price_card", "price cards"
    SETTING = "setting", "default ratio (no price cards)"
    OVERRIDE = "override", "ratio given for the rebuild"


class UnitCost(models.Model):
    """Effective (amortized) cost per unit of usage per day × model × deployment."""

    day = models.DateField()
    model = models.ForeignKey(ServedModel, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    effective_cost = models.DecimalField(**MONEY)
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_per_1m_input_tokens = models.DecimalField(**MONEY, null=True, blank=True)
    cost_per_1m_output_tokens = models.DecimalField(**MONEY, null=True, blank=True)
    cost_per_1k_requests = models.DecimalField(**MONEY, null=True, blank=True)
    # The output:input price ratio that split the cost over the two kinds of token, and where it
    # came from (UnitCostRatioSource): shown beside the figures so nobody reads a default as a price.
    output_input_ratio = models.DecimalField(**RATIO, null=True, blank=True)
    ratio_source = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "deployment", "model", "currency"], name="unitcost_unique"
            ),
        ]
        indexes = [models.Index(fields=["deployment", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.deployment_id}: {self.effective_cost} {self.currency}"


class PriceUnit(models.TextChoices):
    HOUR = "hour", "per instance-hour"
    INPUT_1M = "1m_input_tokens", "per 1M input tokens"
    OUTPUT_1M = "1m_output_tokens", "per 1M output tokens"
    REQUEST_1K = "1k_requests", "per 1k requests"


class PriceCard(models.Model):
    """List price of a deployment, for estimating spend before it has billing history."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="price_cards")
    unit = models.CharField(max_length=20, choices=PriceUnit.choices)
    price = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="USD")
    valid_from = models.DateField()

    class Meta:
        ordering = ["deployment", "unit", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "unit", "valid_from"], name="pricecard_unique"),
            models.CheckConstraint(condition=Q(price__gte=0), name="pricecard_price_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.price} {self.currency} {self.unit}"


class SpendEstimate(models.Model):
    """Spend estimated from usage before the bill lands; `billed_cost` and `error` once it does."""

    day = models.DateField()
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(ServedModel, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    estimated_cost = models.DecimalField(**MONEY)
    # What the basis alone gave, before the deployment's calibration factor; estimated_cost is this
    # times calibration_factor. Kept so accuracy can be shown with and without calibration and so a
    # factor is always learned from uncalibrated figures (never from its own output).
    uncalibrated_cost = models.DecimalField(**MONEY, null=True, blank=True)
    calibration_factor = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    basis = models.CharField(max_length=16, help_text="unit_cost or price_card")
    basis_details = models.JSONField(default=dict, blank=True)
    billed_cost = models.DecimalField(**MONEY, null=True, blank=True)
    error = models.DecimalField(**MONEY, null=True, blank=True, help_text="estimated - billed")
    reconciled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "deployment", "team", "model", "currency"],
                nulls_distinct=False,
                name="spendestimate_unique",
            ),
        ]
        indexes = [models.Index(fields=["day"]), models.Index(fields=["deployment", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.deployment_id}: ~{self.estimated_cost} {self.currency}"


class ExchangeRate(models.Model):
    """Dated exchange rates: 1 `from_currency` = `rate` `to_currency` on `date`."""

    date = models.DateField()
    from_currency = models.CharField(max_length=3)
    to_currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=24, decimal_places=12)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "from_currency", "to_currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "from_currency", "to_currency"], name="exchangerate_unique"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchangerate_positive"),
            models.CheckConstraint(
                condition=Q(from_currency__regex=r"^[A-Z]{3}$") & Q(to_currency__regex=r"^[A-Z]{3}$"),
                name="exchangerate_currency_iso",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} 1 {self.from_currency} = {self.rate} {self.to_currency}"
