"""Read-only routing endpoints for people and scripts (the gateway-facing pull API is separate)."""

from __future__ import annotations

from attribution.api.base import RestrictedReadOnlyViewSet
from routing.api import filters, serializers
from routing.models import Gateway, PolicyDocument


class GatewayViewSet(RestrictedReadOnlyViewSet):
    """Serving gateways. Their credentials are never exposed."""

    queryset = Gateway.objects.prefetch_related("served_models").order_by("slug")
    serializer_class = serializers.GatewaySerializer
    filterset_fields = ["kind", "slug"]


class PolicyDocumentViewSet(RestrictedReadOnlyViewSet):
    """Immutable, versioned routing documents per gateway."""

    queryset = PolicyDocument.objects.select_related("gateway").order_by("gateway__slug", "-version")
    serializer_class = serializers.PolicyDocumentSerializer
    filterset_class = filters.PolicyDocumentFilterSet
