"""AWS: billing exports from S3 (Data Exports CUR 2.0 and legacy CUR) and SageMaker usage from CloudWatch.

source_settings of an AWS account:
    bucket, prefix, export_name   where the export is delivered (prefix may be empty)
    region                        the bucket's region (default us-east-1)
    credentials                   "ambient" | "env:NAME" | "file:/path" | {"access_key_id": "env:..", ...}
                                  (or an encrypted credential set with `manage.py set_credentials`)
    role_arn, external_id         optional role to assume (sts:AssumeRole) with those credentials
    layout                        "auto" (default), "data_exports" or "legacy_cur"
    endpoint_url                  optional (S3-compatible stores, tests); AWS_ENDPOINT_URL works too
    usage_bucket_seconds          CloudWatch period of usage buckets (default 3600)
    sagemaker_variants            {endpoint name: [variant names]} (default ["AllTraffic"])

Layouts read (the ones AWS writes):
- Data Exports (CUR 2.0): `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`,
  overwritten by every refresh, names the execution (`executionId`) and its `dataFiles` (s3:// URIs);
  the data sit under `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/`.
- Legacy CUR: `<prefix>/<report>/<YYYYMMDD-YYYYMMDD>/<report>-Manifest.json` with `assemblyId`,
  `billingPeriod.start` ("20180801T000000.000Z") and `reportKeys` (bucket-relative keys).

A period's version is the execution (assembly) id plus a hash of the data objects' ETags, so a new
execution and a file rewritten in place are both noticed.

Finality: neither manifest says "final". AWS fills `bill_invoice_id` (`bill/InvoiceId` in the
legacy CUR) once the period's invoice is issued; while the month is open or being adjusted the column
is empty (koku's `2023-06-01-not-final.csv` sample; older tools saw the word "Estimated" there).
So a period is final when its billing period has ended and the first row of its first data file
carries an invoice id that is neither empty nor "Estimated". Only that row is read (a ranged GET of
the file's head for CSV, one column of one row group for Parquet).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from attribution.choices import Provider
from attribution.connectors.base import (
    BillingConnector,
    ConnectionCheck,
    ConnectionReport,
    ConnectorError,
    PeriodDelivery,
    RemoteFile,
    UsageConnector,
)
from attribution.connectors.credentials import CredentialsError, account_credentials
from attribution.models import Deployment, SyncErrorKind

logger = logging.getLogger(__name__)

_BOTO_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"max_attempts": 3, "mode": "standard"},
)
_PERIOD_FOLDER = re.compile(r"BILLING_PERIOD=(\d{4})-(\d{2})/?$")
_LEGACY_FOLDER = re.compile(r"(\d{8})-(\d{8})/?$")
_HEAD_BYTES = 256 * 1024

# Error codes, as S3, STS and CloudWatch return them.
_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "AuthFailure",
    "IncompleteSignature",
    "MissingAuthenticationToken",
}
_PERMISSION_CODES = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "UnauthorizedOperation"}
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "PreconditionFailed",  # the object changed between listing and reading: the next sync sees it
}


def aws_error_classify(error: Exception, *, action: str, resource: str) -> ConnectorError:
    """Turn a boto error into a ConnectorError that names what failed and what to do."""
    if isinstance(error, ConnectorError):
        return error
    if isinstance(error, CredentialsError):
        return ConnectorError(str(error), error_kind=SyncErrorKind.AUTHENTICATION)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return ConnectorError(
            "no AWS credentials were found (credentials: ambient): attach an instance/task role, or set "
            "credential references in the account settings",
            error_kind=SyncErrorKind.AUTHENTICATION,
        )
    if isinstance(
        error, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError
    ):
        return ConnectorError(
            f"{action} on {resource}: AWS did not answer ({type(error).__name__}); will retry",
            error_kind=SyncErrorKind.TRANSIENT,
            transient=True,
        )
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _AUTH_CODES:
            return ConnectorError(
                f"{action} on {resource}: AWS rejected the credentials ({code}); check the access key "
                "or the role the account uses",
                error_kind=SyncErrorKind.AUTHENTICATION,
            )
        if code in _PERMISSION_CODES or status == 403:
            return ConnectorError(
                f"missing permission {action} on {resource} ({code or 'HTTP 403'}); grant it to the sync "
                "role (see README, 'Connecting real cloud accounts')",
                error_kind=SyncErrorKind.PERMISSION,
            )
        if code == "NoSuchBucket":
            return ConnectorError(
                f"bucket {resource.split('/')[0]} does not exist (or is in another partition); check "
                "source_settings.bucket",
                error_kind=SyncErrorKind.NOT_FOUND,
            )
        if code in ("NoSuchKey", "404", "NotFound", "ResourceNotFoundException") or status == 404:
            return ConnectorError(f"{resource} not found ({action})", error_kind=SyncErrorKind.NOT_FOUND)
        if code in _TRANSIENT_CODES or status in (429, 500, 502, 503, 504):
            return ConnectorError(
                f"{action} on {resource}: {code or status} from AWS; will retry",
                error_kind=SyncErrorKind.TRANSIENT,
                transient=True,
            )
        return ConnectorError(f"{action} on {resource}: {code} ({status})", error_kind=SyncErrorKind.INVALID)
    if isinstance(error, BotoCoreError):
        return ConnectorError(f"{action} on {resource}: {error}", error_kind=SyncErrorKind.INVALID)
    raise error


def aws_session(account, settings: dict[str, Any]) -> boto3.Session:
    """A boto3 session from the account's credential, assuming `role_arn` when one is set."""
    credentials = account_credentials(account)
    region = settings.get("region") or "us-east-1"
    if credentials.is_ambient:
        session = boto3.Session(region_name=region)
    else:
        session = boto3.Session(
            aws_access_key_id=credentials.get("access_key_id"),
            aws_secret_access_key=credentials.get("secret_access_key"),
            aws_session_token=credentials.get("session_token"),
            region_name=region,
        )
    role_arn = settings.get("role_arn")
    if not role_arn:
        return session
    sts = session.client("sts", endpoint_url=settings.get("endpoint_url"), config=_BOTO_CONFIG)
    params = {"RoleArn": role_arn, "RoleSessionName": f"inferensys-{account.slug}"[:64]}
    if settings.get("external_id"):
        params["ExternalId"] = settings["external_id"]
    try:
        assumed = sts.assume_role(**params)["Credentials"]
    except (ClientError, BotoCoreError) as error:
        raise aws_error_classify(error, action="sts:AssumeRole", resource=role_arn) from None
    return boto3.Session(
        aws_access_key_id=assumed["AccessKeyId"],
        aws_secret_access_key=assumed["SecretAccessKey"],
        aws_session_token=assumed["SessionToken"],
        region_name=region,
    )


def _join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part and part.strip("/"))


def _key_of(uri_or_key: str, bucket: str) -> str:
    if uri_or_key.startswith("s3://"):
        without = uri_or_key[5:]
        found_bucket, _, key = without.partition("/")
        if found_bucket != bucket:
            raise ConnectorError(
                f"the manifest names a file in bucket {found_bucket}, not {bucket}",
                error_kind=SyncErrorKind.INVALID,
            )
        return key
    return uri_or_key.lstrip("/")


@dataclass(frozen=True)
class _Object:
    key: str
    etag: str
    size: int


def _is_invoiced(value: str | None) -> bool:
    text = (value or "").strip()
    return bool(text) and text.lower() != "estimated"


class _RangeReader(io.RawIOBase):
    """A seekable read-only file over one S3 object, by ranged GETs (for Parquet footers)."""

    def __init__(self, client, bucket: str, key: str, size: int, etag: str = "", on_error=None) -> None:
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self.etag = etag  # every ranged GET asks for this version (IfMatch)
        self.on_error = on_error
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        if self.position >= self.size:
            return 0
        end = min(self.size, self.position + len(buffer)) - 1
        params = {"Bucket": self.bucket, "Key": self.key, "Range": f"bytes={self.position}-{end}"}
        if self.etag:
            params["IfMatch"] = self.etag
        try:
            body = self.client.get_object(**params)
        except (ClientError, BotoCoreError) as error:
            if self.on_error is None:
                raise
            raise self.on_error(error) from None
        data = body["Body"].read()
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


class AwsBillingConnector(BillingConnector):
    provider = Provider.AWS

    def __init__(self, account) -> None:
        super().__init__(account)
        self.bucket: str = self.settings.get("bucket", "")
        self.prefix: str = self.settings.get("prefix", "")
        self.export_name: str = self.settings.get("export_name", "")
        self._client = None

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            if not self.bucket or not self.export_name:
                raise ConnectorError(
                    "source_settings needs bucket and export_name (and prefix, if the export has one)",
                    error_kind=SyncErrorKind.INVALID,
                )
            try:
                session = aws_session(self.account, self.settings)
            except CredentialsError as error:
                raise aws_error_classify(error, action="credentials", resource=self.account.slug) from None
            self._client = session.client(
                "s3", endpoint_url=self.settings.get("endpoint_url"), config=_BOTO_CONFIG
            )
        return self._client

    def _call(self, action: str, resource: str, method: str, **params):
        try:
            return getattr(self.client, method)(**params)
        except (ClientError, BotoCoreError) as error:
            raise aws_error_classify(error, action=action, resource=resource) from None

    def _folders(self, prefix: str) -> list[str]:
        folders: list[str] = []
        token = None
        while True:
            params = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
            if token:
                params["ContinuationToken"] = token
            page = self._call("s3:ListBucket", f"{self.bucket}/{prefix}", "list_objects_v2", **params)
            folders.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
            if not page.get("IsTruncated"):
                return folders
            token = page["NextContinuationToken"]

    def _objects(self, prefix: str) -> dict[str, _Object]:
        found: dict[str, _Object] = {}
        token = None
        while True:
            params = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = self._call("s3:ListBucket", f"{self.bucket}/{prefix}", "list_objects_v2", **params)
            for item in page.get("Contents", []):
                found[item["Key"]] = _Object(item["Key"], item["ETag"].strip('"'), int(item["Size"]))
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    def _json(self, key: str) -> dict:
        body = self._call("s3:GetObject", f"{self.bucket}/{key}", "get_object", Bucket=self.bucket, Key=key)
        try:
            return json.loads(body["Body"].read())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConnectorError(
                f"s3://{self.bucket}/{key} is not valid JSON ({error})", error_kind=SyncErrorKind.INVALID
            ) from None

    def _read_error(self, key: str, etag: str):
        def convert(error: Exception) -> ConnectorError:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            status = getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                # Not transient here: the version the run was planned with is gone for good.
                return ConnectorError(
                    f"s3://{self.bucket}/{key} changed after the run was planned (ETag {etag} is gone); "
                    "the next sync loads the new version",
                    error_kind=SyncErrorKind.INVALID,
                )
            return aws_error_classify(error, action="s3:GetObject", resource=f"{self.bucket}/{key}")

        return convert

    def _object_open(
        self, key: str, etag: str, *, seekable: bool = False, size: int | None = None
    ) -> IO[bytes]:
        """A stream of exactly this version (IfMatch) of an object: the body of one GET read front to
        back (botocore StreamingBody: read(n) pulls from the socket), or ranged GETs when seekable."""
        convert = self._read_error(key, etag)
        try:
            if seekable:
                if size is None:
                    head = self.client.head_object(Bucket=self.bucket, Key=key)
                    if head["ETag"].strip('"') != etag:
                        raise ClientError(
                            {
                                "Error": {"Code": "PreconditionFailed"},
                                "ResponseMetadata": {"HTTPStatusCode": 412},
                            },
                            "HeadObject",
                        )
                    size = int(head["ContentLength"])
                return io.BufferedReader(
                    _RangeReader(self.client, self.bucket, key, size, etag, on_error=convert),
                    buffer_size=1 << 20,
                )
            return self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=etag)["Body"]
        except (ClientError, BotoCoreError) as error:
            raise convert(error) from None

    def _remote_file(self, obj: _Object) -> RemoteFile:
        # IfMatch: the bytes read are the version whose ETag went into source_version.
        return RemoteFile(
            name=f"s3://{self.bucket}/{obj.key}",
            version=obj.etag,
            open=lambda: self._object_open(obj.key, obj.etag),
            size=obj.size,
            open_seekable=lambda: self._object_open(obj.key, obj.etag, seekable=True, size=obj.size),
        )

    def open_uri(self, uri: str, version: str, *, seekable: bool = False) -> IO[bytes]:
        if not uri.startswith("s3://"):
            raise ConnectorError(f"not an S3 object: {uri}", error_kind=SyncErrorKind.INVALID)
        return self._object_open(_key_of(uri, self.bucket), version, seekable=seekable)

    @staticmethod
    def _version(run_id: str, objects: list[_Object]) -> str:
        digest = hashlib.sha256(
            "\n".join(f"{o.key}\t{o.etag}" for o in sorted(objects, key=lambda o: o.key)).encode()
        )
        return f"{run_id}:{digest.hexdigest()[:32]}"

    def _first_row_value(self, obj: _Object, columns: tuple[str, ...]) -> str | None:
        """The value of the first of `columns` present, in the first row of a data file."""
        if obj.key.endswith(".parquet"):
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(_RangeReader(self.client, self.bucket, obj.key, obj.size))
            names = set(parquet.schema_arrow.names)
            column = next((c for c in columns if c in names), None)
            if column is None or parquet.metadata.num_row_groups == 0:
                return None
            values = parquet.read_row_group(0, columns=[column]).column(0)
            return None if len(values) == 0 else values[0].as_py()
        response = self._call(
            "s3:GetObject",
            f"{self.bucket}/{obj.key}",
            "get_object",
            Bucket=self.bucket,
            Key=obj.key,
            Range=f"bytes=0-{_HEAD_BYTES - 1}",
        )
        raw = response["Body"].read()
        if raw[:2] == b"\x1f\x8b":
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
        text = raw.decode("utf-8-sig", errors="replace")
        lines = text.split("\n")[:-1]  # the last piece may be cut mid-row
        if len(lines) < 2:
            return None
        header, first = next(csv.reader(lines[:1])), next(csv.reader(lines[1:2]))
        for column in columns:
            if column in header:
                index = header.index(column)
                return first[index] if index < len(first) else None
        return None

    def _is_final(self, period_end: dt.date, objects: list[_Object]) -> bool:
        if not objects or period_end > dt.datetime.now(dt.UTC).date():
            return False
        first = sorted(objects, key=lambda o: o.key)[0]
        try:
            value = self._first_row_value(first, ("bill_invoice_id", "bill/InvoiceId"))
        except (ConnectorError, OSError, ValueError, zlib.error) as error:
            # Not final is the safe answer: the period keeps being refreshed.
            logger.warning("could not read the invoice id of s3://%s/%s: %s", self.bucket, first.key, error)
            return False
        return _is_invoiced(value)

    # --- layouts -------------------------------------------------------------------------------

    def _layout(self) -> str:
        layout = self.settings.get("layout", "auto")
        if layout in ("data_exports", "legacy_cur"):
            return layout
        if self._folders(_join(self.prefix, self.export_name, "metadata") + "/"):
            return "data_exports"
        if any(_LEGACY_FOLDER.search(f) for f in self._folders(_join(self.prefix, self.export_name) + "/")):
            return "legacy_cur"
        return "data_exports"

    def _data_exports(self) -> list[PeriodDelivery]:
        export_root = _join(self.prefix, self.export_name)
        deliveries = []
        for folder in self._folders(f"{export_root}/metadata/"):
            match = _PERIOD_FOLDER.search(folder)
            if not match:
                continue
            period = dt.date(int(match[1]), int(match[2]), 1)
            manifest_key = f"{folder}{self.export_name}-Manifest.json"
            try:
                manifest = self._json(manifest_key)
            except ConnectorError as error:
                if error.error_kind == SyncErrorKind.NOT_FOUND:
                    logger.info("no manifest yet at s3://%s/%s", self.bucket, manifest_key)
                    continue  # AWS writes the manifest last: this execution is still being delivered
                raise
            execution_id = manifest.get("executionId") or ""
            data_files = manifest.get("dataFiles") or []
            if not execution_id:
                raise ConnectorError(
                    f"s3://{self.bucket}/{manifest_key} has no executionId: not a Data Exports manifest",
                    error_kind=SyncErrorKind.INVALID,
                )
            listed = self._objects(f"{export_root}/data/BILLING_PERIOD={period:%Y-%m}/")
            objects = self._manifest_objects(manifest_key, data_files, listed)
            deliveries.append(
                PeriodDelivery(
                    billing_period_start=period,
                    source_version=self._version(execution_id, objects),
                    is_final=self._is_final(_next_month(period), objects),
                    files=[self._remote_file(obj) for obj in objects],
                    details={
                        "layout": "data_exports",
                        "execution_id": execution_id,
                        "manifest": manifest_key,
                    },
                )
            )
        return sorted(deliveries, key=lambda d: d.billing_period_start, reverse=True)

    def _manifest_objects(
        self, manifest_key: str, names: list[str], listed: dict[str, _Object]
    ) -> list[_Object]:
        objects = []
        for name in names:
            key = _key_of(name, self.bucket)
            obj = listed.get(key)
            if obj is None:
                raise ConnectorError(
                    f"s3://{self.bucket}/{manifest_key} names s3://{self.bucket}/{key}, which does not exist",
                    error_kind=SyncErrorKind.NOT_FOUND,
                )
            objects.append(obj)
        return objects

    def _legacy_cur(self) -> list[PeriodDelivery]:
        report_root = _join(self.prefix, self.export_name)
        deliveries = []
        for folder in self._folders(f"{report_root}/"):
            match = _LEGACY_FOLDER.search(folder)
            if not match:
                continue
            manifest_key = f"{folder}{self.export_name}-Manifest.json"
            try:
                manifest = self._json(manifest_key)
            except ConnectorError as error:
                if error.error_kind == SyncErrorKind.NOT_FOUND:
                    continue
                raise
            start = (manifest.get("billingPeriod") or {}).get("start") or match[1]
            period = dt.datetime.strptime(start[:8], "%Y%m%d").date().replace(day=1)
            assembly_id = manifest.get("assemblyId") or ""
            listed = self._objects(folder)
            objects = self._manifest_objects(manifest_key, manifest.get("reportKeys") or [], listed)
            deliveries.append(
                PeriodDelivery(
                    billing_period_start=period,
                    source_version=self._version(assembly_id, objects),
                    is_final=self._is_final(_next_month(period), objects),
                    files=[self._remote_file(obj) for obj in objects],
                    details={"layout": "legacy_cur", "assembly_id": assembly_id, "manifest": manifest_key},
                )
            )
        return sorted(deliveries, key=lambda d: d.billing_period_start, reverse=True)

    # --- contract ----------------------------------------------------------------------------

    def discover(self) -> list[PeriodDelivery]:
        layout = self._layout()
        return self._legacy_cur() if layout == "legacy_cur" else self._data_exports()

    def test_connection(self) -> ConnectionReport:
        checks: list[ConnectionCheck] = []
        root = _join(self.prefix, self.export_name)

        def failed(name: str, error: ConnectorError) -> ConnectionReport:
            checks.append(ConnectionCheck(name=name, ok=False, detail=str(error)))
            return ConnectionReport(checks=checks, error_kind=error.error_kind)

        try:
            self.client  # noqa: B018 - builds the session: credentials resolve or fail here
        except ConnectorError as error:
            return failed("credentials", error)
        try:
            self._call(
                "s3:ListBucket", f"{self.bucket}/{root}/", "list_objects_v2",
                Bucket=self.bucket, Prefix=f"{root}/", MaxKeys=1,
            )  # fmt: skip
        except ConnectorError as error:
            name = "credentials" if error.error_kind == SyncErrorKind.AUTHENTICATION else "bucket"
            return failed(f"{name}: s3:ListBucket on {self.bucket}/{root}/", error)
        checks.append(ConnectionCheck(name="credentials", ok=True, detail="accepted by S3"))
        checks.append(ConnectionCheck(name=f"s3:ListBucket on {self.bucket}/{root}/", ok=True))
        try:
            deliveries = self.discover()
        except ConnectorError as error:
            return failed("export manifests readable (s3:GetObject)", error)
        if not deliveries:
            return failed(
                "export delivered",
                ConnectorError(
                    f"no billing period found under s3://{self.bucket}/{root}/ (neither metadata/"
                    "BILLING_PERIOD=YYYY-MM/ nor YYYYMMDD-YYYYMMDD/ manifests); a new export delivers its "
                    "first files within 24 hours",
                    error_kind=SyncErrorKind.EMPTY,
                ),
            )
        newest = deliveries[0]
        checks.append(
            ConnectionCheck(
                name="export manifests readable (s3:GetObject)",
                ok=True,
                detail=f"{len(deliveries)} billing period(s), newest {newest.billing_period_start:%Y-%m}",
            )
        )
        if newest.files:
            try:
                with newest.files[0].open() as stream:
                    stream.read(1)
            except ConnectorError as error:
                return failed(f"s3:GetObject on {newest.files[0].name}", error)
            checks.append(ConnectionCheck(name=f"s3:GetObject on {newest.files[0].name}", ok=True))
        return ConnectionReport(checks=checks)


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


# --- usage: SageMaker endpoint metrics from CloudWatch -----------------------------------------

# (query id prefix, namespace, metric, statistic)
_SAGEMAKER_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("inv", "AWS/SageMaker", "Invocations", "Sum"),
    ("e4x", "AWS/SageMaker", "Invocation4XXErrors", "Sum"),
    ("e5x", "AWS/SageMaker", "Invocation5XXErrors", "Sum"),
    # Microseconds: the Sum over a bucket / 1000 is the bucket's latency sum in milliseconds.
    ("lat", "AWS/SageMaker", "ModelLatency", "Sum"),
    # Per instance, one sample a minute, in percent times the instance's GPU count.
    ("gpu", "/aws/sagemaker/Endpoints", "GPUUtilization", "Sum"),
)
_MAX_QUERIES = 500  # GetMetricData's limit per call
GPU_SAMPLE_SECONDS = 60


def _endpoint_of(arn: str) -> tuple[str, str] | None:
    """(region, endpoint name) of a SageMaker endpoint ARN."""
    match = re.match(r"^arn:aws[\w-]*:sagemaker:([a-z0-9-]+):\d+:endpoint/(.+)$", arn or "")
    return (match[1], match[2]) if match else None


class AwsUsageConnector(UsageConnector):
    """Invocations, errors, latency and GPU time of the account's SageMaker endpoints.

    Deployments are those of this account whose resource_id is a SageMaker endpoint ARN. Tokens are
    not published by SageMaker (0 here; gateways report them), and CloudWatch gives no per-request
    latencies, so the latency histogram stays empty: p50/p95 come from gateway usage."""

    provider = Provider.AWS

    def _deployments(self) -> list[tuple[Deployment, str, str]]:
        found = []
        for deployment in Deployment.objects.filter(account=self.account).select_related("model"):
            endpoint = _endpoint_of(deployment.resource_id)
            if endpoint:
                found.append((deployment, *endpoint))
        return found

    def fetch_usage(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[dict[str, Any]]:
        bucket_seconds = int(self.settings.get("usage_bucket_seconds", 3600))
        if bucket_seconds < 60 or bucket_seconds % 60:
            raise ConnectorError(
                "usage_bucket_seconds must be a multiple of 60", error_kind=SyncErrorKind.INVALID
            )
        start, end = _align(start, bucket_seconds), _align(end, bucket_seconds)
        if end <= start:
            return
        variants_setting = self.settings.get("sagemaker_variants") or {}
        by_region: dict[str, list[tuple[Deployment, str, str]]] = {}
        for deployment, region, name in self._deployments():
            for variant in variants_setting.get(name, ["AllTraffic"]):
                by_region.setdefault(region, []).append((deployment, name, variant))
        try:
            session = aws_session(self.account, self.settings)
        except CredentialsError as error:
            raise aws_error_classify(error, action="credentials", resource=self.account.slug) from None
        for region, targets in sorted(by_region.items()):
            client = session.client(
                "cloudwatch",
                region_name=region,
                endpoint_url=self.settings.get("endpoint_url"),
                config=_BOTO_CONFIG,
            )
            yield from self._region_usage(client, targets, start, end, bucket_seconds)

    def _region_usage(self, client, targets, start, end, bucket_seconds) -> Iterator[dict[str, Any]]:
        queries = []
        for index, (_, name, variant) in enumerate(targets):
            for prefix, namespace, metric, stat in _SAGEMAKER_METRICS:
                queries.append(
                    {
                        "Id": f"{prefix}{index}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": namespace,
                                "MetricName": metric,
                                "Dimensions": [
                                    {"Name": "EndpointName", "Value": name},
                                    {"Name": "VariantName", "Value": variant},
                                ],
                            },
                            "Period": bucket_seconds,
                            "Stat": stat,
                        },
                        "ReturnData": True,
                    }
                )
        values: dict[tuple[int, dt.datetime], dict[str, Decimal]] = {}
        for offset in range(0, len(queries), _MAX_QUERIES):
            batch = queries[offset : offset + _MAX_QUERIES]
            token = None
            while True:
                params = {
                    "MetricDataQueries": batch,
                    "StartTime": start,
                    "EndTime": end,
                    "ScanBy": "TimestampAscending",
                }
                if token:
                    params["NextToken"] = token
                try:
                    page = client.get_metric_data(**params)
                except (ClientError, BotoCoreError) as error:
                    raise aws_error_classify(
                        error, action="cloudwatch:GetMetricData", resource="SageMaker endpoints"
                    ) from None
                for result in page.get("MetricDataResults", []):
                    prefix, index = result["Id"][:3], int(result["Id"][3:])
                    for timestamp, value in zip(
                        result.get("Timestamps", []), result.get("Values", []), strict=False
                    ):
                        cell = values.setdefault((index, _align(timestamp, bucket_seconds)), {})
                        # Decimal from repr: the float CloudWatch returned, without binary noise.
                        cell[prefix] = cell.get(prefix, Decimal(0)) + Decimal(repr(value))
                token = page.get("NextToken")
                if not token:
                    break
        # Variants of one endpoint are summed into the deployment's bucket.
        merged: dict[tuple[int, dt.datetime], dict[str, Decimal]] = {}
        for (index, bucket_start), cell in values.items():
            deployment = targets[index][0]
            target = merged.setdefault((deployment.pk, bucket_start), {"_deployment": deployment})
            for key, value in cell.items():
                target[key] = target.get(key, Decimal(0)) + value
        for (_, bucket_start), cell in sorted(merged.items(), key=lambda item: (item[0][1], item[0][0])):
            deployment = cell.pop("_deployment")
            requests = int(cell.get("inv", 0))
            errors = min(requests, int(cell.get("e4x", 0) + cell.get("e5x", 0)))
            gpu_seconds = (cell.get("gpu", Decimal(0)) / 100 * GPU_SAMPLE_SECONDS).quantize(Decimal("0.001"))
            if not requests and not gpu_seconds:
                continue
            yield {
                "bucket_start": bucket_start,
                "bucket_seconds": bucket_seconds,
                "deployment": deployment.slug,
                "team": None,
                "model": deployment.model.slug,
                "requests": requests,
                "input_tokens": 0,
                "output_tokens": 0,
                "errors": errors,
                "gpu_seconds": gpu_seconds,
                "latency_ms_sum": float(cell.get("lat", Decimal(0)) / 1000),
                "latency_histogram": None,  # no per-request latencies in CloudWatch
            }


def _align(moment: dt.datetime, bucket_seconds: int) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    epoch = int(moment.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % bucket_seconds, tz=dt.UTC)
