"""What may be spent: budgets, quotas, alerts, memberships, API tokens and the audit log."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from attribution.choices import Provider
from attribution.design import money_text
from attribution.models import CloudAccount, ScopedQuerySet, ServedModel, Team
from governance.choices import (
    AlertKind,
    BudgetAction,
    BudgetPeriod,
    ChannelKind,
    MembershipRole,
    QuotaMetric,
    QuotaWindow,
    Severity,
    ThresholdBasis,
)

MONEY = {"max_digits": 24, "decimal_places": 10}
_CENT = Decimal("0.01")


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=MembershipRole.choices, default=MembershipRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team"),
            models.CheckConstraint(condition=Q(role__in=MembershipRole.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class BudgetQuerySet(ScopedQuerySet):
    """attribution.view_all_teams (admin, finance) sees every row; others the rows of their teams
    (organisation-wide rows, without a team, included for no one else)."""

    team_lookup = "team"


class Budget(models.Model):
    """A spending limit over a scope (any combination of team, model, provider, account)."""

    name = models.CharField(max_length=200)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    model = models.ForeignKey(ServedModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=16, choices=Provider.choices, blank=True)
    account = models.ForeignKey(
        CloudAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period = models.CharField(max_length=16, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    # Months, quarters and years start at local midnight in this IANA zone (e.g. Europe/Berlin).
    timezone = models.CharField(max_length=64, default="UTC")
    # Quarters and years are fiscal: they start in this month (1 = January, calendar years).
    fiscal_year_start_month = models.PositiveSmallIntegerField(default=1)
    custom_start = models.DateField(null=True, blank=True)
    custom_end = models.DateField(null=True, blank=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="USD")
    # What a threshold does when it names no action of its own.
    action = models.CharField(max_length=16, choices=BudgetAction.choices, default=BudgetAction.NOTIFY)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BudgetQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        # Without it, budgets and quotas may be edited only for the teams a user leads.
        permissions = [("edit_all_teams", "Can edit budgets and quotas of every team and organisation-wide")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="budget_amount_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="budget_currency_iso"),
            models.CheckConstraint(condition=Q(period__in=BudgetPeriod.values), name="budget_period_valid"),
            models.CheckConstraint(condition=Q(action__in=BudgetAction.values), name="budget_action_valid"),
            models.CheckConstraint(
                condition=Q(fiscal_year_start_month__gte=1, fiscal_year_start_month__lte=12),
                name="budget_fiscal_start_month_valid",
            ),
            # A custom period needs both ends, in order; other periods need neither.
            models.CheckConstraint(
                condition=(
                    Q(
                        period="custom",
                        custom_start__isnull=False,
                        custom_end__isnull=False,
                        custom_end__gt=models.F("custom_start"),
                    )
                    | (~Q(period="custom") & Q(custom_start__isnull=True, custom_end__isnull=True))
                ),
                name="budget_custom_range_valid",
            ),
            models.UniqueConstraint(fields=["name", "team"], nulls_distinct=False, name="budget_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class BudgetThresholdQuerySet(ScopedQuerySet):
    """The thresholds of the budgets this user sees (BudgetQuerySet)."""

    team_lookup = "budget__team"


class BudgetThreshold(models.Model):
    """A level of spend (a % of the budget or an absolute amount) on actual or forecast spend, and the
    action taken when spend reaches it."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="thresholds")
    percent = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    amount = models.DecimalField(**MONEY, null=True, blank=True, help_text="In the budget's currency")
    basis = models.CharField(max_length=16, choices=ThresholdBasis.choices, default=ThresholdBasis.ACTUAL)
    # Blank: the budget's action.
    action = models.CharField(max_length=16, choices=BudgetAction.choices, blank=True)
    # Throttle: the share of the scope's quotas that is cut (0.5 halves them).
    throttle_share = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)

    objects = BudgetThresholdQuerySet.as_manager()

    class Meta:
        ordering = ["budget", "percent", "amount"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "percent", "basis"], name="threshold_unique"),
            models.UniqueConstraint(fields=["budget", "amount", "basis"], name="threshold_amount_unique"),
            models.CheckConstraint(
                condition=Q(percent__isnull=True) | (Q(percent__gt=0) & Q(percent__lte=1000)),
                name="threshold_percent_range",
            ),
            models.CheckConstraint(
                condition=(Q(percent__isnull=False) & Q(amount__isnull=True))
                | (Q(percent__isnull=True) & Q(amount__isnull=False, amount__gt=0)),
                name="threshold_percent_xor_amount",
            ),
            models.CheckConstraint(
                condition=Q(action="") | Q(action__in=BudgetAction.values), name="threshold_action_valid"
            ),
            models.CheckConstraint(
                condition=Q(throttle_share__isnull=True) | Q(throttle_share__gt=0, throttle_share__lte=1),
                name="threshold_throttle_share_range",
            ),
        ]

    def __str__(self) -> str:
        level = (
            f"{self.percent.normalize():f} %"
            if self.percent is not None
            else money_text(self.amount, self.budget.currency)
        )
        return f"{self.budget}: {level} {self.basis}"

    @property
    def effective_action(self) -> str:
        return self.action or self.budget.action

    def limit_for(self, budget_amount: Decimal) -> Decimal:
        """The spend at which this threshold is crossed, in the budget's currency, to the cent."""
        if self.amount is not None:
            return self.amount
        return (budget_amount * self.percent / 100).quantize(_CENT)


class Quota(models.Model):
    """A cap on tokens or requests per minute or day for a team (optionally one model)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="quotas")
    model = models.ForeignKey(ServedModel, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # The id of a routing.Gateway when the quota holds for one gateway only. A plain integer, not a
    # foreign key: governance sits below routing and must not depend on its tables.
    gateway_id = models.PositiveBigIntegerField(null=True, blank=True)
    metric = models.CharField(max_length=16, choices=QuotaMetric.choices)
    window = models.CharField(max_length=16, choices=QuotaWindow.choices)
    limit = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BudgetQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "model", "gateway_id", "metric", "window"],
                nulls_distinct=False,
                name="quota_unique",
            ),
            models.CheckConstraint(condition=Q(limit__gt=0), name="quota_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.limit} {self.metric}/{self.window}"


class NotificationChannel(models.Model):
    """Where alerts go. Read by admin, finance and the members of its team (BudgetQuerySet rules)."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    target = models.CharField(max_length=500, help_text="Email address or webhook URL")
    # Signing secret as a reference (env:NAME / file:/path), never the secret itself.
    secret_reference = models.CharField(max_length=200, blank=True)
    # A team's channel gets that team's alerts; a channel with no team gets every alert.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="channels")
    # Alert kinds this channel subscribes to; empty = all kinds.
    kinds = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)

    objects = BudgetQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(secret_reference="")
                | Q(secret_reference__regex=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/\S+)$"),
                name="channel_secret_is_reference",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AlertQuerySet(ScopedQuerySet):
    """attribution.view_all_teams (admin, finance) sees every alert; others the alerts of their teams."""

    team_lookup = "team"


class Alert(models.Model):
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    budget = models.ForeignKey(Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    threshold = models.ForeignKey(BudgetThreshold, null=True, blank=True, on_delete=models.SET_NULL)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    # The same condition in the same period raises one alert, not one per evaluation.
    dedup_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message[:80]}"


class AuditEvent(models.Model):
    """Who changed which budget, quota, policy or credential, when, and from what to what."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="Username or token name at the time")
    action = models.CharField(max_length=32, help_text="create / update / delete / ...")
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class ApiToken(models.Model):
    """A scoped API token for a user. Only an HMAC of the secret is stored; the prefix identifies it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    # e.g. ["read", "write:budgets"]
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="apitoken_unique_name_per_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
