"""Alerts (read, acknowledge) and notification channels (CRUD, test-send) over the API."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api.base import RestrictedReadOnlyViewSet
from attribution.api.fields import SlugRelatedField
from attribution.models import Team
from governance import alert_services
from governance.api.budgets import TokenHasScopes, service_errors
from governance.choices import AlertKind, ChannelKind
from governance.models import Alert, AlertDelivery, NotificationChannel


class AlertDeliverySerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel.name", read_only=True)

    class Meta:
        model = AlertDelivery
        fields = [
            "id",
            "channel",
            "state",
            "attempts",
            "last_status",
            "last_error",
            "log",
            "sent_at",
            "next_attempt_at",
        ]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    team = SlugRelatedField(slug_field="slug", read_only=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", read_only=True, default=None)
    deliveries = AlertDeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "kind", "severity", "team", "budget", "message", "details", "created_at",
            "acknowledged_at", "acknowledged_by", "deliveries",
        ]  # fmt: skip
        read_only_fields = fields


class AlertFilterSet(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug")
    state = django_filters.ChoiceFilter(
        choices=[("open", "Open"), ("acknowledged", "Acknowledged")],
        method="filter_state",
        help_text="open / acknowledged",
    )

    class Meta:
        model = Alert
        fields = ["team", "kind", "severity", "budget", "state"]

    def filter_state(self, queryset, name, value):
        return queryset.filter(acknowledged_at__isnull=(value == "open"))


_ALERT_ANSWER = OpenApiExample(
    "An acknowledged budget alert with its webhook delivery",
    response_only=True,
    value={
        "id": 5, "kind": "budget", "severity": "critical", "team": "search", "budget": 7,
        "message": "Search monthly: actual spend 5,012.40 USD reached 100 % of actual spend (5,000.00 USD); "
                   "action: block",
        "details": {"spend": "5012.40", "limit": "5000.00", "currency": "USD"},
        "created_at": "2026-11-20T08:01:12Z", "acknowledged_at": "2026-11-20T08:15:40Z",
        "acknowledged_by": "lena",
        "deliveries": [
            {"id": 9, "channel": "ops webhook", "state": "sent", "attempts": 1, "last_status": 200,
             "last_error": "", "log": [], "sent_at": "2026-11-20T08:01:13Z", "next_attempt_at": None},
        ],
    },
)  # fmt: skip


@extend_schema_view(
    list=extend_schema(examples=[_ALERT_ANSWER]), retrieve=extend_schema(examples=[_ALERT_ANSWER])
)
class AlertViewSet(RestrictedReadOnlyViewSet):
    """Alerts of the teams the caller may see (admin and finance: all). Leads acknowledge theirs."""

    permission_classes = [permissions.IsAuthenticated, TokenHasScopes]
    write_scope = "alerts"
    queryset = (
        Alert.objects.select_related("team", "acknowledged_by")
        .prefetch_related("deliveries__channel")
        .order_by("-created_at", "-id")
    )
    serializer_class = AlertSerializer
    filterset_class = AlertFilterSet

    @extend_schema(request=None, responses={200: AlertSerializer}, examples=[_ALERT_ANSWER])
    @action(detail=True, methods=["post"])
    def ack(self, request: Request, pk: str | None = None) -> Response:
        """Acknowledge the alert (once; repeating it changes nothing)."""
        alert = alert_services.alert_acknowledge(
            alert=self.get_object(), actor=request.user, remote_addr=request.META.get("REMOTE_ADDR")
        )
        return Response(AlertSerializer(self.get_queryset().get(pk=alert.pk)).data)


class ChannelSerializer(serializers.ModelSerializer):
    team = SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=AlertKind.choices),
        required=False,
        help_text="Empty = every kind",
    )
    secret_reference = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Signed webhooks: env:NAME or file:/path (never the secret)",
    )

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "kind", "target", "secret_reference", "team", "kinds", "is_active"]
        # Uniqueness is checked by the service, with its message.
        extra_kwargs = {"name": {"validators": []}}


_CHANNEL_EXAMPLE = OpenApiExample(
    "Signed webhook for one team's budget alerts",
    request_only=True,
    value={
        "name": "search-oncall", "kind": "webhook", "target": "https://hooks.example.com/inferensys",
        "secret_reference": "env:SEARCH_WEBHOOK_SECRET", "team": "search",
        "kinds": ["budget_threshold", "anomaly"],
    },
)  # fmt: skip


@extend_schema_view(
    create=extend_schema(examples=[_CHANNEL_EXAMPLE]), update=extend_schema(examples=[_CHANNEL_EXAMPLE])
)
class ChannelViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, RestrictedReadOnlyViewSet
):
    """Notification channels: admin and finance manage all; team leads their teams' channels."""

    permission_classes = [permissions.IsAuthenticated, TokenHasScopes]
    write_scope = "channels"
    http_method_names = ["get", "post", "put", "delete", "head", "options"]
    queryset = NotificationChannel.objects.select_related("team").order_by("name", "id")
    serializer_class = ChannelSerializer
    filterset_fields = ["kind", "is_active"]

    def _values(self, request: Request) -> dict:
        payload = ChannelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        values = dict(payload.validated_data)
        team = values.pop("team", None)
        values["team_id"] = team.pk if team else None
        return values

    def create(self, request: Request, *args, **kwargs) -> Response:
        try:
            channel = alert_services.channel_save(
                actor=request.user, values=self._values(request), remote_addr=request.META.get("REMOTE_ADDR")
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        channel = self.get_object()
        try:
            channel = alert_services.channel_save(
                actor=request.user, values=self._values(request), channel=channel,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )  # fmt: skip
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(ChannelSerializer(channel).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        alert_services.channel_delete(
            actor=request.user, channel=self.get_object(), remote_addr=request.META.get("REMOTE_ADDR")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: AlertDeliverySerializer})
    @action(detail=True, methods=["post"], url_path="test")
    def test_send(self, request: Request, pk: str | None = None) -> Response:
        """Send a test message now; the answer is the delivery with its outcome."""
        delivery = alert_services.channel_test_send(
            channel=self.get_object(), actor=request.user, remote_addr=request.META.get("REMOTE_ADDR")
        )
        return Response(AlertDeliverySerializer(delivery).data)
