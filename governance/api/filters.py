from __future__ import annotations

import django_filters

from attribution.api.filters import UtcIsoDateTimeFilter
from governance.models import AuditEvent, Budget


class BudgetFilterSet(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug")
    model = django_filters.CharFilter(field_name="model__slug", help_text="Model slug")
    account = django_filters.CharFilter(field_name="account__slug", help_text="Cloud account slug")

    class Meta:
        model = Budget
        fields = ["team", "model", "account", "provider", "period", "action", "is_active"]


class AuditEventFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_label", help_text="Username at the time")
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "object_type", "object_id", "since", "until"]
