from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api import alerts, budgets, leases, quotas, suggestions, thresholds, views

router = SimpleRouter(trailing_slash=False)
router.register("budgets", budgets.BudgetViewSet, basename="budget")
router.register("thresholds", thresholds.ThresholdViewSet, basename="threshold")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("alerts", alerts.AlertViewSet, basename="alert")
router.register("channels", alerts.ChannelViewSet, basename="channel")
router.register("quotas", quotas.QuotaViewSet, basename="quota")
router.register("rule-suggestions", suggestions.RuleSuggestionViewSet, basename="rule-suggestion")

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("leases", leases.lease_endpoint, name="leases"),
    *router.urls,
]
