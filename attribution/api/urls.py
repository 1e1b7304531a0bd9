from rest_framework.routers import SimpleRouter

from attribution.api import views

router = SimpleRouter(trailing_slash=False)
router.register("accounts", views.CloudAccountViewSet, basename="account")
router.register("teams", views.TeamViewSet, basename="team")
router.register("models", views.ServedModelViewSet, basename="model")
router.register("deployments", views.DeploymentViewSet, basename="deployment")
router.register("ingest-runs", views.IngestRunViewSet, basename="ingest-run")
router.register("daily-costs", views.DailyCostViewSet, basename="daily-cost")

urlpatterns = router.urls
