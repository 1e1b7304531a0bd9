from django.urls import path

from attribution import views
from attribution.estimates.views import deployment_accuracy_page

app_name = "attribution"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("estimates/<slug:slug>/", deployment_accuracy_page, name="deployment-accuracy"),
]
