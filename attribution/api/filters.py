"""FilterSets of the attribution API. Related objects are filtered by slug."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms

from attribution.choices import ChargeCategory, IngestState, Provider
from attribution.models import DailyCost, Deployment, IngestRun


class DayRangeForm(forms.Form):
    def clean(self) -> dict:
        cleaned = super().clean()
        day_from, day_to = cleaned.get("day_from"), cleaned.get("day_to")
        if day_from and day_to and day_from > day_to:
            raise forms.ValidationError("day_from must be on or before day_to.")
        return cleaned


class DeploymentFilterSet(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model__slug", help_text="Model slug")
    account = django_filters.CharFilter(field_name="account__slug", help_text="Cloud account slug")
    provider = django_filters.MultipleChoiceFilter(choices=Provider.choices)

    class Meta:
        model = Deployment
        fields = ["model", "account", "provider", "region", "pricing_mode", "state"]


class IngestRunFilterSet(django_filters.FilterSet):
    account = django_filters.CharFilter(field_name="account__slug", help_text="Cloud account slug")
    state = django_filters.MultipleChoiceFilter(choices=IngestState.choices)
    billing_period = django_filters.DateFilter(
        field_name="billing_period_start", help_text="First day of the billing period, e.g. 2026-10-01"
    )

    class Meta:
        model = IngestRun
        fields = ["account", "state", "billing_period"]


class DailyCostFilterSet(django_filters.FilterSet):
    day_from = django_filters.DateFilter(
        field_name="day", lookup_expr="gte", help_text="First day, inclusive"
    )
    day_to = django_filters.DateFilter(field_name="day", lookup_expr="lte", help_text="Last day, inclusive")
    account = django_filters.CharFilter(field_name="account__slug", help_text="Cloud account slug")
    provider = django_filters.MultipleChoiceFilter(choices=Provider.choices)
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug")
    unallocated = django_filters.BooleanFilter(
        field_name="team", lookup_expr="isnull", help_text="true: only cost that no team carries"
    )
    model = django_filters.CharFilter(field_name="model__slug", help_text="Model slug")
    deployment = django_filters.CharFilter(field_name="deployment__slug", help_text="Deployment slug")
    sku = django_filters.CharFilter(field_name="sku_id", help_text="SKU (FOCUS SkuId)")
    charge_category = django_filters.MultipleChoiceFilter(choices=ChargeCategory.choices)
    currency = django_filters.CharFilter(field_name="billing_currency", help_text="ISO 4217 code, e.g. USD")

    class Meta:
        model = DailyCost
        form = DayRangeForm
        fields = [
            "day_from",
            "day_to",
            "account",
            "provider",
            "team",
            "unallocated",
            "model",
            "deployment",
            "sku",
            "charge_category",
            "currency",
        ]


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, turned to UTC before it reaches a query: Python accepts offsets up to
    24 hours (2025-08-03T07:25:12-21:29) where Postgres refuses anything past 15:59 with a 500."""

    def to_python(self, value):
        parsed = super().to_python(value)
        return parsed.astimezone(dt.UTC) if parsed is not None and parsed.tzinfo is not None else parsed


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
