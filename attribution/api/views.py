"""Read-only attribution endpoints. Each viewset is a few lines: scoping lives in the base class."""

from __future__ import annotations

from django.db.models import F, Sum, Value
from django.db.models.functions import NullIf
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from attribution.api import filters
from attribution.api import serializers as api_serializers
from attribution.api.base import RestrictedReadOnlyViewSet
from attribution.models import CloudAccount, DailyCost, Deployment, IngestRun, ServedModel, Team

# group_by value -> the column that forms the group. Currency is always a second group key:
# amounts in different currencies are never added together.
SUMMARY_GROUPS: dict[str, str] = {
    "provider": "provider",
    "team": "team__slug",
    "model": "model__slug",
    "deployment": "deployment__slug",
    "sku": "sku_id",
    "day": "day",
}


class CloudAccountViewSet(RestrictedReadOnlyViewSet):
    """Cloud accounts whose billing exports are ingested. Readable by any authenticated user."""

    queryset = CloudAccount.objects.order_by("slug")
    serializer_class = api_serializers.CloudAccountSerializer
    filterset_fields = ["provider", "slug"]


class TeamViewSet(RestrictedReadOnlyViewSet):
    """Teams. Admin and finance see all; others see the teams they belong to."""

    queryset = Team.objects.order_by("name")
    serializer_class = api_serializers.TeamSerializer
    filterset_fields = ["slug"]


class ServedModelViewSet(RestrictedReadOnlyViewSet):
    """Models served for inference. Readable by any authenticated user."""

    queryset = ServedModel.objects.order_by("name")
    serializer_class = api_serializers.ServedModelSerializer
    filterset_fields = ["slug", "family"]


class DeploymentViewSet(RestrictedReadOnlyViewSet):
    """Where each model is served (provider, region, accelerator, pricing mode)."""

    queryset = Deployment.objects.select_related("model", "account").order_by("slug")
    serializer_class = api_serializers.DeploymentSerializer
    filterset_class = filters.DeploymentFilterSet


class IngestRunViewSet(RestrictedReadOnlyViewSet):
    """Ingest runs per (account, billing period): state, progress, row counts and cost sums."""

    queryset = IngestRun.objects.select_related("account").order_by("-created_at", "-id")
    serializer_class = api_serializers.IngestRunSerializer
    filterset_class = filters.IngestRunFilterSet


class DailyCostViewSet(RestrictedReadOnlyViewSet):
    """Daily cost rollup rows. Admin and finance see all; others the rows of their teams."""

    queryset = DailyCost.objects.select_related("account", "team", "model", "deployment").order_by(
        "day", "id"
    )
    serializer_class = api_serializers.DailyCostSerializer
    filterset_class = filters.DailyCostFilterSet

    @extend_schema(
        summary="Daily cost totals grouped by one dimension, per currency",
        parameters=[
            OpenApiParameter(
                "group_by",
                OpenApiTypes.STR,
                enum=list(SUMMARY_GROUPS),
                required=True,
                description="Dimension",
            )
        ],
        filters=True,
        responses=api_serializers.DailyCostSummarySerializer,
    )
    @action(detail=False, methods=["get"], url_path="summary", pagination_class=None)
    def summary(self, request: Request) -> Response:
        group_by = request.query_params.get("group_by", "")
        if group_by not in SUMMARY_GROUPS:
            raise serializers.ValidationError(
                {"group_by": [f"Choose one of: {', '.join(SUMMARY_GROUPS)} (got {group_by!r})."]}
            )
        visible = self.filter_queryset(self.get_queryset())
        key = F(SUMMARY_GROUPS[group_by])
        if group_by == "sku":
            key = NullIf(key, Value(""))  # no SKU is '' in the rollup: null here, sorted last, like no team
        # restrict() and the filters add no join that could repeat a row inside the SUM.
        rows = (
            visible.values(key=key, currency=F("billing_currency"))
            .annotate(
                billed=Sum("billed_cost"),
                effective=Sum("effective_cost"),
                listed=Sum("list_cost"),
                line_item_sum=Sum("line_items"),
            )
            .order_by(F("key").asc(nulls_last=True), "currency")
        )
        results = [
            {
                "key": None if row["key"] is None else str(row["key"]),
                "billing_currency": row["currency"],
                "billed_cost": row["billed"],
                "effective_cost": row["effective"],
                "list_cost": row["listed"],
                "line_items": row["line_item_sum"],
            }
            for row in rows
        ]
        payload = api_serializers.DailyCostSummarySerializer({"group_by": group_by, "results": results})
        return Response(payload.data)
