from django.urls import path

from routing import unit_economics_views, views

app_name = "routing"

urlpatterns = [
    path("", views.routing_index, name="index"),
    path("gateways/", views.gateways, name="gateways"),
    path("deployments/", views.deployments, name="deployments"),
    path("unit-economics/", unit_economics_views.unit_economics_page, name="unit_economics"),
    # str, not slug: model slugs hold dots (llama-3.1-70b, attribution/slugs.py).
    path("models/<str:slug>/", views.routing_model, name="model"),
]
