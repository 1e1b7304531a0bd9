from django.urls import include, path
from rest_framework.routers import SimpleRouter

from attribution.api import costs, views

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

urlpatterns = [
    *router.urls,
    path("", include("attribution.api.connectors")),
    path("", include("attribution.api.rules")),
]
