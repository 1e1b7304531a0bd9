from django.urls import path

from governance import views

app_name = "governance"

urlpatterns = [
    path("budgets/", views.budgets_list, name="budgets"),
    path("budgets/new", views.budget_edit, name="budget-new"),
    path("budgets/<int:budget_id>/", views.budget_detail, name="budget"),
    path("budgets/<int:budget_id>/edit", views.budget_edit, name="budget-edit"),
    path("alerts/", views.alerts_list, name="alerts"),
    path("alerts/<int:alert_id>/ack", views.alert_ack, name="alert-ack"),
    path("quotas/", views.quotas_list, name="quotas"),
    path("audit/", views.audit_log, name="audit"),
]
