"""`POST /api/v1/leases`: gateways draw a budget's or quota's allowance in grants (see the README's
lease protocol and governance.lease_services)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import permissions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import perform_import
from rest_framework.views import APIView

from governance.api.budgets import service_errors
from governance.lease_services import lease_request


class IsGatewayPrincipal(permissions.BasePermission):
    """The caller authenticated with a gateway token (its principal carries the gateway)."""

    message = "Leases are for gateways: authenticate with the gateway's token (manage.py gateway_token SLUG)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return getattr(request.user, "gateway", None) is not None


class LeaseRequestSerializer(serializers.Serializer):
    budget = serializers.IntegerField(required=False, allow_null=True, help_text="Budget id (money leases)")
    quota = serializers.IntegerField(
        required=False, allow_null=True, help_text="Quota id (token/request leases)"
    )
    amount = serializers.DecimalField(
        max_digits=24,
        decimal_places=10,
        help_text="Allowance asked for: money in the budget's currency, or tokens/requests",
    )
    renew = serializers.IntegerField(
        required=False, allow_null=True, help_text="Id of the lease this one replaces"
    )
    used = serializers.DecimalField(
        max_digits=24,
        decimal_places=10,
        required=False,
        allow_null=True,
        help_text="How much of `renew` was used",
    )


class LeaseGrantSerializer(serializers.Serializer):
    lease = serializers.IntegerField(allow_null=True)
    granted = serializers.DecimalField(max_digits=24, decimal_places=10)
    unit = serializers.CharField(help_text="money, tokens or requests")
    expires_at = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(
        allow_null=True, help_text="When the period/window (and its pool) ends"
    )
    limit = serializers.DecimalField(max_digits=24, decimal_places=10, allow_null=True)
    remaining = serializers.DecimalField(max_digits=24, decimal_places=10, allow_null=True)
    blocked = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)


class LeaseView(APIView):
    authentication_classes = perform_import(
        settings.LEASE_AUTHENTICATION_CLASSES, "LEASE_AUTHENTICATION_CLASSES"
    )
    permission_classes = [IsGatewayPrincipal]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="leases_create",
        request=LeaseRequestSerializer,
        responses={200: LeaseGrantSerializer},
        tags=["leases"],
        examples=[
            OpenApiExample(
                "First lease on a budget", request_only=True, value={"budget": 7, "amount": "5.00"}
            ),
            OpenApiExample(
                "Renewal: return lease 41 having used 4.20, ask for 5.00 more",
                request_only=True,
                value={"budget": 7, "amount": "5.00", "renew": 41, "used": "4.20"},
            ),
            OpenApiExample(
                "Granted",
                response_only=True,
                value={
                    "lease": 42,
                    "granted": "5.0000000000",
                    "unit": "money",
                    "expires_at": "2026-11-10T12:00:30Z",
                    "window_end": "2026-12-01T00:00:00Z",
                    "limit": "1000.0000000000",
                    "remaining": "312.5000000000",
                    "blocked": False,
                    "reason": "",
                },
            ),  # fmt: skip
        ],
    )
    def post(self, request: Request) -> Response:
        """Ask for an allowance; the answer is what may be spent until `expires_at` (0 when blocked)."""
        payload = LeaseRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        try:
            grant = lease_request(
                holder=request.user.get_username(),
                amount=values["amount"],
                budget_id=values.get("budget"),
                quota_id=values.get("quota"),
                renew_lease_id=values.get("renew"),
                used=values.get("used"),
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        body = {
            "lease": grant.lease_id,
            "granted": grant.granted,
            "unit": grant.unit,
            "expires_at": grant.expires_at,
            "window_end": grant.window_end,
            "limit": grant.limit,
            "remaining": grant.remaining,
            "blocked": grant.blocked,
            "reason": grant.reason,
        }
        return Response(LeaseGrantSerializer(body).data)
