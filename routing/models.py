"""Where traffic goes: gateways, routing policies, immutable policy documents, pushes."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from attribution.models import Deployment, ServedModel, Team, validate_source_settings
from routing.choices import (
    EgressScope,
    GatewayKind,
    Health,
    HealthSource,
    Objective,
    PublishReason,
    PushOutcome,
    RequestClass,
)

SHARE = {"max_digits": 7, "decimal_places": 4}


class Gateway(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=GatewayKind.choices)
    # Where to push (runtime API address, webhook URL...); credentials only as references
    # (`env:NAME`, `file:/path`), checked like a cloud account's source settings.
    push_settings = models.JSONField(default=dict, blank=True, validators=[validate_source_settings])
    # Where the gateway runs: its cloud and region decide egress and which latencies apply.
    origin_provider = models.CharField(
        max_length=16, blank=True, help_text="aws, gcp, azure (blank: on-prem)"
    )
    origin_region = models.CharField(max_length=64, blank=True, help_text="e.g. eu-west-1")
    # Client regions the gateway tags requests with; each gets its own route per model.
    extra_origins = models.JSONField(default=list, blank=True)
    served_models = models.ManyToManyField(ServedModel, blank=True, related_name="gateways")
    token_prefix = models.CharField(max_length=16, unique=True, null=True, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    applied_version = models.PositiveIntegerField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    # The last status report (health, latencies) as the gateway sent it, for the Gateways page.
    last_status = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=GatewayKind.values), name="gateway_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validate_source_settings(self.push_settings)

    @property
    def origins(self) -> list[str]:
        """The gateway's own region first, then the client regions it tags requests with."""
        ordered = [self.origin_region] + [str(origin) for origin in self.extra_origins or []]
        return list(dict.fromkeys(ordered))


class RoutingPolicy(models.Model):
    model = models.OneToOneField(ServedModel, on_delete=models.CASCADE, related_name="routing_policy")
    objective = models.CharField(max_length=32, choices=Objective.choices, default=Objective.BALANCED)
    latency_slo_ms = models.PositiveIntegerField(null=True, blank=True)
    # Residency: deployments outside these regions get no traffic. Empty = anywhere.
    allowed_residency = models.JSONField(default=list, blank=True)
    min_share_per_provider = models.DecimalField(max_digits=5, decimal_places=4, default=0)
    max_share_per_deployment = models.DecimalField(max_digits=5, decimal_places=4, default=1)
    max_step = models.DecimalField(
        max_digits=5, decimal_places=4, default="0.2000", help_text="Largest weight change per publish"
    )
    # Changes smaller than this (a share, 0.02 = 2 points) are not published: no flapping on noise.
    hysteresis = models.DecimalField(max_digits=5, decimal_places=4, default="0.0200")
    # For FASTEST_WITHIN_BUDGET: the highest average cost per 1M tokens the mix may have.
    cost_ceiling_per_1m_tokens = models.DecimalField(max_digits=24, decimal_places=10, null=True, blank=True)
    # Origin region -> residency regions its traffic may go to, e.g. {"eu-west-1": ["eu"]}.
    origin_residency = models.JSONField(default=dict, blank=True)
    # Share of the model's traffic that is batch (no latency SLO), for the expected load per class.
    batch_share = models.DecimalField(max_digits=5, decimal_places=4, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "routing policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(min_share_per_provider__gte=0) & Q(min_share_per_provider__lte=1),
                name="policy_min_share_range",
            ),
            models.CheckConstraint(
                condition=Q(max_share_per_deployment__gt=0) & Q(max_share_per_deployment__lte=1),
                name="policy_max_share_range",
            ),
            models.CheckConstraint(
                condition=Q(max_step__gt=0) & Q(max_step__lte=1), name="policy_max_step_range"
            ),
            models.CheckConstraint(
                condition=Q(objective__in=Objective.values), name="policy_objective_valid"
            ),
            models.CheckConstraint(
                condition=Q(hysteresis__gte=0) & Q(hysteresis__lt=1), name="policy_hysteresis_range"
            ),
            models.CheckConstraint(
                condition=Q(batch_share__gte=0) & Q(batch_share__lte=1), name="policy_batch_share_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Policy for {self.model}"


class PolicyDocument(models.Model):
    """An immutable, versioned routing document for one gateway. Never updated after insert."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="documents")
    version = models.PositiveIntegerField()
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=16, choices=PublishReason.choices, default=PublishReason.COST)
    reason_detail = models.TextField(blank=True)
    # What moved since the previous version: [{"model", "class", "origin", "team", "deployment",
    # "before", "after"}] in weight points, plus quota changes.
    diff = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["gateway", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "version"], name="policydocument_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway.slug} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        # Invariant, not business logic: a published version must never change under a gateway.
        if self.pk is not None:
            raise ValueError("Policy documents are immutable; publish a new version instead.")
        super().save(*args, **kwargs)


class PushAttempt(models.Model):
    document = models.ForeignKey(PolicyDocument, on_delete=models.CASCADE, related_name="push_attempts")
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="push_attempts")
    outcome = models.CharField(max_length=16, choices=PushOutcome.choices, default=PushOutcome.PENDING)
    attempt = models.PositiveIntegerField(default=1)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["gateway", "started_at"])]

    def __str__(self) -> str:
        return f"push of document {self.document_id} to gateway {self.gateway_id}: {self.outcome}"


class DeploymentRouting(models.Model):
    """What routing knows about a deployment beyond attribution's inventory: capacity in tokens,
    standby and spot pairing, and its health as probes and gateways see it."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="routing")
    capacity_tps = models.DecimalField(
        max_digits=14, decimal_places=3, null=True, blank=True, help_text="Sustainable tokens per second"
    )
    # Active-passive failover: a warm standby gets traffic only when the others cannot carry it.
    warm_standby = models.BooleanField(default=False)
    # The on-demand deployment that takes this (spot) deployment's load when it is interrupted.
    spot_pair = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="spot_partners"
    )
    probe_url = models.URLField(max_length=500, blank=True, help_text="Blank: the endpoint URL + /health")
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.HEALTHY)
    health_source = models.CharField(max_length=16, choices=HealthSource.choices, blank=True)
    health_reason = models.TextField(blank=True)
    health_changed_at = models.DateTimeField(null=True, blank=True)
    # While RESTORING: the largest share it may get; raised by one step per evaluation cycle.
    restore_cap = models.DecimalField(**SHARE, null=True, blank=True)
    last_probe_at = models.DateTimeField(null=True, blank=True)
    # Average request + response bytes per token, as gateways report it: egress per 1M tokens.
    bytes_per_token = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)

    class Meta:
        verbose_name = "deployment routing profile"
        constraints = [
            models.CheckConstraint(
                condition=Q(health__in=Health.values), name="deploymentrouting_health_valid"
            ),
            models.CheckConstraint(
                condition=Q(capacity_tps__isnull=True) | Q(capacity_tps__gt=0),
                name="deploymentrouting_capacity_positive",
            ),
            models.CheckConstraint(
                condition=Q(restore_cap__isnull=True) | (Q(restore_cap__gt=0) & Q(restore_cap__lte=1)),
                name="deploymentrouting_restore_cap_range",
            ),
            models.CheckConstraint(
                condition=~Q(spot_pair=models.F("deployment")), name="deploymentrouting_pair_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"routing of {self.deployment_id}: {self.health}"

    @property
    def drained(self) -> bool:
        return self.health in (Health.UNHEALTHY, Health.INTERRUPTED)


class RouteLatency(models.Model):
    """p95 latency of a deployment as measured from one origin region (gateway reports)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="route_latencies")
    origin = models.CharField(max_length=64)
    p95_ms = models.FloatField()
    error_rate = models.FloatField(default=0)
    reported_by = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deployment", "origin"], name="routelatency_unique"),
            models.CheckConstraint(condition=Q(p95_ms__gte=0), name="routelatency_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} from {self.origin}: p95 {self.p95_ms} ms"


class EgressRate(models.Model):
    """Data-transfer price card per GB leaving a provider (to another region or another cloud)."""

    provider = models.CharField(max_length=16)
    scope = models.CharField(max_length=16, choices=EgressScope.choices)
    price_per_gb = models.DecimalField(max_digits=24, decimal_places=10)
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "scope"], name="egressrate_unique"),
            models.CheckConstraint(condition=Q(price_per_gb__gte=0), name="egressrate_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.scope}: {self.price_per_gb} {self.currency}/GB"


class WeightPin(models.Model):
    """Manual override of a model's weights until `expires_at`, with the reason a person gave."""

    model = models.ForeignKey(ServedModel, on_delete=models.CASCADE, related_name="weight_pins")
    # Blank: every class / every origin.
    request_class = models.CharField(max_length=16, choices=RequestClass.choices, blank=True)
    origin = models.CharField(max_length=64, blank=True)
    # {deployment slug: weight points}, adding up to 100.
    weights = models.JSONField()
    reason = models.TextField()
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["model", "expires_at"])]

    def __str__(self) -> str:
        return f"pin on {self.model_id} until {self.expires_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if not isinstance(self.weights, dict) or not self.weights:
            raise ValidationError({"weights": "Give {deployment slug: weight points}, adding up to 100."})
        if any(not isinstance(value, int) or value < 0 for value in self.weights.values()):
            raise ValidationError({"weights": "Each weight must be a whole number of points, 0 or more."})
        if sum(self.weights.values()) != 100:
            raise ValidationError({"weights": f"Weights add up to {sum(self.weights.values())}, not 100."})
        if not self.reason.strip():
            raise ValidationError({"reason": "Say why the weights are pinned."})


class RouteState(models.Model):
    """The last good weights of one route (model × class × origin × team): what max step and
    hysteresis measure from, and what an infeasible policy keeps."""

    model = models.ForeignKey(ServedModel, on_delete=models.CASCADE, related_name="+")
    request_class = models.CharField(max_length=16, choices=RequestClass.choices)
    origin = models.CharField(max_length=64, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # {deployment id (as text): share as a decimal string}
    weights = models.JSONField(default=dict)
    # Why the last evaluation did not move it (infeasible: the constraint that failed).
    last_problem = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "request_class", "origin", "team"],
                nulls_distinct=False,
                name="routestate_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"route {self.model_id}/{self.request_class}/{self.origin or '*'}"
