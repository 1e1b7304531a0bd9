from django.urls import path
from rest_framework.routers import SimpleRouter

from routing.api import gateway, views
from routing.api.usage import UsageBatchView

router = SimpleRouter(trailing_slash=False)
router.register("gateways", views.GatewayViewSet, basename="gateway")
router.register("policy-documents", views.PolicyDocumentViewSet, basename="policy-document")

urlpatterns = [
    path("usage", UsageBatchView.as_view(), name="usage"),
    path("gateways/self/policy", gateway.gateway_policy, name="gateway-self-policy"),
    path("gateways/self/status", gateway.GatewayStatusView.as_view(), name="gateway-self-status"),
    path("gateways/self/traefik", gateway.GatewayTraefikView.as_view(), name="gateway-self-traefik"),
    *router.urls,
]
