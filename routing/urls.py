from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("", views.routing_index, name="index"),
    path("gateways/", views.gateways, name="gateways"),
    path("deployments/", views.deployments, name="deployments"),
    path("models/<slug:slug>/", views.routing_model, name="model"),
]
