"""Where traffic goes: gateways, routing policies, immutable policy documents, pushes."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from attribution.models import ServedModel
from routing.choices import GatewayKind, Objective, PushOutcome


class Gateway(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=GatewayKind.choices)
    # Where to push (runtime API socket, webhook URL...); credentials only as references.
    push_settings = models.JSONField(default=dict, blank=True)
    served_models = models.ManyToManyField(ServedModel, blank=True, related_name="gateways")
    token_prefix = models.CharField(max_length=16, unique=True, null=True, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    applied_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=GatewayKind.values), name="gateway_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.name


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
        ]

    def __str__(self) -> str:
        return f"Policy for {self.model}"


class PolicyDocument(models.Model):
    """An immutable, versioned routing document for one gateway. Never updated after insert."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="documents")
    version = models.PositiveIntegerField()
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
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
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["gateway", "started_at"])]

    def __str__(self) -> str:
        return f"push of document {self.document_id} to gateway {self.gateway_id}: {self.outcome}"
