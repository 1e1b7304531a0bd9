"""URL of the mapping rules page; included from config/urls.py as `path("rules/", include(...))`."""

from django.urls import path

from attribution.rules_views import rules_page

app_name = "rules"

urlpatterns = [
    path("", rules_page, name="index"),
]
