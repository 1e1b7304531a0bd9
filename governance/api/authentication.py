from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from attribution.api.access import token_scope_denial
from governance.models import ApiToken
from governance.tokens import hash_token, split_prefix


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer ifs_<prefix>_<secret>` for users' API tokens."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{self.keyword} "):
            return None
        plaintext = header[len(self.keyword) + 1 :].strip()
        if split_prefix(plaintext) is None:
            return None  # not one of ours (e.g. a gateway token handled elsewhere)
        token = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=hash_token(plaintext), revoked_at__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API token has expired; create a new one.")
        # The scope rule again, here where every token passes: a view that replaced its
        # permission_classes without TokenScopePermission cannot let a read-only token write.
        context = getattr(request, "parser_context", None) or {}
        denial = token_scope_denial(scopes=token.scopes, method=request.method, view=context.get("view"))
        if denial is not None:
            raise exceptions.PermissionDenied(denial)
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "governance.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Token `ifs_<prefix>_<secret>`"}
