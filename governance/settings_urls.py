"""Governance's Settings pages, mounted at /settings/ by config/urls.py."""

from django.urls import path

from governance import members_views, settings_views

app_name = "settings_governance"

urlpatterns = [
    path("api-tokens/", settings_views.api_tokens, name="api-tokens"),
    path("api-tokens/<int:token_id>/revoke", settings_views.api_token_revoke_view, name="api-token-revoke"),
    path("channels/", settings_views.channels, name="channels"),
    path("channels/<int:channel_id>/", settings_views.channel_edit, name="channel-edit"),
    path("channels/<int:channel_id>/test", settings_views.channel_test, name="channel-test"),
    path("members/", members_views.members, name="members"),
    path("members/<int:user_id>/", members_views.member_edit, name="member-edit"),
]
