"""The gateway-facing API: what a gateway pulls and reports, with its own token.

- `GET /api/v1/gateways/self/policy`: the current document, strong `ETag` ("<version>-<sha256>");
  `If-None-Match` with that tag answers 304 from the stored hash, without loading the document.
  Every gateway polls it, so a hit in the cache (routing.policy_cache) answers it in a plain
  Django view: from the process's own copy with no Redis round trip, else with one; a miss goes
  through the DRF view, which fills it.
- `POST /api/v1/gateways/self/status`: the version applied, per-deployment health, p95 latency,
  error rate, bytes per token and spot interruption notices. A health change or a spot notice
  re-evaluates and republishes at once.
- `GET /api/v1/gateways/self/traefik`: the same document as Traefik dynamic configuration.
- `POST /v3/discovery:routes` and `/v3/discovery:clusters`: Envoy REST xDS (routing.adapters.envoy).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.models import Deployment
from governance.api.authentication import ApiTokenAuthentication
from governance.tokens import hash_token, split_prefix
from routing import documents, policy_cache, selectors, services
from routing.adapters import envoy, traefik
from routing.auth import LAST_SEEN_PRECISION, GatewayTokenAuthentication, IsGateway
from routing.choices import PublishReason
from routing.models import Gateway, PolicyDocument

# A user's API token authenticates (as the user) so that IsGateway can say why it is refused (403).
GATEWAY_AUTHENTICATION = [GatewayTokenAuthentication, ApiTokenAuthentication]
NO_DOCUMENT = (
    "No policy has been published for this gateway yet; it is published when the gateway serves a model."
)


def entity_tag(version: int, digest: str) -> str:
    return f'"{version}-{digest}"'


def if_none_match_hits(request: HttpRequest, tag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    if not header:
        return False
    if header.strip() == "*":
        return True
    # If-None-Match uses the weak comparison: W/"x" matches "x".
    return any(candidate.strip().removeprefix("W/") == tag for candidate in header.split(","))


class GatewayPolicyView(APIView):
    authentication_classes = GATEWAY_AUTHENTICATION
    permission_classes = [IsGateway]

    @extend_schema(
        operation_id="gateway_self_policy",
        summary="The calling gateway's current policy document",
        responses={
            200: OpenApiResponse(description="{version, content_hash, policy}; ETag header"),
            304: OpenApiResponse(description="If-None-Match matched the current ETag"),
            404: OpenApiResponse(description=NO_DOCUMENT),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        gateway: Gateway = request.auth
        # Authentication loaded the current (version, hash) with the gateway (routing.auth).
        if hasattr(gateway, "latest_version"):
            tag = (gateway.latest_version, gateway.latest_hash) if gateway.latest_version else None
        else:
            tag = selectors.latest_document_tag(gateway_id=gateway.id)
        if tag is None:
            return JsonResponse({"detail": NO_DOCUMENT}, status=404)
        etag = entity_tag(*tag)
        # Read before authentication's query (gateway_policy): see routing.policy_cache.
        generation = getattr(request, "policy_cache_generation", None)
        not_modified = if_none_match_hits(request, etag)
        if not_modified and generation is None:
            return _policy_not_modified(etag)
        content = PolicyDocument.objects.filter(gateway_id=gateway.id, version=tag[0]).values_list(
            "content", flat=True
        )[0]
        body = documents.document_body(version=tag[0], content_hash_hex=tag[1], content=content)
        policy_cache.policy_cache_store(
            generation=generation, token_hash=gateway.token_hash, gateway_id=gateway.id, etag=etag, body=body
        )
        return _policy_not_modified(etag) if not_modified else _policy_ok(etag, body)


def _policy_not_modified(etag: str) -> HttpResponse:
    return HttpResponse(status=304, headers={"ETag": etag, "Cache-Control": "no-cache"})


def _policy_ok(etag: str, body: bytes) -> HttpResponse:
    return HttpResponse(
        body, content_type="application/json", headers={"ETag": etag, "Cache-Control": "no-cache"}
    )


def _fast_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": "no-cache", "Allow": "GET, HEAD, OPTIONS", "Vary": "Accept"}


_policy_drf_view = GatewayPolicyView.as_view()


def _gateway_policy(request: HttpRequest) -> HttpResponse:
    """The hot path of GatewayPolicyView: a cached token answers without DRF or the database.

    Anything else (no or unknown token, a user's token, HEAD/OPTIONS, a cache miss) goes to the DRF
    view, so authentication errors, 403, 404 and the schema stay where they are."""
    header = request.headers.get("Authorization", "")
    if request.method == "GET" and header.startswith("Bearer "):
        plaintext = header[7:].strip()
        if split_prefix(plaintext) is not None:
            token_hash = hash_token(plaintext)
            cached, within_rate = policy_cache.policy_cache_lookup(token_hash=token_hash)
            if cached is not None:
                if not within_rate:
                    return JsonResponse(
                        {"detail": "Request was throttled: too many requests for this gateway token."},
                        status=429,
                        headers={"Retry-After": str(60 - int(timezone.now().timestamp()) % 60)},
                    )
                # Allow and Vary: what the DRF view's answer carries too.
                if if_none_match_hits(request, cached.etag):
                    return HttpResponse(status=304, headers=_fast_headers(cached.etag))
                return HttpResponse(
                    cached.body, content_type="application/json", headers=_fast_headers(cached.etag)
                )
            request.policy_cache_generation = policy_cache.policy_cache_generation()
    return _policy_drf_view(request)


# csrf_exempt like every DRF view: a GET changes nothing, and it takes no cookie.
gateway_policy = csrf_exempt(_gateway_policy)
# drf-spectacular documents the operation from these, as for any DRF view's as_view().
gateway_policy.cls = GatewayPolicyView
gateway_policy.initkwargs = {}
# The same view at the top of config.urls: every gateway polls this URL, and walking the nested
# includes of /api/v1/ to reach it cost more than the rest of resolving a request. Without `cls`
# it is not a second operation in the schema; the one above keeps the name for reverse().
gateway_policy_first = csrf_exempt(_gateway_policy)


class DeploymentStatusSerializer(serializers.Serializer):
    deployment = serializers.CharField(max_length=120, help_text="Deployment slug")
    healthy = serializers.BooleanField(required=False, allow_null=True, default=None)
    error_rate = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=1, default=None
    )
    latency_p95_ms = serializers.FloatField(required=False, allow_null=True, min_value=0, default=None)
    bytes_per_token = serializers.DecimalField(
        max_digits=12, decimal_places=3, required=False, allow_null=True, min_value=0, default=None
    )
    spot_notice = serializers.BooleanField(
        required=False, default=False, help_text="Spot interruption notice"
    )


class GatewayStatusSerializer(serializers.Serializer):
    applied_version = serializers.IntegerField(min_value=0, allow_null=True)
    origin = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Default: the gateway's"
    )
    deployments = DeploymentStatusSerializer(many=True, required=False, default=list)

    def validate_deployments(self, rows: list[dict]) -> list[dict]:
        gateway: Gateway = self.context["gateway"]
        slugs = [row["deployment"] for row in rows]
        served = set(
            Deployment.objects.filter(slug__in=slugs, model__in=gateway.served_models.all()).values_list(
                "slug", flat=True
            )
        )
        for index, slug in enumerate(slugs):
            if slug not in served:
                raise serializers.ValidationError(
                    f"deployments[{index}]: {slug!r} is not a deployment of a model this gateway serves."
                )
        return rows


class GatewayStatusView(APIView):
    authentication_classes = GATEWAY_AUTHENTICATION
    permission_classes = [IsGateway]

    @extend_schema(
        operation_id="gateway_self_status",
        summary="Report the applied version, health and latencies",
        request=GatewayStatusSerializer,
        responses={200: OpenApiResponse(description="{applied_version, latest_version, republished}")},
    )
    def post(self, request: Request) -> Response:
        gateway: Gateway = request.auth
        serializer = GatewayStatusSerializer(data=request.data, context={"gateway": gateway})
        serializer.is_valid(raise_exception=True)
        report = json.loads(json.dumps(serializer.validated_data, default=str))
        changes = services.gateway_status_record(gateway=gateway, report=report)
        republished = []
        if changes:
            reason = (
                PublishReason.SPOT_NOTICE
                if any("spot notice" in c for c in changes)
                else PublishReason.HEALTH
            )
            republished = services.policies_republish(reason=reason, reason_detail="; ".join(changes))
        latest = selectors.latest_document_tag(gateway_id=gateway.id)
        return Response(
            {
                "applied_version": report["applied_version"],
                "latest_version": latest[0] if latest else None,
                "republished": [d.version for d in republished if d.gateway_id == gateway.id],
            },
            status=status.HTTP_200_OK,
        )


class GatewayTraefikView(APIView):
    authentication_classes = GATEWAY_AUTHENTICATION
    permission_classes = [IsGateway]

    @extend_schema(
        operation_id="gateway_self_traefik",
        summary="Traefik HTTP provider dynamic configuration",
        responses={
            200: OpenApiResponse(description="Traefik dynamic configuration (http.routers, http.services)"),
            304: OpenApiResponse(description="If-None-Match matched the current ETag"),
            404: OpenApiResponse(description=NO_DOCUMENT),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        gateway: Gateway = request.auth
        document = selectors.latest_document(gateway=gateway)
        if document is None:
            return JsonResponse({"detail": NO_DOCUMENT}, status=404)
        etag = entity_tag(document.version, document.content_hash)
        if if_none_match_hits(request, etag):
            return HttpResponse(status=304, headers={"ETag": etag})
        entry_points = gateway.push_settings.get("entry_points")
        return JsonResponse(
            traefik.dynamic_configuration(
                content=document.content, origin=gateway.origin_region, entry_points=entry_points
            ),
            headers={"ETag": etag},
        )


def _xds_gateway(payload: dict) -> Gateway | None:
    node = payload.get("node") or {}
    token = str((node.get("metadata") or {}).get("token") or "")
    if split_prefix(token) is None:
        return None
    return Gateway.objects.filter(slug=node.get("id"), token_hash=hash_token(token)).first()


def _xds(request: HttpRequest, render) -> HttpResponse:
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "The body must be a JSON DiscoveryRequest."}, status=400)
    gateway = _xds_gateway(payload)
    if gateway is None:
        return JsonResponse(
            {"detail": "node.id must be the gateway's slug and node.metadata.token its gateway token."},
            status=401,
        )
    document = selectors.latest_document(gateway=gateway)
    if document is None:
        return JsonResponse({"detail": NO_DOCUMENT}, status=404)
    # Envoy sends the version it accepted last (an ACK unless error_detail is set): that is the
    # version this gateway applied.
    held = str(payload.get("version_info") or "")
    now = timezone.now()
    updates = {}
    if held.isdigit() and not payload.get("error_detail") and int(held) != gateway.applied_version:
        updates.update(applied_version=int(held), applied_at=now)
    # Envoy polls routes and clusters every second: "last seen" needs seconds of precision, as on the
    # policy endpoint (routing.auth), not a commit per poll ahead of every answer.
    if updates or gateway.last_seen_at is None or now - gateway.last_seen_at > LAST_SEEN_PRECISION:
        updates["last_seen_at"] = now
        Gateway.objects.filter(pk=gateway.pk).update(**updates)
    if held == str(document.version):
        return HttpResponse(status=304)
    return JsonResponse(render(payload, gateway, document))


@csrf_exempt
@require_POST
def envoy_routes(request: HttpRequest) -> HttpResponse:
    def render(payload: dict, gateway: Gateway, document: PolicyDocument) -> dict:
        names = payload.get("resource_names") or ["inferensys"]
        return envoy.routes_response(
            content=document.content,
            version=document.version,
            route_config_name=names[0],
            origin=gateway.origin_region,
        )

    return _xds(request, render)


@csrf_exempt
@require_POST
def envoy_clusters(request: HttpRequest) -> HttpResponse:
    return _xds(
        request,
        lambda payload, gateway, document: envoy.clusters_response(
            content=document.content, version=document.version
        ),
    )
