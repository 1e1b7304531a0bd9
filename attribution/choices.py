from django.db import models


class Provider(models.TextChoices):
    AWS = "aws", "AWS"
    GCP = "gcp", "Google Cloud"
    AZURE = "azure", "Azure"
    OCI = "oci", "Oracle Cloud"


class PricingMode(models.TextChoices):
    ON_DEMAND = "on_demand", "On-demand"
    SPOT = "spot", "Spot"
    RESERVED = "reserved", "Reserved / committed"
    MANAGED_PER_TOKEN = "managed_per_token", "Managed, per token"


class DeploymentState(models.TextChoices):
    ACTIVE = "active", "Active"
    DRAINING = "draining", "Draining"
    DOWN = "down", "Down"
    RETIRED = "retired", "Retired"


class IngestState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded"


class ChargeCategory(models.TextChoices):
    """FOCUS ChargeCategory values."""

    USAGE = "Usage", "Usage"
    PURCHASE = "Purchase", "Purchase"
    TAX = "Tax", "Tax"
    CREDIT = "Credit", "Credit"
    ADJUSTMENT = "Adjustment", "Adjustment"


# The cost columns an ingest run reconciles between source and database.
COST_COLUMNS: tuple[str, ...] = ("billed_cost", "effective_cost", "list_cost", "contracted_cost")
