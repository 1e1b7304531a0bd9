"""URL of the Unallocated page; included from config/urls.py as `path("unallocated/", include(...))`."""

from django.urls import path

from attribution.mapping.views import unallocated_page

app_name = "unallocated"

urlpatterns = [path("", unallocated_page, name="index")]
