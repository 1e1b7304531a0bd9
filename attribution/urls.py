"""The attribution pages, mounted once at the site root by config/urls.py.

Each page group keeps its own URL namespace (`attribution:overview`, `connectors:accounts`,
`rules:index`, `unallocated:index`), so templates and tests reverse the same names as before
the pages moved here.
"""

from django.urls import include, path

from attribution.views import (
    allocation_rules,
    connectors,
    exchange_rates,
    explorer,
    ingestion,
    overview,
    rules,
    teams,
    unallocated,
)
from attribution.views.estimates import deployment_accuracy_page

overview_patterns = [
    path("", overview.overview, name="overview"),
    path("explorer/", explorer.explorer_page, name="explorer"),
    path("ingestion/", ingestion.ingestion_page, name="ingestion"),
    path("ingestion/upload/", ingestion.ingestion_upload, name="ingestion-upload"),
    path("ingestion/runs/<int:run_id>/retry/", ingestion.ingestion_run_retry, name="ingestion-retry"),
    path("ingestion/runs/<int:run_id>/rejected/", ingestion.rejected_rows_page, name="rejected-rows"),
    # str, not slug: deployment slugs hold dots (llama-3.1-70b-aws, attribution/slugs.py).
    path("estimates/<str:slug>/", deployment_accuracy_page, name="deployment-accuracy"),
]
connector_patterns = [
    path("", connectors.accounts, name="accounts"),
    path("<int:pk>/test-connection", connectors.account_test_connection, name="account-test-connection"),
    path("<int:pk>/sync", connectors.account_sync_now, name="account-sync"),
]
rule_patterns = [
    path("", rules.rules_page, name="index"),
]
# Settings pages (config/navigation.py's Settings section); each keeps its own namespace.
rate_patterns = [
    path("", exchange_rates.exchange_rates, name="index"),
]
allocation_patterns = [
    path("", allocation_rules.allocation_rules, name="index"),
    path("<int:rule_id>/", allocation_rules.allocation_rule_edit, name="edit"),
]
team_patterns = [
    path("", teams.teams, name="index"),
    path("<int:team_id>/", teams.team_edit, name="edit"),
]
unallocated_patterns = [
    path("", unallocated.unallocated_page, name="index"),
]

urlpatterns = [
    path("", include((overview_patterns, "attribution"))),
    path("accounts/", include((connector_patterns, "connectors"))),
    path("rules/", include((rule_patterns, "rules"))),
    path("unallocated/", include((unallocated_patterns, "unallocated"))),
    path("settings/exchange-rates/", include((rate_patterns, "settings_rates"))),
    path("settings/teams/", include((team_patterns, "settings_teams"))),
    path("settings/allocation-rules/", include((allocation_patterns, "settings_allocation"))),
]
