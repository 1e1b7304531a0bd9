"""Exchange rates over the API: GET for any caller (the attribution read view), POST for admin and
finance only, every created or changed rate recorded in the audit log in the same transaction."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import mixins, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.allocation.currency import ExchangeRateRowError, exchange_rates_upsert
from attribution.api.base import TokenScopePermission
from attribution.api.currency import ExchangeRateReadViewSet
from governance.api.permissions import IsAdminOrFinance
from governance.services import audit_event_record

MAX_RATES_PER_REQUEST = 5000


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


class ExchangeRateViewSet(mixins.CreateModelMixin, ExchangeRateReadViewSet):
    """Dated exchange rates. Anyone signed in may read them; admin and finance may load them."""

    token_write_scope = "write:exchange_rates"

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.request is not None and self.request.method not in permissions.SAFE_METHODS:
            return [permissions.IsAuthenticated(), TokenScopePermission(), IsAdminOrFinance()]
        return super().get_permissions()

    @extend_schema(
        summary="Load exchange rates (upsert by date, from, to); admin and finance only, audited",
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
            with transaction.atomic():
                changes = exchange_rates_upsert(rows=rows, source=payload.validated_data["source"])
                for change in changes:
                    audit_event_record(
                        actor=request.user,
                        action="create" if change.created else "update",
                        obj=change.rate,
                        changes={
                            "rate": [
                                None if change.previous_rate is None else str(change.previous_rate),
                                str(change.rate.rate),
                            ],
                            "source": [change.previous_source, change.rate.source],
                        },
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
