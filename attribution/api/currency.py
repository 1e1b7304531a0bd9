"""Exchange rates over the API: GET for any caller (rates are shared reference data, no team),
POST to load rates for holders of attribution.add_exchangerate and change_exchangerate (see
setup_roles); a load that changes anything is audited by the service as one summarising event."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.api.base import RestrictedReadOnlyViewSet, TokenScopePermission
from attribution.currency.services import ExchangeRateRowError, exchange_rates_upsert
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


MAX_RATES_PER_REQUEST = 5000
LOAD_PERMISSIONS = ("attribution.add_exchangerate", "attribution.change_exchangerate")


class ExchangeRateInputSerializer(serializers.Serializer):
    date = serializers.CharField(help_text="ISO date, e.g. 2026-10-20")
    # `from` is a Python keyword, so the wire name is mapped explicitly.
    from_currency = serializers.CharField(help_text="ISO 4217 code, e.g. EUR")
    to_currency = serializers.CharField(help_text="ISO 4217 code, e.g. USD")
    rate = serializers.CharField(help_text="Decimal string: 1 from_currency = rate to_currency")


class ExchangeRateLoadSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=100, required=False, allow_blank=True, default="api")
    rates = ExchangeRateInputSerializer(many=True, allow_empty=False)

    def validate_rates(self, value: list) -> list:
        if len(value) > MAX_RATES_PER_REQUEST:
            raise serializers.ValidationError(
                f"At most {MAX_RATES_PER_REQUEST} rates per request; split the load (got {len(value)})."
            )
        return value


class CanLoadRates(permissions.BasePermission):
    message = (
        "Loading exchange rates needs the attribution.add_exchangerate and change_exchangerate permissions."
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(LOAD_PERMISSIONS))


class ExchangeRateViewSet(mixins.CreateModelMixin, ExchangeRateReadViewSet):
    """Dated exchange rates. Anyone signed in may read them; holders of the rate permissions load them."""

    token_write_scope = "write:exchange_rates"

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.request is not None and self.request.method not in permissions.SAFE_METHODS:
            return [permissions.IsAuthenticated(), TokenScopePermission(), CanLoadRates()]
        return super().get_permissions()

    @extend_schema(
        summary="Load exchange rates (upsert by date, from, to); needs the rate permissions, audited",
        request=ExchangeRateLoadSerializer,
        responses={
            201: inline_serializer(
                "ExchangeRateLoadResult",
                {
                    "created": serializers.IntegerField(),
                    "updated": serializers.IntegerField(),
                    "unchanged": serializers.IntegerField(),
                },
            ),
            400: inline_serializer(
                "ExchangeRateLoadErrors",
                {
                    "rates": serializers.JSONField(
                        required=False,
                        help_text="Per rate (numbered from 1, or by index if malformed): what is wrong",
                    ),
                    "source": serializers.ListField(child=serializers.CharField(), required=False),
                },
            ),
        },
        examples=[
            OpenApiExample(
                "Two daily EUR rates",
                request_only=True,
                value={
                    "source": "ecb",
                    "rates": [
                        {
                            "date": "2026-10-19",
                            "from_currency": "EUR",
                            "to_currency": "USD",
                            "rate": "1.0842",
                        },
                        {
                            "date": "2026-10-20",
                            "from_currency": "EUR",
                            "to_currency": "USD",
                            "rate": "1.0817",
                        },
                    ],
                },
            )
        ],
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        payload = ExchangeRateLoadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rows = [
            {
                "date": rate["date"],
                "from": rate["from_currency"],
                "to": rate["to_currency"],
                "rate": rate["rate"],
            }
            for rate in payload.validated_data["rates"]
        ]
        try:
            changes = exchange_rates_upsert(
                rows=rows,
                source=payload.validated_data["source"],
                actor=request.user,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )
        except ExchangeRateRowError as error:
            # Rows are numbered from 1 in the order they were sent.
            return Response({"rates": error.errors}, status=status.HTTP_400_BAD_REQUEST)
        created = sum(1 for change in changes if change.created)
        return Response(
            {"created": created, "updated": len(changes) - created, "unchanged": len(rows) - len(changes)},
            status=status.HTTP_201_CREATED,
        )
