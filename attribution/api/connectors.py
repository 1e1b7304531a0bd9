"""Cloud sync endpoints: start a sync, test a connection (admin and finance only), list sync runs.

    POST /api/v1/accounts/{id}/test-connection   runs the checks now, answers with each check
    POST /api/v1/accounts/{id}/sync               enqueues a billing sync, answers 202 with the run
    GET  /api/v1/sync-runs?account=&state=&kind=  sync and connection-test runs, newest first

Nothing here ever returns a credential: serializers list their fields, and neither source_settings
nor credentials_ciphertext is among them.
"""

from __future__ import annotations

import django_filters
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from attribution.api.base import RestrictedReadOnlyViewSet, TokenScopePermission
from attribution.connectors.sync import SyncBusyError, account_connection_test, sync_run_request
from attribution.models import CloudAccount, RunState, SyncKind, SyncRun

# The scope an API token needs to start syncs and connection tests (session users need a role).
SYNC_SCOPE = "write:accounts"
SYNC_ROLES = ("admin", "finance")


class CanOperateSyncs(permissions.BasePermission):
    """Admin and finance roles (and superusers). An API token's scope is checked by
    TokenScopePermission: `write` or `write:accounts` (the views' token_write_scope)."""

    message = "Only the admin and finance roles may start syncs and connection tests."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return user.is_superuser or user.groups.filter(name__in=SYNC_ROLES).exists()


class SyncRunSerializer(serializers.ModelSerializer):
    account = serializers.SlugRelatedField(slug_field="slug", read_only=True)

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
        from attribution.connectors.tasks import account_sync_task

        account = get_object_or_404(CloudAccount, pk=pk)
        with transaction.atomic():
            # Lock the account row so two clicks do not enqueue two syncs.
            CloudAccount.objects.select_for_update().get(pk=account.pk)
            active = SyncRun.objects.filter(
                account=account, kind=SyncKind.BILLING, state__in=(RunState.PENDING, RunState.RUNNING)
            ).first()
            if active is not None:
                return Response(SyncRunSerializer(active).data, status=status.HTTP_409_CONFLICT)
            run = sync_run_request(account_id=account.pk, kind=SyncKind.BILLING, trigger="api")
            transaction.on_commit(lambda: account_sync_task.delay(account.pk, run.pk, "api"))
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


router = SimpleRouter(trailing_slash=False)
router.register("sync-runs", SyncRunViewSet, basename="sync-run")

# Account actions live beside the read-only accounts viewset of attribution.api.views.
urlpatterns = [
    *router.urls,
    path(
        "accounts/<int:pk>/test-connection",
        AccountTestConnectionView.as_view(),
        name="account-test-connection",
    ),
    path("accounts/<int:pk>/sync", AccountSyncView.as_view(), name="account-sync"),
]
