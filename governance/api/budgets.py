"""Budgets over the API: read by anyone who may see them, written by admin, finance and the leads of
the budget's team (governance.access), every change audited by the service."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api.base import RestrictedReadOnlyViewSet, TokenScopePermission
from attribution.api.fields import SlugRelatedField
from attribution.models import CloudAccount, ServedModel, Team
from governance import budget_services
from governance.api import filters
from governance.api.serializers import BudgetEventSerializer, BudgetSerializer
from governance.choices import BudgetAction, BudgetPeriod, ThresholdBasis
from governance.models import Budget, BudgetEvent
from governance.selectors import budget_status

# The one scope check (attribution.api.access): `read` for GET, `write` or `write:<write_scope>`
# for changes.
TokenHasScopes = TokenScopePermission


def service_errors(error: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(error, "message_dict"):
        return serializers.ValidationError(error.message_dict)
    return serializers.ValidationError({"non_field_errors": error.messages})


class ThresholdInputSerializer(serializers.Serializer):
    percent = serializers.DecimalField(
        max_digits=12, decimal_places=4, required=False, allow_null=True, help_text="Of the budget amount"
    )
    amount = serializers.DecimalField(
        max_digits=24,
        decimal_places=10,
        required=False,
        allow_null=True,
        help_text="Absolute, budget currency",
    )
    basis = serializers.ChoiceField(choices=ThresholdBasis.choices, default=ThresholdBasis.ACTUAL)
    action = serializers.ChoiceField(
        choices=[("", "The budget's action"), *BudgetAction.choices], required=False, default=""
    )
    throttle_share = serializers.DecimalField(
        max_digits=6, decimal_places=4, required=False, allow_null=True, help_text="Throttle: share cut, 0-1"
    )


def _threshold_paths(errors: dict) -> dict:
    """Errors of nested thresholds under the same field path as the service's: `thresholds[N]`
    (1-based) with "Threshold N: field: message", not DRF's {"thresholds": {"0": {...}}}."""
    nested = errors.get("thresholds")
    items = list(nested.items() if isinstance(nested, dict) else enumerate(nested or []))
    if not items or not all(isinstance(fields, dict) for _, fields in items):
        return errors  # not per-threshold errors (e.g. "thresholds" is not a list)
    flattened = {key: value for key, value in errors.items() if key != "thresholds"}
    for position, fields in items:
        index = int(position) + 1
        for name, messages in fields.items():
            flattened.setdefault(f"thresholds[{index}]", []).extend(
                f"Threshold {index}: {name}: {message}" for message in messages
            )
    return flattened


class BudgetWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    team = SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True)
    model = SlugRelatedField(
        slug_field="slug", queryset=ServedModel.objects.all(), required=False, allow_null=True
    )
    provider = serializers.CharField(required=False, allow_blank=True, default="")
    account = SlugRelatedField(
        slug_field="slug", queryset=CloudAccount.objects.all(), required=False, allow_null=True
    )
    period = serializers.ChoiceField(choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    timezone = serializers.CharField(max_length=64, default="UTC")
    fiscal_year_start_month = serializers.IntegerField(default=1)
    custom_start = serializers.DateField(required=False, allow_null=True)
    custom_end = serializers.DateField(required=False, allow_null=True, help_text="Last day, inclusive")
    amount = serializers.DecimalField(max_digits=24, decimal_places=10)
    currency = serializers.CharField(max_length=8, default="USD")
    action = serializers.ChoiceField(choices=BudgetAction.choices, default=BudgetAction.NOTIFY)
    is_active = serializers.BooleanField(default=True)
    thresholds = ThresholdInputSerializer(many=True, required=False, default=list)

    def to_data(self) -> budget_services.BudgetData:
        values = self.validated_data
        return budget_services.BudgetData(
            name=values["name"],
            amount=values["amount"],
            currency=values["currency"],
            team_id=values["team"].pk if values.get("team") else None,
            model_id=values["model"].pk if values.get("model") else None,
            provider=values.get("provider", ""),
            account_id=values["account"].pk if values.get("account") else None,
            period=values["period"],
            timezone=values["timezone"],
            fiscal_year_start_month=values["fiscal_year_start_month"],
            custom_start=values.get("custom_start"),
            custom_end=values.get("custom_end"),
            action=values["action"],
            is_active=values["is_active"],
            thresholds=[
                budget_services.ThresholdData(
                    percent=item.get("percent"),
                    amount=item.get("amount"),
                    basis=item["basis"],
                    action=item.get("action", ""),
                    throttle_share=item.get("throttle_share"),
                )
                for item in values["thresholds"]
            ],
        )


class BudgetStatusSerializer(serializers.Serializer):
    period_start = serializers.DateField(allow_null=True)
    period_end = serializers.DateField(allow_null=True, help_text="Exclusive")
    currency = serializers.CharField()
    amount = serializers.DecimalField(max_digits=24, decimal_places=2)
    spend_billed = serializers.DecimalField(max_digits=24, decimal_places=2)
    spend_estimated = serializers.DecimalField(max_digits=24, decimal_places=2)
    spend_total = serializers.DecimalField(max_digits=24, decimal_places=2)
    forecast = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    forecast_lower = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    forecast_upper = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)
    forecast_method = serializers.CharField(allow_blank=True)
    backtest_mape = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    actions = serializers.ListField(child=serializers.DictField())
    missing_rates = serializers.ListField(child=serializers.CharField())


_EXAMPLE = OpenApiExample(
    "Team monthly budget that blocks at 100 %",
    request_only=True,
    value={
        "name": "Search monthly",
        "team": "search",
        "period": "month",
        "timezone": "Europe/Berlin",
        "amount": "5000.00",
        "currency": "USD",
        "thresholds": [
            {"percent": "80", "basis": "actual", "action": "notify"},
            {"percent": "100", "basis": "forecast", "action": "throttle", "throttle_share": "0.5"},
            {"percent": "100", "basis": "actual", "action": "block"},
        ],
    },
)


@extend_schema_view(
    create=extend_schema(
        request=BudgetWriteSerializer, responses={201: BudgetSerializer}, examples=[_EXAMPLE]
    ),
    update=extend_schema(
        request=BudgetWriteSerializer, responses={200: BudgetSerializer}, examples=[_EXAMPLE]
    ),
)
class BudgetViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, RestrictedReadOnlyViewSet
):
    """Budgets. Admin and finance see and edit all; team leads edit their teams'; others read theirs."""

    permission_classes = [permissions.IsAuthenticated, TokenHasScopes]
    write_scope = "budgets"
    http_method_names = ["get", "post", "put", "delete", "head", "options"]
    queryset = (
        Budget.objects.select_related("team", "model", "account")
        .prefetch_related("thresholds")
        .order_by("name", "id")
    )
    serializer_class = BudgetSerializer
    filterset_class = filters.BudgetFilterSet

    def _data(self, request: Request) -> budget_services.BudgetData:
        payload = BudgetWriteSerializer(data=request.data)
        if not payload.is_valid():
            raise serializers.ValidationError(_threshold_paths(payload.errors))
        return payload.to_data()

    def _reread(self, budget: Budget) -> dict:
        return BudgetSerializer(self.get_queryset().get(pk=budget.pk)).data

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = self._data(request)
        try:
            budget = budget_services.budget_create(
                actor=request.user, data=data, remote_addr=request.META.get("REMOTE_ADDR")
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(self._reread(budget), status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        budget = self.get_object()
        data = self._data(request)
        try:
            budget = budget_services.budget_update(
                actor=request.user, budget=budget, data=data, remote_addr=request.META.get("REMOTE_ADDR")
            )
        except DjangoValidationError as error:
            raise service_errors(error)
        return Response(self._reread(budget))

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        budget_services.budget_delete(
            actor=request.user, budget=self.get_object(), remote_addr=request.META.get("REMOTE_ADDR")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: BudgetStatusSerializer})
    @action(detail=True, methods=["get"], url_path="status")
    def status_(self, request: Request, pk: str | None = None) -> Response:
        """Spend this period (billed and estimated), forecast, and the actions in force."""
        return Response(BudgetStatusSerializer(budget_status(budget=self.get_object())).data)

    @extend_schema(responses={200: BudgetEventSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="events")
    def events(self, request: Request, pk: str | None = None) -> Response:
        """The budget's history: every action applied and lifted, with the spend at the time."""
        budget = self.get_object()
        rows = BudgetEvent.objects.filter(budget=budget).order_by("-created_at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(BudgetEventSerializer(page, many=True).data)
