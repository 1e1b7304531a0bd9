"""Routing's Settings pages, mounted at /settings/ by config/urls.py."""

from django.urls import path

from routing import settings_views

app_name = "settings_routing"

urlpatterns = [
    path("models/", settings_views.models_and_deployments, name="models"),
    path("models/<int:model_id>/", settings_views.served_model_edit, name="model-edit"),
    path("models/<int:model_id>/deployments/new", settings_views.deployment_new, name="deployment-new"),
    path("deployments/<int:deployment_id>/", settings_views.deployment_edit, name="deployment-edit"),
]
