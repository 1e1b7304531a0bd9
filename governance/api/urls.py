from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.api import currency, rules, suggestions, views

router = SimpleRouter(trailing_slash=False)
router.register("budgets", views.BudgetViewSet, basename="budget")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("dimension-rules", rules.DimensionRuleViewSet, basename="dimension-rule")
router.register("exchange-rates", currency.ExchangeRateViewSet, basename="exchange-rate")
router.register("rule-suggestions", suggestions.RuleSuggestionViewSet, basename="rule-suggestion")

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("dimension-rules/reapply", rules.RulesReapplyView.as_view(), name="dimension-rules-reapply"),
    *router.urls,
]
