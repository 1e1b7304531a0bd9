"""Quotas over the API, each with the limit in force after throttles and blocks."""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api.base import RestrictedReadOnlyViewSet
from attribution.api.fields import SlugRelatedField
from attribution.models import ServedModel, Team
from governance import quota_services
from governance.api.budgets import TokenHasScopes, service_errors
from governance.choices import QuotaMetric, QuotaWindow
from governance.models import Quota
from governance.selectors import enforcement_active, quota_limit_effective


class QuotaSerializer(serializers.ModelSerializer):
    team = SlugRelatedField(slug_field="slug", queryset=Team.objects.all())
    model = SlugRelatedField(
        slug_field="slug", queryset=ServedModel.objects.all(), required=False, allow_null=True
    )
    gateway_id = serializers.IntegerField(required=False, allow_null=True, help_text="A routing gateway's id")
    metric = serializers.ChoiceField(choices=QuotaMetric.choices)
    window = serializers.ChoiceField(choices=QuotaWindow.choices)
    limit = serializers.IntegerField(help_text="Configured limit (> 0)")
    effective_limit = serializers.SerializerMethodField(
        help_text="After throttle (cut) and block (0) actions"
    )
    effective_reason = serializers.SerializerMethodField()

    class Meta:
        model = Quota
        fields = [
            "id",
            "team",
            "model",
            "gateway_id",
            "metric",
            "window",
            "limit",
            "effective_limit",
            "effective_reason",
        ]
        validators: list = []  # the service checks uniqueness, with its message

    def _effective(self, quota: Quota) -> tuple[int, str]:
        states = self.context.setdefault("enforcement_states", enforcement_active())
        return quota_limit_effective(
            configured=quota.limit, team_id=quota.team_id, model_id=quota.model_id, states=states
        )

    def get_effective_limit(self, quota: Quota) -> int:
        return self._effective(quota)[0]

    def get_effective_reason(self, quota: Quota) -> str:
        return self._effective(quota)[1]


class QuotaFilterSet(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug")
    model = django_filters.CharFilter(field_name="model__slug", help_text="Model slug")

    class Meta:
        model = Quota
        fields = ["team", "model", "metric", "window", "gateway_id"]


_QUOTA_REQUEST = OpenApiExample(
    "20,000 tokens a minute for Search on Llama 3.1 70B",
    request_only=True,
    value={"team": "search", "model": "llama-3-1-70b-instruct", "metric": "tokens", "window": "minute",
           "limit": 20000},
)  # fmt: skip
_QUOTA_ANSWER = OpenApiExample(
    "A quota halved by a throttle in force",
    response_only=True,
    value={"id": 12, "team": "search", "model": "llama-3-1-70b-instruct", "gateway_id": None,
           "metric": "tokens", "window": "minute", "limit": 20000, "effective_limit": 10000,
           "effective_reason": "Search monthly at 90% of forecast spend"},
)  # fmt: skip
_QUOTA_INVALID = OpenApiExample(
    "Refused: not a positive limit",
    response_only=True,
    status_codes=["400"],
    value={"limit": ["limit must be a whole number above zero, got 0."]},
)


@extend_schema_view(
    list=extend_schema(examples=[_QUOTA_ANSWER]),
    retrieve=extend_schema(examples=[_QUOTA_ANSWER]),
    create=extend_schema(examples=[_QUOTA_REQUEST, _QUOTA_ANSWER, _QUOTA_INVALID]),
    update=extend_schema(examples=[_QUOTA_REQUEST, _QUOTA_ANSWER, _QUOTA_INVALID]),
)
class QuotaViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, RestrictedReadOnlyViewSet
):
    """Token and request quotas per team × model (optionally per gateway)."""

    permission_classes = [permissions.IsAuthenticated, TokenHasScopes]
    write_scope = "quotas"
    http_method_names = ["get", "post", "put", "delete", "head", "options"]
    queryset = Quota.objects.select_related("team", "model").order_by("team__name", "model__name", "id")
    serializer_class = QuotaSerializer
    filterset_class = QuotaFilterSet

    def _values(self, request: Request) -> dict:
        payload = QuotaSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        values = dict(payload.validated_data)
        return {
            "team_id": values["team"].pk,
            "model_id": values["model"].pk if values.get("model") else None,
            "gateway_id": values.get("gateway_id"),
            "metric": values["metric"],
            "window": values["window"],
            "limit": values["limit"],
        }

    def create(self, request: Request, *args, **kwargs) -> Response:
        try:
            quota = quota_services.quota_save(
                actor=request.user, values=self._values(request), remote_addr=request.META.get("REMOTE_ADDR")
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(QuotaSerializer(quota).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        quota = self.get_object()
        try:
            quota = quota_services.quota_save(
                actor=request.user, values=self._values(request), quota=quota,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )  # fmt: skip
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(QuotaSerializer(quota).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        quota_services.quota_delete(
            actor=request.user, quota=self.get_object(), remote_addr=request.META.get("REMOTE_ADDR")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
