"""`POST /api/v1/leases`: gateways draw a budget's or quota's allowance in grants (see the README's
lease protocol and governance.lease_services)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, permissions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import perform_import
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from attribution.api.access import token_rate_check
from governance.api.budgets import service_errors
from governance.lease_services import LeaseGrant, lease_request


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
        try:
            body = _grant(holder=request.user.get_username(), values=payload.validated_data)
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(body)


def _grant(*, holder: str, values: dict) -> dict:
    """The service call and the answer, for both paths below."""
    grant = lease_request(
        holder=holder,
        amount=values["amount"],
        budget_id=values.get("budget"),
        quota_id=values.get("quota"),
        renew_lease_id=values.get("renew"),
        used=values.get("used"),
    )
    return lease_answer(grant)


# LeaseGrantSerializer's fields, made once: a serializer deep-copies its declared fields each time
# it is made, which cost more than the rest of the answer. Same fields, same formatting.
_MONEY = LeaseGrantSerializer._declared_fields["granted"]
_TIME = LeaseGrantSerializer._declared_fields["expires_at"]


def _money(value) -> str | None:
    return None if value is None else _MONEY.to_representation(value)


def _time(value) -> str | None:
    return None if value is None else _TIME.to_representation(value)


def lease_answer(grant: LeaseGrant) -> dict:
    """What LeaseGrantSerializer answers for `grant` (tests/governance/test_leases.py compares them)."""
    return {
        "lease": grant.lease_id,
        "granted": _money(grant.granted),
        "unit": grant.unit,
        "expires_at": _time(grant.expires_at),
        "window_end": _time(grant.window_end),
        "limit": _money(grant.limit),
        "remaining": _money(grant.remaining),
        "blocked": grant.blocked,
        "reason": grant.reason,
    }


_REQUEST_FIELDS = frozenset(LeaseRequestSerializer._declared_fields)
_AMOUNT = LeaseRequestSerializer._declared_fields["amount"]


def _lease_values(payload: object) -> dict | None:
    """What LeaseRequestSerializer validates `payload` to, for the shape gateways send (ids as JSON
    numbers, amounts as strings); None for anything else, which the serializer itself then decides
    (the DRF view answers its errors). Same fields, same decimal parsing and rounding."""
    if not isinstance(payload, dict) or not payload.keys() <= _REQUEST_FIELDS:
        return None
    values: dict = {}
    for name in ("budget", "quota", "renew"):
        value = payload.get(name)
        if value is not None and type(value) is not int:
            return None
        values[name] = value
    for name in ("amount", "used"):
        value = payload.get(name)
        if value is None:
            if name == "amount":
                return None
            values[name] = None
            continue
        if not isinstance(value, str):
            return None
        try:
            values[name] = _AMOUNT.to_internal_value(value)
        except serializers.ValidationError:
            return None
    return values


_lease_drf_view = LeaseView.as_view()
_ACCEPTED = ("", "*/*", "application/json", "application/*")


def _json_response(body: object, status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    """As DRF's JSONRenderer writes it (compact, UTF-8), with the headers its answer carries."""
    response = HttpResponse(
        json.dumps(body, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":")),
        content_type="application/json",
        status=status,
        headers={"Allow": "POST, OPTIONS", "Vary": "Accept", **(headers or {})},
    )
    return response


def _gateway_caller(request: HttpRequest) -> tuple[str, object] | None:
    """(holder, gateway) when LeaseView's own authentication classes accept the request as a
    gateway; None for anything else, which the DRF view then answers (401, 403)."""
    for authentication_class in LeaseView.authentication_classes:
        try:
            authenticated = authentication_class().authenticate(request)
        except exceptions.APIException:
            return None
        if authenticated is not None:
            user, gateway = authenticated
            if getattr(user, "gateway", None) is None:
                return None
            return user.get_username(), gateway
    return None


@csrf_exempt  # as every DRF view; gateways send a token, never a cookie
def lease_endpoint(request: HttpRequest) -> HttpResponse:
    """The hot path of LeaseView: every replica of every gateway calls it every few seconds.

    A JSON POST from a gateway with a valid body is answered here, without DRF's request wrapping,
    content negotiation and exception handling, which cost more than the grant itself. The same
    authentication classes, the same request serializer and rate count (the gateway token's
    one-minute counter, token_rate_hit, shared with DRF's throttle), the same service and the same
    answer. Anything else (another method or media type, no or a bad token, a body the serializer
    refuses) goes to the DRF view, which authenticates again and answers as it always has; it is
    counted there, once."""
    if (
        request.method != "POST"
        or request.content_type != "application/json"
        or request.headers.get("Accept", "") not in _ACCEPTED
    ):
        return _lease_drf_view(request)
    # The body first: authentication counts the request against the token's rate, and a request
    # handed to the DRF view is counted there.
    try:
        values = _lease_values(json.loads(request.body))
    except ValueError:
        return _lease_drf_view(request)
    if values is None:
        payload = LeaseRequestSerializer(data=json.loads(request.body))
        if not payload.is_valid():
            return _lease_drf_view(request)
        values = payload.validated_data
    caller = _gateway_caller(request)
    if caller is None:
        return _lease_drf_view(request)
    holder, gateway = caller
    within_rate, retry_after = token_rate_check(gateway)
    if not within_rate:
        throttled = exceptions.Throttled(wait=retry_after)
        return _json_response({"detail": throttled.detail}, 429, {"Retry-After": str(retry_after)})
    try:
        body = _grant(holder=holder, values=values)
    except DjangoValidationError as error:
        return _json_response(service_errors(error).detail, 400)
    return _json_response(body, 200)


# drf-spectacular documents the operation from these, as for any DRF view's as_view().
lease_endpoint.cls = LeaseView
lease_endpoint.initkwargs = {}
