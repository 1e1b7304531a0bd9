"""Budget thresholds as their own resource: `/api/v1/thresholds`.

Read by whoever sees the threshold's budget; created, changed and deleted by admin, finance and the
leads of the budget's team (governance.access), each change audited by the service
(governance.threshold_services). `/api/v1/budgets` still takes a budget's thresholds as a whole.
"""

from __future__ import annotations

from decimal import Decimal

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api.base import RestrictedReadOnlyViewSet
from governance import threshold_services
from governance.api.budgets import ThresholdInputSerializer, TokenHasScopes, service_errors
from governance.budget_services import ThresholdData
from governance.models import Budget, BudgetThreshold

CENT = Decimal("0.01")


class ThresholdSerializer(serializers.ModelSerializer):
    budget = serializers.PrimaryKeyRelatedField(read_only=True, help_text="Budget id")
    limit = serializers.SerializerMethodField(help_text="The spend at which it is crossed, budget currency")
    currency = serializers.CharField(source="budget.currency", read_only=True)
    effective_action = serializers.CharField(read_only=True, help_text="Its action, or the budget's")

    class Meta:
        model = BudgetThreshold
        fields = [
            "id", "budget", "percent", "amount", "basis", "action", "effective_action",
            "throttle_share", "limit", "currency",
        ]  # fmt: skip
        read_only_fields = fields

    def get_limit(self, threshold: BudgetThreshold) -> str:
        return str(threshold.limit_for(threshold.budget.amount).quantize(CENT))


class ThresholdWriteSerializer(ThresholdInputSerializer):
    budget = serializers.IntegerField(help_text="Budget id (a budget you may see)")


class ThresholdFilterSet(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="budget__team__slug", help_text="Team slug of the budget")

    class Meta:
        model = BudgetThreshold
        fields = ["budget", "team", "basis", "action"]


_CREATE = OpenApiExample(
    "Block the team at 100 % of actual spend",
    request_only=True,
    value={"budget": 7, "percent": "100", "basis": "actual", "action": "block"},
)
_THROTTLE = OpenApiExample(
    "Halve the team's quotas when the forecast reaches 4,500",
    request_only=True,
    value={
        "budget": 7,
        "amount": "4500.00",
        "basis": "forecast",
        "action": "throttle",
        "throttle_share": "0.5",
    },
)
_ANSWER = OpenApiExample(
    "A threshold",
    response_only=True,
    value={
        "id": 31, "budget": 7, "percent": "100.00", "amount": None, "basis": "actual", "action": "block",
        "effective_action": "block", "throttle_share": None, "limit": "5000.00", "currency": "USD",
    },
)  # fmt: skip
_INVALID = OpenApiExample(
    "Refused: over 1,000 %",
    response_only=True,
    status_codes=["400"],
    value={"percent": ["Percent must be above 0 and at most 1000, got 1500."]},
)


@extend_schema_view(
    list=extend_schema(examples=[_ANSWER]),
    retrieve=extend_schema(examples=[_ANSWER]),
    create=extend_schema(
        request=ThresholdWriteSerializer,
        responses={201: ThresholdSerializer},
        examples=[_CREATE, _THROTTLE, _ANSWER, _INVALID],
    ),
    update=extend_schema(
        request=ThresholdWriteSerializer,
        responses={200: ThresholdSerializer},
        examples=[_CREATE, _ANSWER, _INVALID],
    ),
)
class ThresholdViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, RestrictedReadOnlyViewSet
):
    """Thresholds of the budgets you see. Admin and finance edit all; team leads their teams'."""

    permission_classes = [permissions.IsAuthenticated, TokenHasScopes]
    write_scope = "budgets"
    http_method_names = ["get", "post", "put", "delete", "head", "options"]
    queryset = BudgetThreshold.objects.select_related("budget").order_by(
        "budget_id", "percent", "amount", "id"
    )
    serializer_class = ThresholdSerializer
    filterset_class = ThresholdFilterSet

    def _data(self, request: Request) -> tuple[int, ThresholdData]:
        payload = ThresholdWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        values = payload.validated_data
        data = ThresholdData(
            percent=values.get("percent"),
            amount=values.get("amount"),
            basis=values["basis"],
            action=values.get("action", ""),
            throttle_share=values.get("throttle_share"),
        )
        return values["budget"], data

    def _budget(self, budget_id: int) -> Budget:
        # Only a budget the caller sees; another team's is "not found", as its detail URL is.
        budget = Budget.objects.restrict(self.request.user).filter(pk=budget_id).first()
        if budget is None:
            raise serializers.ValidationError({"budget": [f"No budget with id {budget_id}."]})
        return budget

    def _reread(self, threshold: BudgetThreshold) -> dict:
        # As stored (numbers at the column's scale), as a GET of it answers.
        return ThresholdSerializer(BudgetThreshold.objects.select_related("budget").get(pk=threshold.pk)).data

    def create(self, request: Request, *args, **kwargs) -> Response:
        budget_id, data = self._data(request)
        try:
            threshold = threshold_services.threshold_create(
                actor=request.user, budget=self._budget(budget_id), data=data,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )  # fmt: skip
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(self._reread(threshold), status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        threshold = self.get_object()
        budget_id, data = self._data(request)
        if budget_id != threshold.budget_id:
            raise serializers.ValidationError(
                {
                    "budget": [
                        f"A threshold stays with its budget ({threshold.budget_id}); "
                        f"create one on budget {budget_id} instead."
                    ]
                }
            )
        try:
            threshold = threshold_services.threshold_update(
                actor=request.user,
                threshold=threshold,
                data=data,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(self._reread(threshold))

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        threshold_services.threshold_delete(
            actor=request.user, threshold=self.get_object(), remote_addr=request.META.get("REMOTE_ADDR")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
