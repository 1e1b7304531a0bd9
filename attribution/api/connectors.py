"""Cloud sync endpoints: start a sync, test a connection (attribution.sync_account), list sync runs.

    POST /api/v1/accounts/{id}/test-connection   runs the checks now, answers with each check
    POST /api/v1/accounts/{id}/sync               enqueues a billing sync, answers 202 with the run
    GET  /api/v1/sync-runs?account=&state=&kind=  sync and connection-test runs, newest first

Nothing here ever returns a credential: serializers list their fields, and neither source_settings
nor credentials_ciphertext is among them.
"""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.api.base import RestrictedReadOnlyViewSet, TokenScopePermission
from attribution.api.fields import SlugRelatedField
from attribution.connectors.services import SyncBusyError, account_connection_test, account_sync_queue
from attribution.models import CloudAccount, RunState, SyncKind, SyncRun

# The scope an API token needs to start syncs and connection tests (its user needs the permission).
SYNC_SCOPE = "write:accounts"
SYNC_PERMISSION = "attribution.sync_account"


class CanOperateSyncs(permissions.BasePermission):
    """The attribution.sync_account permission. An API token's scope is checked by
    TokenScopePermission: `write` or `write:accounts` (the views' token_write_scope)."""

    message = "Starting syncs and connection tests needs the attribution.sync_account permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.has_perm(SYNC_PERMISSION)


class SyncRunSerializer(serializers.ModelSerializer):
    account = SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "account",
            "kind",
            "state",
            "trigger",
            "periods_found",
            "periods_changed",
            "periods_skipped",
            "ingest_run_ids",
            "usage_records",
            "progress_message",
            "error_kind",
            "error",
            "details",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class SyncRunFilterSet(django_filters.FilterSet):
    account = django_filters.CharFilter(field_name="account__slug", help_text="Cloud account slug")
    account_id = django_filters.NumberFilter(field_name="account_id")
    state = django_filters.MultipleChoiceFilter(choices=RunState.choices)
    kind = django_filters.MultipleChoiceFilter(choices=SyncKind.choices)

    class Meta:
        model = SyncRun
        fields = ["account", "account_id", "state", "kind"]


class SyncRunViewSet(RestrictedReadOnlyViewSet):
    """Cloud syncs and connection tests with their progress and outcome, newest first."""

    queryset = SyncRun.objects.select_related("account").order_by("-created_at", "-id")
    serializer_class = SyncRunSerializer
    filterset_class = SyncRunFilterSet


_CHECK = inline_serializer(
    "ConnectionCheck",
    {"name": serializers.CharField(), "ok": serializers.BooleanField(), "detail": serializers.CharField()},
)


class AccountTestConnectionView(APIView):
    permission_classes = [TokenScopePermission, CanOperateSyncs]
    token_write_scope = SYNC_SCOPE

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "ConnectionReport",
                {
                    "ok": serializers.BooleanField(),
                    "error_kind": serializers.CharField(),
                    "message": serializers.CharField(),
                    "checks": _CHECK,
                    "sync_run_id": serializers.IntegerField(),
                },
            )
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        """Check credentials, permissions and the export now; says exactly which check failed."""
        account = get_object_or_404(CloudAccount, pk=pk)
        try:
            run, report = account_connection_test(account_id=account.pk, trigger="api")
        except SyncBusyError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(
            {
                "ok": report.ok,
                "error_kind": report.error_kind,
                "message": report.message,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks],
                "sync_run_id": run.pk,
            }
        )


class AccountSyncView(APIView):
    permission_classes = [TokenScopePermission, CanOperateSyncs]
    token_write_scope = SYNC_SCOPE

    @extend_schema(request=None, responses={202: SyncRunSerializer, 409: SyncRunSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Enqueue a billing sync of the account; follow it with GET /api/v1/sync-runs/{id}."""
        account = get_object_or_404(CloudAccount, pk=pk)
        run, queued = account_sync_queue(account_id=account.pk, trigger="api")
        if not queued:
            return Response(SyncRunSerializer(run).data, status=status.HTTP_409_CONFLICT)
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
