from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health
from routing.api import gateway as routing_gateway

api_v1 = [
    path("", include("attribution.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("routing.api.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    # Envoy REST xDS: the paths are fixed by Envoy (routing/api/gateway.py).
    path("v3/discovery:routes", routing_gateway.envoy_routes, name="envoy-routes"),
    path("v3/discovery:clusters", routing_gateway.envoy_clusters, name="envoy-clusters"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("attribution.urls")),
]
