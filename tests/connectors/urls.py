"""The project's URLs plus the connectors' pages, mounted as config/urls.py is asked to mount them."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("accounts/", include("attribution.connectors.urls"))]
