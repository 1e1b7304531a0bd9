"""The attribution API (DRF), mounted once under /api/v1/ by config/urls.py."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from attribution.api import connectors, costs, currency, rules, views

router = SimpleRouter(trailing_slash=False)
router.register("accounts", views.CloudAccountViewSet, basename="account")
router.register("teams", views.TeamViewSet, basename="team")
router.register("models", views.ServedModelViewSet, basename="model")
router.register("deployments", views.DeploymentViewSet, basename="deployment")
router.register("ingest-runs", views.IngestRunViewSet, basename="ingest-run")
router.register("daily-costs", views.DailyCostViewSet, basename="daily-cost")
router.register("costs", costs.CostViewSet, basename="cost")
router.register("unit-costs", costs.UnitCostViewSet, basename="unit-cost")
router.register("estimates", costs.SpendEstimateViewSet, basename="estimate")
router.register("unallocated", costs.UnallocatedViewSet, basename="unallocated")
router.register("sync-runs", connectors.SyncRunViewSet, basename="sync-run")
router.register("dimension-rules", rules.DimensionRuleViewSet, basename="dimension-rule")
router.register("exchange-rates", currency.ExchangeRateViewSet, basename="exchange-rate")

urlpatterns = [
    *router.urls,
    # Account actions beside the read-only accounts viewset.
    path(
        "accounts/<int:pk>/test-connection",
        connectors.AccountTestConnectionView.as_view(),
        name="account-test-connection",
    ),
    path("accounts/<int:pk>/sync", connectors.AccountSyncView.as_view(), name="account-sync"),
    path("dimension-rules/preview", rules.RulePreviewView.as_view(), name="dimension-rule-preview"),
    path("dimension-rules/reapply", rules.RulesReapplyView.as_view(), name="dimension-rules-reapply"),
    path("background-runs/<int:pk>", rules.BackgroundRunView.as_view(), name="background-run-detail"),
]
