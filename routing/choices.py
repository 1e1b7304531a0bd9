from django.db import models


class GatewayKind(models.TextChoices):
    HAPROXY = "haproxy", "HAProxy (runtime API)"
    ENVOY = "envoy", "Envoy (REST RDS)"
    TRAEFIK = "traefik", "Traefik (HTTP provider)"
    WEBHOOK = "webhook", "Signed webhook"
    PULL_ONLY = "pull_only", "Pull only"


class Objective(models.TextChoices):
    CHEAPEST_WITHIN_SLO = "cheapest_within_slo", "Cheapest within latency SLO"
    FASTEST_WITHIN_BUDGET = "fastest_within_budget", "Fastest within cost ceiling"
    BALANCED = "balanced", "Balanced"


class RequestClass(models.TextChoices):
    REALTIME = "realtime", "Realtime (latency SLO applies)"
    BATCH = "batch", "Batch (cheapest eligible capacity)"


class PushOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Health(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    # Healthy again after a failure: its weight is capped and rises by one step per cycle.
    RESTORING = "restoring", "Restoring"
    UNHEALTHY = "unhealthy", "Unhealthy (drained)"
    # A spot interruption notice: drained at once, its on-demand pair takes the load.
    INTERRUPTED = "interrupted", "Spot interruption (drained)"


class HealthSource(models.TextChoices):
    PROBE = "probe", "Active probe"
    GATEWAY = "gateway", "Gateway report"
    SPOT_NOTICE = "spot_notice", "Spot interruption notice"
    MANUAL = "manual", "Operator"


class PublishReason(models.TextChoices):
    COST = "cost", "Unit costs or load changed"
    HEALTH = "health", "Deployment health changed"
    BUDGET_ACTION = "budget_action", "Budget action applied or lifted"
    MANUAL = "manual", "Manual pin or policy edit"
    SPOT_NOTICE = "spot_notice", "Spot interruption notice"
    INITIAL = "initial", "First document"


class EgressScope(models.TextChoices):
    INTER_REGION = "inter_region", "Same cloud, another region"
    INTERNET = "internet", "Another cloud (internet egress)"
