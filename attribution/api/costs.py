"""Cost endpoints that say how much of every figure is billed and how much estimated.

- `GET /costs` — allocation results (AllocatedCost) with method, ratio and reason;
  `GET /costs/summary?group_by=...&basis=allocated|billed` — billed, estimated and total per group;
- `GET /unit-costs` — cost per 1M input/output tokens and per 1k requests per day × model × deployment;
- `GET /estimates` — spend estimates; `GET /estimates/accuracy` — MAPE and bias per deployment;
- `GET /unallocated` — unallocated cost by reason.

Every viewset derives from RestrictedReadOnlyViewSet, and the aggregates read through selectors that
apply the same restrict(user): a team lead's figures cover their teams only.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api.base import RestrictedReadOnlyViewSet
from attribution.api.fields import SlugRelatedField
from attribution.api.filters import DayRangeForm
from attribution.choices import Provider
from attribution.costs import selectors as cost_selectors
from attribution.currency.services import reporting_currency
from attribution.estimates.accuracy import calibration_history, estimate_accuracy_report
from attribution.estimates.serializers import AccuracyReportSerializer, CalibrationSerializer
from attribution.models import AllocatedCost, SpendEstimate, UnitCost
from attribution.models.core import user_reads_everything

MONEY = {"max_digits": 34, "decimal_places": 10, "read_only": True}
RATE = {"max_digits": 24, "decimal_places": 12, "read_only": True}
# The longest range an aggregate endpoint answers for at once.
MAX_SUMMARY_DAYS = 3 * 366


# --- Query parameters shared by the aggregates ----------------------------------------------------------


class CostQuerySerializer(serializers.Serializer):
    day_from = serializers.DateField(required=False, help_text="First day, inclusive")
    day_to = serializers.DateField(required=False, help_text="Last day, inclusive")
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    account = serializers.CharField(required=False, help_text="Cloud account slug")
    team = serializers.CharField(required=False, help_text="Team slug")
    model = serializers.CharField(required=False, help_text="Model slug")
    deployment = serializers.CharField(required=False, help_text="Deployment slug")
    currency = serializers.CharField(required=False, help_text="Billing currency, ISO 4217")

    def validate(self, attrs: dict) -> dict:
        day_from, day_to = attrs.get("day_from"), attrs.get("day_to")
        if day_from and day_to:
            if day_from > day_to:
                raise serializers.ValidationError({"day_from": ["day_from must be on or before day_to."]})
            if (day_to - day_from).days + 1 > MAX_SUMMARY_DAYS:
                raise serializers.ValidationError(
                    {"day_to": [f"Ask for at most {MAX_SUMMARY_DAYS} days at a time."]}
                )
        return attrs

    def to_filters(self) -> cost_selectors.CostFilters:
        data = self.validated_data
        return cost_selectors.CostFilters(
            day_from=data.get("day_from"),
            day_to=data.get("day_to"),
            provider=data.get("provider", ""),
            account=data.get("account", ""),
            team=data.get("team", ""),
            model=data.get("model", ""),
            deployment=data.get("deployment", ""),
            currency=data.get("currency", ""),
        )


COST_PARAMETERS = [
    OpenApiParameter("day_from", OpenApiTypes.DATE, description="First day, inclusive"),
    OpenApiParameter("day_to", OpenApiTypes.DATE, description="Last day, inclusive"),
    OpenApiParameter("provider", OpenApiTypes.STR, enum=Provider.values, description="Provider"),
    OpenApiParameter("account", OpenApiTypes.STR, description="Cloud account slug"),
    OpenApiParameter("team", OpenApiTypes.STR, description="Team slug"),
    OpenApiParameter("model", OpenApiTypes.STR, description="Model slug"),
    OpenApiParameter("deployment", OpenApiTypes.STR, description="Deployment slug"),
    OpenApiParameter("currency", OpenApiTypes.STR, description="Billing currency (ISO 4217)"),
]


def _cost_filters(request: Request) -> cost_selectors.CostFilters:
    query = CostQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.to_filters()


# --- Figures serializers ---------------------------------------------------------------------------------


class ExchangeRateUsedSerializer(serializers.Serializer):
    rate_date = serializers.DateField(read_only=True, help_text="Date of the rate row used")
    rate = serializers.DecimalField(**RATE, help_text="1 billing currency = rate reporting currency")


class ReportingFiguresSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True, help_text="The reporting currency")
    billed = serializers.DecimalField(**MONEY)
    estimated = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    exchange_rates = ExchangeRateUsedSerializer(
        many=True, read_only=True, help_text="Rates used, one per rate date (empty: same currency)"
    )
    missing_rate_days = serializers.ListField(
        child=serializers.DateField(),
        read_only=True,
        help_text="Charge days left out of the reporting figures because no rate was found",
    )


class CostFiguresSerializer(serializers.Serializer):
    key = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The group (slug, provider code, ISO day, or reason); null: no team/model/deployment",
    )
    currency = serializers.CharField(read_only=True, help_text="Billing currency of these figures")
    billed = serializers.DecimalField(**MONEY, help_text="From the bills")
    estimated = serializers.DecimalField(**MONEY, help_text="From usage, for days not billed yet")
    total = serializers.DecimalField(**MONEY, help_text="billed + estimated")
    reporting = ReportingFiguresSerializer(read_only=True)


class CostSummarySerializer(serializers.Serializer):
    group_by = serializers.CharField(read_only=True)
    basis = serializers.CharField(read_only=True)
    reporting_currency = serializers.CharField(read_only=True)
    results = CostFiguresSerializer(many=True, read_only=True)


def _figures_payload(row: cost_selectors.SummaryRow) -> dict:
    reporting = row.reporting
    return {
        "key": row.key,
        "currency": row.currency,
        "billed": row.figures.billed,
        "estimated": row.figures.estimated,
        "total": row.figures.total,
        "reporting": {
            "currency": reporting.currency,
            "billed": reporting.billed,
            "estimated": reporting.estimated,
            "total": reporting.total,
            "exchange_rates": [{"rate_date": day, "rate": rate} for day, rate in sorted(reporting.rates)],
            "missing_rate_days": sorted(reporting.missing_rate_days),
        },
    }


# --- /costs --------------------------------------------------------------------------------------------


class AllocatedCostSerializer(serializers.ModelSerializer):
    account = SlugRelatedField(slug_field="slug", read_only=True)
    team = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    model = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    deployment = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    allocated_method_details = serializers.DictField(read_only=True, help_text="Ratio and inputs used")

    class Meta:
        model = AllocatedCost
        fields = [
            "id",
            "day",
            "account",
            "billing_period_start",
            "provider",
            "team",
            "model",
            "deployment",
            "charge_category",
            "billing_currency",
            "billed_cost",
            "effective_cost",
            "allocated_method_id",
            "allocated_method_details",
            "allocation_ratio",
            "unallocated_reason",
            "reporting_currency",
            "exchange_rate",
            "billed_cost_reporting",
            "effective_cost_reporting",
        ]
        read_only_fields = fields


class AllocatedCostFilterSet(django_filters.FilterSet):
    day_from = django_filters.DateFilter(field_name="day", lookup_expr="gte", help_text="First day")
    day_to = django_filters.DateFilter(field_name="day", lookup_expr="lte", help_text="Last day")
    account = django_filters.CharFilter(field_name="account__slug", help_text="Cloud account slug")
    provider = django_filters.MultipleChoiceFilter(choices=Provider.choices)
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug")
    model = django_filters.CharFilter(field_name="model__slug", help_text="Model slug")
    deployment = django_filters.CharFilter(field_name="deployment__slug", help_text="Deployment slug")
    unallocated = django_filters.BooleanFilter(
        method="filter_unallocated", help_text="true: only unallocated"
    )
    reason = django_filters.CharFilter(field_name="unallocated_reason", help_text="Unallocated reason")
    method = django_filters.CharFilter(field_name="allocated_method_id", help_text="e.g. direct, tokens")

    class Meta:
        model = AllocatedCost
        form = DayRangeForm
        fields = [
            "day_from",
            "day_to",
            "account",
            "provider",
            "team",
            "model",
            "deployment",
            "reason",
            "method",
        ]

    def filter_unallocated(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.exclude(unallocated_reason="") if value else queryset.filter(unallocated_reason="")


class CostViewSet(RestrictedReadOnlyViewSet):
    """Allocation results per day × account × team × model × deployment, with the method and ratio
    used (FOCUS AllocatedMethodId / AllocatedMethodDetails) and, for unallocated rows, the reason."""

    queryset = AllocatedCost.objects.select_related("account", "team", "model", "deployment").order_by(
        "day", "id"
    )
    serializer_class = AllocatedCostSerializer
    filterset_class = AllocatedCostFilterSet

    @extend_schema(
        summary="Billed, estimated and total spend per group and currency, with reporting-currency figures",
        parameters=[
            OpenApiParameter(
                "group_by",
                OpenApiTypes.STR,
                enum=list(cost_selectors.SUMMARY_GROUPS),
                required=True,
                description="Dimension to group by",
            ),
            OpenApiParameter(
                "basis",
                OpenApiTypes.STR,
                enum=list(cost_selectors.SUMMARY_BASES),
                description="allocated (default): teams carry their share of shared pools, the rest is "
                "unallocated; billed: as the bills attribute it",
            ),
            *COST_PARAMETERS,
        ],
        filters=False,
        responses=CostSummarySerializer,
    )
    @action(detail=False, methods=["get"], url_path="summary", pagination_class=None, filter_backends=[])
    def summary(self, request: Request) -> Response:
        group_by = request.query_params.get("group_by", "")
        basis = request.query_params.get("basis", "allocated")
        errors = {}
        if group_by not in cost_selectors.SUMMARY_GROUPS:
            errors["group_by"] = [
                f"Choose one of: {', '.join(cost_selectors.SUMMARY_GROUPS)} (got {group_by!r})."
            ]
        if basis not in cost_selectors.SUMMARY_BASES:
            errors["basis"] = [f"Choose one of: {', '.join(cost_selectors.SUMMARY_BASES)} (got {basis!r})."]
        if errors:
            raise serializers.ValidationError(errors)
        rows = cost_selectors.cost_summary(
            user=request.user, group_by=group_by, basis=basis, filters=_cost_filters(request)
        )
        payload = {
            "group_by": group_by,
            "basis": basis,
            "reporting_currency": reporting_currency(),
            "results": [_figures_payload(row) for row in rows],
        }
        return Response(CostSummarySerializer(payload).data)


# --- /unit-costs ------------------------------------------------------------------------------------------


class UnitCostSerializer(serializers.ModelSerializer):
    model = SlugRelatedField(slug_field="slug", read_only=True)
    deployment = SlugRelatedField(slug_field="slug", read_only=True)
    effective_cost = serializers.DecimalField(
        max_digits=24,
        decimal_places=10,
        read_only=True,
        allow_null=True,
        help_text="The deployment's whole daily cost (every team's): admin and finance only, null for others",
    )

    def to_representation(self, instance: UnitCost) -> dict:
        data = super().to_representation(instance)
        # Rates per 1M tokens / 1k requests are prices every role may compare; the deployment's
        # daily spend is a company-wide figure, like other teams' costs.
        if not self.context.get("reads_everything", False):
            data["effective_cost"] = None
        return data

    class Meta:
        model = UnitCost
        fields = [
            "id",
            "day",
            "model",
            "deployment",
            "provider",
            "currency",
            "effective_cost",
            "requests",
            "input_tokens",
            "output_tokens",
            "cost_per_1m_input_tokens",
            "cost_per_1m_output_tokens",
            "cost_per_1k_requests",
            "output_input_ratio",
            "ratio_source",
        ]
        read_only_fields = fields


class UnitCostFilterSet(django_filters.FilterSet):
    day_from = django_filters.DateFilter(field_name="day", lookup_expr="gte", help_text="First day")
    day_to = django_filters.DateFilter(field_name="day", lookup_expr="lte", help_text="Last day")
    model = django_filters.CharFilter(field_name="model__slug", help_text="Model slug")
    deployment = django_filters.CharFilter(field_name="deployment__slug", help_text="Deployment slug")
    provider = django_filters.MultipleChoiceFilter(choices=Provider.choices)

    class Meta:
        model = UnitCost
        form = DayRangeForm
        fields = ["day_from", "day_to", "model", "deployment", "provider", "currency"]


class UnitCostViewSet(RestrictedReadOnlyViewSet):
    """Effective (amortized) cost per unit of usage per day × model × deployment, with the usage it
    was computed from. Per deployment, not per team: the rates are readable by any signed-in caller,
    the deployment's daily effective_cost only by admin and finance (null for others)."""

    queryset = UnitCost.objects.select_related("model", "deployment").order_by(
        "day", "deployment__slug", "id"
    )
    serializer_class = UnitCostSerializer
    filterset_class = UnitCostFilterSet

    def get_serializer_context(self) -> dict:
        return {
            **super().get_serializer_context(),
            "reads_everything": user_reads_everything(self.request.user),
        }


# --- /estimates -------------------------------------------------------------------------------------------


class SpendEstimateSerializer(serializers.ModelSerializer):
    deployment = SlugRelatedField(slug_field="slug", read_only=True)
    team = SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    model = SlugRelatedField(slug_field="slug", read_only=True)
    basis_details = serializers.DictField(read_only=True, help_text="Rates and usage the estimate used")
    state = serializers.SerializerMethodField(
        help_text="estimated: the bill has not landed; billed: reconciled"
    )

    class Meta:
        model = SpendEstimate
        fields = [
            "id",
            "day",
            "deployment",
            "team",
            "model",
            "currency",
            "estimated_cost",
            "basis",
            "basis_details",
            "state",
            "billed_cost",
            "error",
            "reconciled_at",
        ]
        read_only_fields = fields

    def get_state(self, estimate: SpendEstimate) -> str:
        return "billed" if estimate.reconciled_at else "estimated"


class SpendEstimateFilterSet(django_filters.FilterSet):
    day_from = django_filters.DateFilter(field_name="day", lookup_expr="gte", help_text="First day")
    day_to = django_filters.DateFilter(field_name="day", lookup_expr="lte", help_text="Last day")
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug")
    model = django_filters.CharFilter(field_name="model__slug", help_text="Model slug")
    deployment = django_filters.CharFilter(field_name="deployment__slug", help_text="Deployment slug")
    reconciled = django_filters.BooleanFilter(
        field_name="reconciled_at", lookup_expr="isnull", exclude=True, help_text="true: the bill has landed"
    )

    class Meta:
        model = SpendEstimate
        form = DayRangeForm
        fields = ["day_from", "day_to", "team", "model", "deployment", "basis", "reconciled"]


class EstimateAccuracySerializer(serializers.Serializer):
    deployment = serializers.CharField(read_only=True, source="deployment_slug")
    provider = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    days = serializers.IntegerField(read_only=True, help_text="Reconciled days")
    estimated = serializers.DecimalField(**MONEY)
    billed = serializers.DecimalField(**MONEY)
    error = serializers.DecimalField(**MONEY, help_text="estimated - billed")
    mape_percent = serializers.DecimalField(
        max_digits=20,
        decimal_places=4,
        read_only=True,
        allow_null=True,
        help_text="Mean absolute percentage error per day",
    )
    bias_percent = serializers.DecimalField(
        max_digits=20,
        decimal_places=4,
        read_only=True,
        allow_null=True,
        help_text="(estimated - billed) / billed; positive: over-estimates",
    )
    last_day = serializers.DateField(read_only=True, allow_null=True)


class SpendEstimateViewSet(RestrictedReadOnlyViewSet):
    """Spend estimated from usage for days whose bill has not landed, and, once it has, the billed
    cost of the same cell and the error. Admin and finance see all; others their teams' rows."""

    queryset = SpendEstimate.objects.select_related("deployment", "team", "model").order_by("day", "id")
    serializer_class = SpendEstimateSerializer
    filterset_class = SpendEstimateFilterSet

    @extend_schema(
        summary="Estimate accuracy per deployment: MAPE and bias of reconciled estimates",
        parameters=COST_PARAMETERS,
        filters=False,
        responses=EstimateAccuracySerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="accuracy", pagination_class=None, filter_backends=[])
    def accuracy(self, request: Request) -> Response:
        rows = cost_selectors.estimate_accuracy(user=request.user, filters=_cost_filters(request))
        return Response(EstimateAccuracySerializer(rows, many=True).data)

    @extend_schema(
        summary="Estimate accuracy: median and p90 error per deployment-day, calibrated and not, "
        "per provider, basis and day, and the share of billed dollars with no estimate",
        parameters=COST_PARAMETERS,
        filters=False,
        responses=AccuracyReportSerializer,
    )
    @action(
        detail=False, methods=["get"], url_path="accuracy-report", pagination_class=None, filter_backends=[]
    )
    def accuracy_report(self, request: Request) -> Response:
        filters = _cost_filters(request)
        report = estimate_accuracy_report(
            user=request.user, filters=filters, with_days=bool(filters.deployment)
        )
        return Response(AccuracyReportSerializer(report).data)

    @extend_schema(
        summary="Calibration factors per deployment and basis, with their history (newest first)",
        parameters=[OpenApiParameter("deployment", OpenApiTypes.STR, description="Deployment slug")],
        filters=False,
        responses=CalibrationSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="calibration", pagination_class=None, filter_backends=[])
    def calibration(self, request: Request) -> Response:
        rows = calibration_history(user=request.user, deployment=request.query_params.get("deployment", ""))
        return Response(CalibrationSerializer(rows, many=True).data)


# --- /unallocated -----------------------------------------------------------------------------------------


class UnallocatedSerializer(CostFiguresSerializer):
    label = serializers.CharField(read_only=True, help_text="The reason in words")


class UnallocatedViewSet(RestrictedReadOnlyViewSet):
    """Unallocated cost by reason (untagged, no usage, no rule, idle; not_allocated where allocation
    has not run yet), per currency. Only admin and finance see team-less cost; others get []."""

    queryset = AllocatedCost.objects.exclude(unallocated_reason="").order_by("day", "id")
    serializer_class = UnallocatedSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="Unallocated cost by reason, per currency, with reporting-currency figures",
        parameters=COST_PARAMETERS,
        responses=UnallocatedSerializer(many=True),
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        rows = cost_selectors.unallocated_summary(user=request.user, filters=_cost_filters(request))
        payload = [
            {**_figures_payload(row), "label": cost_selectors.reason_label(row.key or "")} for row in rows
        ]
        return Response(UnallocatedSerializer(payload, many=True).data)

    @extend_schema(summary="One unallocated allocation row", responses=AllocatedCostSerializer)
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return Response(AllocatedCostSerializer(self.get_object()).data)
