from __future__ import annotations

import django_filters

from routing.models import PolicyDocument


class PolicyDocumentFilterSet(django_filters.FilterSet):
    gateway = django_filters.CharFilter(field_name="gateway__slug", help_text="Gateway slug")
    version_min = django_filters.NumberFilter(field_name="version", lookup_expr="gte")

    class Meta:
        model = PolicyDocument
        fields = ["gateway", "version", "version_min"]
