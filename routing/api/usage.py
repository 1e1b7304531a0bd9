"""`POST /api/v1/usage`: gateways report usage in batches, with their own token.

A batch is all or nothing: one bad record rejects it with a list of {record, field, message}. A
batch id already received from the same gateway is answered 200 with `duplicate: true` and counted
once; reusing it for different records is a 409. The records themselves are validated and written
by attribution.usage.services (this view only speaks HTTP).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.models import LATENCY_BUCKET_BOUNDS_MS
from attribution.usage.services import (
    MAX_BATCH_RECORDS,
    BatchConflictError,
    UsageValidationError,
    usage_batch_ingest,
)
from governance.api.authentication import ApiTokenAuthentication
from routing.auth import GatewayTokenAuthentication, IsGateway

# 5,000 records of a few hundred bytes each fit well below this; a body above it is refused
# before it is parsed.
MAX_BODY_BYTES = 16 * 1024 * 1024
HISTOGRAM_HELP = (
    f"{len(LATENCY_BUCKET_BOUNDS_MS) + 1} counts: requests with latency up to each bound "
    f"{list(LATENCY_BUCKET_BOUNDS_MS)} ms (after the previous bound), then those above the last. "
    "Must add up to `requests`. Alternatively send latency_p50_ms and latency_p95_ms."
)


class UsageRecordSerializer(serializers.Serializer):
    """Documentation of one record; validation happens in the usage service (per-record errors)."""

    bucket_start = serializers.DateTimeField(help_text="Start of the bucket, aligned to bucket_seconds, UTC")
    bucket_seconds = serializers.ChoiceField(choices=[60, 3600], help_text="60 (minute) or 3600 (hour)")
    deployment = serializers.CharField(max_length=120, help_text="Deployment slug")
    team = serializers.SlugField(required=False, allow_null=True, help_text="Team slug, or null if unknown")
    model = serializers.CharField(max_length=100, help_text="Model slug")
    requests = serializers.IntegerField(min_value=0)
    input_tokens = serializers.IntegerField(min_value=0, required=False, default=0)
    output_tokens = serializers.IntegerField(min_value=0, required=False, default=0)
    errors = serializers.IntegerField(min_value=0, required=False, default=0, help_text="At most requests")
    gpu_seconds = serializers.DecimalField(
        max_digits=20, decimal_places=3, required=False, default=0, coerce_to_string=False
    )
    latency_ms_sum = serializers.FloatField(required=False, default=0, help_text="Sum of latencies (ms)")
    latency_histogram = serializers.ListField(
        child=serializers.IntegerField(min_value=0), required=False, help_text=HISTOGRAM_HELP
    )
    latency_p50_ms = serializers.FloatField(required=False, help_text="Instead of latency_histogram")
    latency_p95_ms = serializers.FloatField(required=False, help_text="Instead of latency_histogram")


class UsageBatchRequestSerializer(serializers.Serializer):
    batch_id = serializers.CharField(
        max_length=100, help_text="Unique per gateway; a retried batch with the same id is counted once"
    )
    records = UsageRecordSerializer(many=True, help_text=f"At most {MAX_BATCH_RECORDS} records")


class UsageBatchResponseSerializer(serializers.Serializer):
    batch_id = serializers.CharField()
    records = serializers.IntegerField()
    duplicate = serializers.BooleanField()


class RecordErrorSerializer(serializers.Serializer):
    record = serializers.IntegerField(help_text="0-based index in `records`; -1 for the batch itself")
    field = serializers.CharField()
    message = serializers.CharField()


class UsageErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = RecordErrorSerializer(many=True, required=False)


EXAMPLE_BATCH = {
    "batch_id": "gw-envoy-prod-2026-11-03T14:05:00Z-0001",
    "records": [
        {
            "bucket_start": "2026-11-03T14:04:00Z",
            "bucket_seconds": 60,
            "deployment": "llama-70b-sagemaker-use1",
            "team": "search",
            "model": "llama-3-1-70b-instruct",
            "requests": 120,
            "input_tokens": 96000,
            "output_tokens": 31000,
            "errors": 1,
            "gpu_seconds": 480.5,
            "latency_ms_sum": 101500.0,
            "latency_histogram": [0, 0, 2, 6, 20, 40, 30, 15, 5, 2, 0, 0, 0, 0, 0, 0, 0],
        },
        {
            "bucket_start": "2026-11-03T14:04:00Z",
            "bucket_seconds": 60,
            "deployment": "claude-bedrock-use1",
            "team": None,
            "model": "claude-sonnet",
            "requests": 40,
            "input_tokens": 52000,
            "output_tokens": 9000,
            "latency_ms_sum": 60000.0,
            "latency_p50_ms": 1200,
            "latency_p95_ms": 3900,
        },
    ],
}


def _error(detail: str, status_code: int, errors: list[dict] | None = None) -> Response:
    body: dict = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return Response(body, status=status_code)


class UsageBatchView(APIView):
    # Gateway tokens first; a user's API token still authenticates (then IsGateway answers 403
    # with a message that says which token is needed), sessions are not accepted here.
    authentication_classes = [GatewayTokenAuthentication, ApiTokenAuthentication]
    permission_classes = [IsGateway]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="usage_batch_create",
        summary="Report a batch of usage from a gateway",
        description=(
            "Authenticated by the gateway's own token (`manage.py gateway_token SLUG`). Idempotent by "
            "`batch_id`: a retried batch is answered 200 with `duplicate: true` and counted once. "
            "A batch is accepted or rejected as a whole; a rejection lists every bad record by "
            f"index and field. At most {MAX_BATCH_RECORDS} records per batch (413 above). A bucket "
            "reported again in a later batch adds to what was reported before."
        ),
        request=UsageBatchRequestSerializer,
        responses={
            201: UsageBatchResponseSerializer,
            200: OpenApiResponse(UsageBatchResponseSerializer, description="Replayed batch, counted once"),
            400: OpenApiResponse(UsageErrorSerializer, description="Rejected; nothing was written"),
            401: OpenApiResponse(UsageErrorSerializer, description="Missing or invalid gateway token"),
            403: OpenApiResponse(UsageErrorSerializer, description="Not a gateway token"),
            409: OpenApiResponse(UsageErrorSerializer, description="batch_id reused for other records"),
            413: OpenApiResponse(UsageErrorSerializer, description="Too many records or too large a body"),
        },
        examples=[
            OpenApiExample("A minute batch", value=EXAMPLE_BATCH, request_only=True),
            OpenApiExample(
                "Accepted",
                value={"batch_id": EXAMPLE_BATCH["batch_id"], "records": 2, "duplicate": False},
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "Rejected",
                value={
                    "detail": "The batch was rejected; nothing was written.",
                    "errors": [{"record": 1, "field": "errors", "message": "cannot exceed requests (5 > 4)"}],
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
        tags=["usage"],
    )
    def post(self, request: Request) -> Response:
        gateway = request.auth
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            return _error(
                f"The body is {length} bytes; send at most {MAX_BODY_BYTES} bytes per request "
                f"(and at most {MAX_BATCH_RECORDS} records per batch).",
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        body = request.data
        if not isinstance(body, dict):
            return _error('The body must be a JSON object {"batch_id": ..., "records": [...]}.', 400)
        batch_id, records = body.get("batch_id"), body.get("records")
        shape_errors = []
        if not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > 100:
            message = "is required (1 to 100 characters)"
            shape_errors.append({"record": -1, "field": "batch_id", "message": message})
        if not isinstance(records, list):
            shape_errors.append({"record": -1, "field": "records", "message": "must be a list of records"})
        if shape_errors:
            return _error("The batch was rejected; nothing was written.", 400, shape_errors)
        if len(records) > MAX_BATCH_RECORDS:
            return _error(
                f"The batch has {len(records)} records; send at most {MAX_BATCH_RECORDS} per batch "
                "(split it into several batches with their own batch_id).",
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            created, count = usage_batch_ingest(reporter=gateway.slug, batch_id=batch_id, records=records)
        except UsageValidationError as error:
            return _error(
                "The batch was rejected; nothing was written.",
                400,
                [record_error.as_dict() for record_error in error.errors],
            )
        except BatchConflictError as error:
            return _error(str(error), status.HTTP_409_CONFLICT)
        return Response(
            {"batch_id": batch_id, "records": count, "duplicate": not created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
