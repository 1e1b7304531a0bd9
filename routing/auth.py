"""Gateways authenticate with their own token, `Authorization: Bearer ifs_<prefix>_<secret>`.

Gateway tokens and users' API tokens share one format (governance.tokens), so the hash is looked
up in Gateway first; a hash that is not a gateway's is left to the next authentication class (a
user's API token then authenticates as that user, and IsGateway refuses it with 403). Only the
HMAC of a token is stored; a rotated token stops working at once because its hash is gone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from attribution.api.access import RATE_COUNTED_ATTRIBUTE, gateway_rate_key, rate_window, rate_window_key
from governance.tokens import hash_token, split_prefix
from routing import policy_cache
from routing.models import Gateway

LAST_SEEN_PRECISION = dt.timedelta(seconds=10)
GATEWAY_BY_TOKEN_SQL = """
    SELECT gateway.*, latest.version AS latest_version, latest.content_hash AS latest_hash
    FROM routing_gateway gateway
    LEFT JOIN LATERAL (
        SELECT version, content_hash FROM routing_policydocument
        WHERE gateway_id = gateway.id ORDER BY version DESC LIMIT 1
    ) latest ON true
    WHERE gateway.token_hash = %s
"""


@dataclass(frozen=True)
class GatewayPrincipal:
    """What request.user is for a gateway: authenticated, no user account, no roles."""

    gateway: Gateway
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_superuser: bool = False
    is_staff: bool = False
    pk: None = None

    def get_username(self) -> str:
        return f"gateway:{self.gateway.slug}"

    def __str__(self) -> str:
        return self.get_username()


class GatewayTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{self.keyword} "):
            return None
        plaintext = header[len(self.keyword) + 1 :].strip()
        if split_prefix(plaintext) is None:
            return None
        # The current document's (version, hash) comes with the same query: a conditional GET of
        # the policy then needs no other round trip to answer 304. Plain SQL: the gateways poll
        # every second, and building this query through the ORM cost more than running it.
        gateway = next(iter(Gateway.objects.raw(GATEWAY_BY_TOKEN_SQL, [hash_token(plaintext)])), None)
        if gateway is None:
            return None  # maybe a user's API token: the next class decides
        now = timezone.now()
        # A gateway polling every second should not write a row every second: a few seconds of
        # precision is all "last seen" needs.
        if gateway.last_seen_at is None or now - gateway.last_seen_at > LAST_SEEN_PRECISION:
            Gateway.objects.filter(pk=gateway.pk).update(last_seen_at=now)
            gateway.last_seen_at = now
        return GatewayPrincipal(gateway=gateway), gateway

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class CachedGatewayTokenAuthentication(GatewayTokenAuthentication):
    """GatewayTokenAuthentication that first asks the shared Redis cache of routing.policy_cache.

    For endpoints that need only the calling gateway's identity (leases): a hit costs one Redis
    round trip instead of the token query, whose planning dominated a lease request; the same round
    trip counts the request against the token's rate (TokenRateThrottle then uses that count). The
    principal's Gateway then holds only id, slug and token_hash; any other field loads from the
    database when read (deferred).
    `last_seen_at` is written on a miss, so it may lag by the cache TTL
    (GATEWAY_POLICY_CACHE_SECONDS), as on the policy endpoint."""

    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{self.keyword} "):
            return None
        plaintext = header[len(self.keyword) + 1 :].strip()
        if split_prefix(plaintext) is None:
            return None
        token_hash = hash_token(plaintext)
        # The token's request count (TokenRateThrottle's counter) goes in the same round trip.
        rate_key = rate_window_key(key=gateway_rate_key(token_hash), window=rate_window()[0])
        cached, count = policy_cache.gateway_token_cache_lookup_counting(
            token_hash=token_hash, rate_key=rate_key
        )
        if cached is not None:
            gateway_id, slug = cached
            gateway = Gateway.from_db("default", ["id", "slug", "token_hash"], [gateway_id, slug, token_hash])
            setattr(gateway, RATE_COUNTED_ATTRIBUTE, count)
            return GatewayPrincipal(gateway=gateway), gateway
        # Read before the database: an entry filled from a state that a concurrent rotation or
        # revocation replaces is stored under the replaced generation and never served.
        generation = policy_cache.policy_cache_generation()
        authenticated = super().authenticate(request)
        if authenticated is not None:
            gateway = authenticated[1]
            # Counted above already (a token that is not a gateway's was counted on a key that no
            # gateway uses, which expires with its window).
            setattr(gateway, RATE_COUNTED_ATTRIBUTE, count)
            policy_cache.gateway_token_cache_store(
                generation=generation, token_hash=token_hash, gateway_id=gateway.pk, slug=gateway.slug
            )
        return authenticated


class IsGateway(permissions.BasePermission):
    message = "This endpoint takes a gateway token (manage.py gateway_token SLUG), not a user's API token."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, GatewayPrincipal)


class GatewayTokenScheme(OpenApiAuthenticationExtension):
    target_class = "routing.auth.GatewayTokenAuthentication"
    name = "gatewayToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Gateway token `ifs_<prefix>_<secret>` (manage.py gateway_token SLUG)",
        }


class CachedGatewayTokenScheme(OpenApiAuthenticationExtension):
    """The same token as GatewayTokenScheme: require that scheme rather than define a second one
    (drf-spectacular refuses two components of one name for two classes)."""

    target_class = "routing.auth.CachedGatewayTokenAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return {GatewayTokenScheme.name: []}

    def get_security_definition(self, auto_schema):
        return []
