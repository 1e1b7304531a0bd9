"""Pages of the cloud connectors. Mounted in config/urls.py with
`path("accounts/", include("attribution.connectors.urls"))`."""

from django.urls import path

from attribution.connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.accounts, name="accounts"),
    path("<int:pk>/test-connection", views.account_test_connection, name="account-test-connection"),
    path("<int:pk>/sync", views.account_sync_now, name="account-sync"),
]
