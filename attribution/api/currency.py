"""Exchange rates, read side. Rates are shared reference data (no team), readable by any caller.

Writes live in governance/api/currency.py, because every change to a rate is audited and the audit
log belongs to governance, a higher layer that attribution never imports.
"""

from __future__ import annotations

import django_filters
from rest_framework import serializers

from attribution.api.base import RestrictedReadOnlyViewSet
from attribution.models import ExchangeRate


class ExchangeRateSerializer(serializers.ModelSerializer):
    rate = serializers.DecimalField(
        max_digits=24, decimal_places=12, read_only=True, help_text="1 from_currency = rate to_currency"
    )

    class Meta:
        model = ExchangeRate
        fields = ["id", "date", "from_currency", "to_currency", "rate", "source", "created_at"]
        read_only_fields = fields


class ExchangeRateFilterSet(django_filters.FilterSet):
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte", help_text="First date")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte", help_text="Last date")
    from_currency = django_filters.CharFilter(field_name="from_currency", help_text="ISO 4217, e.g. EUR")
    to_currency = django_filters.CharFilter(field_name="to_currency", help_text="ISO 4217, e.g. USD")

    class Meta:
        model = ExchangeRate
        fields = ["date_from", "date_to", "from_currency", "to_currency", "source"]


class ExchangeRateReadViewSet(RestrictedReadOnlyViewSet):
    """Dated exchange rates (1 from_currency = rate to_currency), newest first."""

    queryset = ExchangeRate.objects.order_by("-date", "from_currency", "to_currency", "id")
    serializer_class = ExchangeRateSerializer
    filterset_class = ExchangeRateFilterSet
