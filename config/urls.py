from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config import health
from routing.api import gateway as routing_gateway

# Routing's first: its gateway endpoints are polled every few seconds by every gateway, and URL
# resolution tries the patterns in order (no path is shared between these three).
api_v1 = [
    path("", include("routing.api.urls")),
    path("", include("attribution.api.urls")),
    path("", include("governance.api.urls")),
]


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico where a page links no icon (the Django admin, the API's HTML):
    the same icon as base.html's, instead of a 404 in the console."""
    return HttpResponseRedirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    # What every gateway polls, resolved before the nested includes (routing/api/gateway.py).
    path("api/v1/gateways/self/policy", routing_gateway.gateway_policy_first),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Envoy REST xDS: the paths are fixed by Envoy (routing/api/gateway.py).
    path("v3/discovery:routes", routing_gateway.envoy_routes, name="envoy-routes"),
    path("v3/discovery:clusters", routing_gateway.envoy_clusters, name="envoy-clusters"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, not inline, so the
    # Content-Security-Policy needs no 'unsafe-inline'. Both need a signed-in user (or, for the
    # schema, an API token): see SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"].
    path(
        "api/docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="swagger-ui",
    ),
    path("", include("attribution.urls")),
    path("governance/", include("governance.urls")),
    path("settings/", include("governance.settings_urls")),
    path("settings/", include("routing.settings_urls")),
    path("routing/", include("routing.urls")),
]
