from django.db import models


class GatewayKind(models.TextChoices):
    HAPROXY = "haproxy", "HAProxy (runtime API)"
    ENVOY = "envoy", "Envoy (REST RDS)"
    TRAEFIK = "traefik", "Traefik (HTTP provider)"
    WEBHOOK = "webhook", "Signed webhook"
    PULL_ONLY = "pull_only", "Pull only"


class Objective(models.TextChoices):
    CHEAPEST_WITHIN_SLO = "cheapest_within_slo", "Cheapest within latency SLO"
    FASTEST_WITHIN_BUDGET = "fastest_within_budget", "Fastest within budget"
    BALANCED = "balanced", "Balanced"


class PushOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
