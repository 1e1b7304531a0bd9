from django.urls import path

from attribution import views

app_name = "attribution"

urlpatterns = [
    path("", views.overview, name="overview"),
]
