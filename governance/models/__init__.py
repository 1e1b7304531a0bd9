"""Governance models, one module per subject; import them from `governance.models`."""

from governance.models.alerts import AlertDelivery
from governance.models.base import (
    MONEY,
    Alert,
    ApiToken,
    AuditEvent,
    Budget,
    BudgetQuerySet,
    BudgetThreshold,
    Membership,
    NotificationChannel,
    Quota,
)
from governance.models.enforcement import BudgetEnforcement, BudgetEvent, BudgetForecast
from governance.models.leases import Lease, LeasePool

__all__ = [
    "MONEY",
    "Alert",
    "AlertDelivery",
    "ApiToken",
    "AuditEvent",
    "Budget",
    "BudgetEnforcement",
    "BudgetEvent",
    "BudgetForecast",
    "BudgetQuerySet",
    "BudgetThreshold",
    "Lease",
    "LeasePool",
    "Membership",
    "NotificationChannel",
    "Quota",
]
