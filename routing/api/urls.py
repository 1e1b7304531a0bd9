from django.urls import path
from rest_framework.routers import SimpleRouter

from routing.api import views
from routing.api.usage import UsageBatchView

router = SimpleRouter(trailing_slash=False)
router.register("gateways", views.GatewayViewSet, basename="gateway")
router.register("policy-documents", views.PolicyDocumentViewSet, basename="policy-document")

urlpatterns = [path("usage", UsageBatchView.as_view(), name="usage"), *router.urls]
