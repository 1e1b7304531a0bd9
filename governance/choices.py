from django.db import models


class Role(models.TextChoices):
    """Roles are Django groups of these names; team-level roles are Memberships."""

    ADMIN = "admin", "Admin"
    FINANCE = "finance", "Finance / executive"
    TEAM_LEAD = "team_lead", "Team lead"
    VIEWER = "viewer", "Viewer"


class MembershipRole(models.TextChoices):
    LEAD = "lead", "Lead (edits budgets and quotas)"
    MEMBER = "member", "Member (reads)"


class BudgetPeriod(models.TextChoices):
    MONTH = "month", "Month"
    QUARTER = "quarter", "Quarter"
    YEAR = "year", "Year"
    CUSTOM = "custom", "Custom range"


class BudgetAction(models.TextChoices):
    NOTIFY = "notify", "Notify"
    THROTTLE = "throttle", "Throttle"
    REROUTE = "reroute", "Reroute to cheaper deployments"
    BLOCK = "block", "Block"


class ThresholdBasis(models.TextChoices):
    ACTUAL = "actual", "Actual spend"
    FORECAST = "forecast", "Forecast spend"


class QuotaMetric(models.TextChoices):
    TOKENS = "tokens", "Tokens"
    REQUESTS = "requests", "Requests"


class QuotaWindow(models.TextChoices):
    MINUTE = "minute", "Per minute"
    DAY = "day", "Per day"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack webhook"
    WEBHOOK = "webhook", "Signed webhook"


class AlertKind(models.TextChoices):
    BUDGET_THRESHOLD = "budget_threshold", "Budget threshold"
    ANOMALY = "anomaly", "Anomaly"
    CONSERVATION = "conservation", "Allocation does not reconcile"
    RESTATEMENT = "restatement", "Restated after close"
    INGEST_FAILED = "ingest_failed", "Ingest failed"
    # Raised by routing (routing.services), which imports governance; governance never imports it.
    ROUTING_INFEASIBLE = "routing_infeasible", "Routing policy infeasible"
    GATEWAY_LAG = "gateway_lag", "Gateway behind the latest policy"
    TEST = "test", "Test message"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class BudgetEventKind(models.TextChoices):
    APPLIED = "applied", "Threshold crossed, action applied"
    LIFTED = "lifted", "Action lifted"


class LiftReason(models.TextChoices):
    NEW_PERIOD = "new_period", "A new period started"
    RAISED = "raised", "The budget or threshold was raised"
    THRESHOLD_REMOVED = "threshold_removed", "The threshold was removed"
    BUDGET_INACTIVE = "budget_inactive", "The budget was deactivated or deleted"


class LeaseUnit(models.TextChoices):
    MONEY = "money", "Money (the budget's currency)"
    TOKENS = "tokens", "Tokens"
    REQUESTS = "requests", "Requests"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (retries exhausted)"
