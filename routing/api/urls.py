from rest_framework.routers import SimpleRouter

from routing.api import views

router = SimpleRouter(trailing_slash=False)
router.register("gateways", views.GatewayViewSet, basename="gateway")
router.register("policy-documents", views.PolicyDocumentViewSet, basename="policy-document")

urlpatterns = router.urls
