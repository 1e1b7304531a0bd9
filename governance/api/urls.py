from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api import budgets, currency, leases, rules, views

router = SimpleRouter(trailing_slash=False)
router.register("budgets", budgets.BudgetViewSet, basename="budget")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("dimension-rules", rules.DimensionRuleViewSet, basename="dimension-rule")
router.register("exchange-rates", currency.ExchangeRateViewSet, basename="exchange-rate")

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("leases", leases.LeaseView.as_view(), name="leases"),
    path("dimension-rules/reapply", rules.RulesReapplyView.as_view(), name="dimension-rules-reapply"),
    *router.urls,
]
