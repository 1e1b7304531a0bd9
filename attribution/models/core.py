"""What was spent, on what: cost dimensions, ingest runs, line items, usage and the daily rollup."""

from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Lookup, Q, Value
from django.db.models.functions import Coalesce

from attribution.choices import DeploymentState, IngestState, PricingMode, Provider
from attribution.slugs import validate_dimension_slug

MONEY = {"max_digits": 24, "decimal_places": 10}
QUANTITY = {"max_digits": 28, "decimal_places": 10}
# Foreign keys of the bulk line item table: neither checked nor indexed by Postgres (see CostLineItem).
_UNENFORCED_KEY = {"db_constraint": False, "db_index": False}

# Keys in source settings that would carry a credential. Their values must be references
# (`env:NAME` or `file:/path`), never the secret itself.
_SECRET_KEY_PATTERN = re.compile(r"(secret|password|passwd|private_key|access_key|token|credential)", re.I)
_REFERENCE_PATTERN = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/\S+|ambient)$")


def validate_source_settings(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Source settings must be a JSON object.")

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                child_path = f"{path}.{key}" if path else str(key)
                # Containers are walked; the reference rule applies to the values inside them.
                is_scalar = not isinstance(child, dict | list)
                if (
                    is_scalar
                    and _SECRET_KEY_PATTERN.search(str(key))
                    and not (isinstance(child, str) and _REFERENCE_PATTERN.match(child))
                ):
                    raise ValidationError(
                        f"{child_path} looks like a credential; store a reference such as "
                        f"'env:VARIABLE', 'file:/path' or 'ambient', never the secret itself."
                    )
                walk(child, child_path)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}[{index}]")

    walk(value, "")


def user_reads_everything(user) -> bool:
    """Holders of attribution.view_all_teams (admin and finance, see setup_roles) and superusers read
    company-wide figures; everyone else their teams."""
    if user is None or not user.is_authenticated:
        return False
    has_perm = getattr(user, "has_perm", None)  # a gateway principal has no permissions
    return bool(has_perm and has_perm("attribution.view_all_teams"))


def id_or_zero(foreign_key: str) -> Coalesce:
    """A nullable foreign key's id with NULL as 0 (no row has id 0), for index keys walked by row
    comparison, which stops at a NULL."""
    return Coalesce(F(foreign_key), Value(0), output_field=models.BigIntegerField())


class AnyOfSubquery(Lookup):
    """`column = ANY(ARRAY(subquery))`. Postgres runs the subquery once, before the scan (an
    InitPlan), and uses its values as an index condition, e.g. on (team_id, day); `IN (subquery)`
    would be planned as a join that reads every row of the range first."""

    lookup_name = "any_of_subquery"

    def as_sql(self, compiler, connection) -> tuple[str, list]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", [*lhs_params, *rhs_params]


class ScopedQuerySet(models.QuerySet):
    """Restricts rows to what a user may see, by the team the rows belong to (`team_lookup`, a path
    to a Team foreign key; "" for Team itself).

    Memberships live in governance, a higher layer; we only follow its reverse relation by name
    (`memberships__user`) so this layer imports nothing from it. Users holding
    `attribution.view_all_teams` (admin and finance, see setup_roles) and superusers see everything.

    The restriction is one condition on the row's own team id, not a join to the memberships: a
    join would need a DISTINCT, which Django must wrap around any SUM over the rows and which stops
    Postgres using the (team, day) indexes; rows without a team never match.
    """

    team_lookup = "team"

    def restrict(self, user) -> models.QuerySet:
        if user is None or not user.is_authenticated:
            return self.none()
        if user_reads_everything(user):
            return self
        member_teams = Team.objects.filter(memberships__user=user).order_by().values("pk")
        return self.filter(AnyOfSubquery(F(self.team_lookup or "pk"), member_teams))


class TeamQuerySet(ScopedQuerySet):
    team_lookup = ""


class CloudAccount(models.Model):
    provider = models.CharField(max_length=16, choices=Provider.choices)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    billing_currency = models.CharField(max_length=3, default="USD")
    # Where and how to read this account's exports (bucket, prefix, table, scope...). Credentials
    # appear only as references; see validate_source_settings.
    source_settings = models.JSONField(default=dict, blank=True, validators=[validate_source_settings])
    # A credential that cannot be ambient or a reference, encrypted with INFERENSYS_CREDENTIALS_KEY
    # (Fernet). Never shown in the UI, the API or logs.
    credentials_ciphertext = models.TextField(blank=True)
    sync_enabled = models.BooleanField(default=False)
    sync_interval_minutes = models.PositiveIntegerField(default=360)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        # Actions that are not a model change; which role holds them is said in setup_roles only.
        permissions = [("sync_account", "Can start syncs and connection tests of cloud accounts")]
        constraints = [
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values), name="cloudaccount_provider_valid"
            ),
            models.CheckConstraint(
                condition=Q(billing_currency__regex=r"^[A-Z]{3}$"), name="cloudaccount_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"

    def clean(self) -> None:
        validate_source_settings(self.source_settings)


class Team(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    cost_center = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        # Row scoping: without it a user reads only the teams they are a member of.
        permissions = [("view_all_teams", "Can read the costs of every team, unallocated cost included")]

    def __str__(self) -> str:
        return self.name


class ServedModel(models.Model):
    """A model that is served for inference (e.g. llama-3.1-70b-instruct)."""

    name = models.CharField(max_length=200, unique=True)
    # Dots allowed (llama-3.1-70b): see attribution/slugs.py.
    slug = models.CharField(max_length=100, unique=True, validators=[validate_dimension_slug])
    family = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        db_table = "attribution_model"

    def __str__(self) -> str:
        return self.name


class Deployment(models.Model):
    """One place a model is served: provider × region × accelerator × pricing mode."""

    slug = models.CharField(max_length=120, unique=True, validators=[validate_dimension_slug])
    model = models.ForeignKey(ServedModel, on_delete=models.PROTECT, related_name="deployments")
    account = models.ForeignKey(
        CloudAccount, on_delete=models.PROTECT, related_name="deployments", null=True, blank=True
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    region = models.CharField(max_length=64)
    accelerator = models.CharField(max_length=64, blank=True, help_text="e.g. nvidia-h100-80gb")
    instance_type = models.CharField(max_length=64, blank=True, help_text="e.g. p5.48xlarge")
    pricing_mode = models.CharField(max_length=24, choices=PricingMode.choices)
    endpoint_url = models.URLField(max_length=500, blank=True)
    capacity_rps = models.DecimalField(
        max_digits=12, decimal_places=3, null=True, blank=True, help_text="Sustainable requests per second"
    )
    gpu_count = models.PositiveIntegerField(default=0)
    residency_region = models.CharField(max_length=32, blank=True, help_text="e.g. eu, us")
    # The resource id that bills for this deployment (endpoint ARN, node pool...): used to map
    # line items to it.
    resource_id = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=DeploymentState.choices, default=DeploymentState.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        indexes = [models.Index(fields=["model", "state"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values), name="deployment_provider_valid"
            ),
            models.CheckConstraint(
                condition=Q(pricing_mode__in=PricingMode.values), name="deployment_pricing_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(state__in=DeploymentState.values), name="deployment_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(capacity_rps__isnull=True) | Q(capacity_rps__gt=0),
                name="deployment_capacity_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class IngestRunQuerySet(models.QuerySet):
    def restrict(self, user) -> models.QuerySet:
        """Runs carry whole-account totals (every team's cost, and the unallocated): admin and
        finance read them; other roles see none, as they see no other team's figures."""
        return self if user_reads_everything(user) else self.none()

    def current_ids(
        self,
        *,
        account_id: int | None = None,
        billing_period_start: dt.date | None = None,
        charged_from: dt.datetime | None = None,
        charged_before: dt.datetime | None = None,
    ) -> list[int]:
        """Ids of the current (succeeded) runs whose line items a query must read: of an account,
        a billing period, and/or with a ChargePeriodStart in [charged_from, charged_before).
        Queries pass them as `ingest_run_id = ANY(...)`, which the planner prunes to those
        partitions of the line items (see CostLineItem)."""
        runs = self.filter(state=IngestState.SUCCEEDED)
        if account_id is not None:
            runs = runs.filter(account_id=account_id)
        if billing_period_start is not None:
            runs = runs.filter(billing_period_start=billing_period_start)
        if charged_from is not None:
            runs = runs.filter(charge_period_last__gte=charged_from)
        if charged_before is not None:
            runs = runs.filter(charge_period_first__lt=charged_before)
        return list(runs.order_by("id").values_list("id", flat=True))


class IngestRun(models.Model):
    """One attempt to load one version of (cloud account, billing period).

    State machine: pending -> running -> succeeded | failed; a succeeded run becomes superseded
    when a newer version of the same period succeeds. At most one run per period is running, and
    at most one is the current (succeeded) version; both are enforced by partial unique indexes.
    """

    account = models.ForeignKey(CloudAccount, on_delete=models.PROTECT, related_name="ingest_runs")
    billing_period_start = models.DateField()
    billing_period_end = models.DateField()
    source_format = models.CharField(max_length=40, blank=True)
    # [{"path": ..., "sha256": ..., "bytes": ...}, ...]
    source_files = models.JSONField(default=list, blank=True)
    # sha256 over the sorted file checksums: the same files give the same fingerprint.
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    state = models.CharField(max_length=16, choices=IngestState.choices, default=IngestState.PENDING)
    rows_in_source = models.BigIntegerField(default=0)
    rows_loaded = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    # {"billed_cost": "123.45", ...} as decimal strings: exact, JSON-safe.
    source_sums = models.JSONField(default=dict, blank=True)
    database_sums = models.JSONField(default=dict, blank=True)
    rows_processed = models.BigIntegerField(default=0, help_text="Progress while running")
    bytes_total = models.BigIntegerField(default=0)
    bytes_processed = models.BigIntegerField(default=0)
    # The span of its line items' ChargePeriodStart (a zone map): which runs' partitions a query
    # over some days must read. Null while loading and for a run without rows.
    charge_period_first = models.DateTimeField(null=True, blank=True)
    charge_period_last = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Problems that did not fail the run, e.g. a mapping rule skipped because it cannot be
    # evaluated: [{"kind": "rule_skipped", "rule_id": ..., "message": ...}, ...].
    warnings = models.JSONField(default=list, blank=True)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    # Who executes (or last executed) the run: "worker celery@host pid N", "command host pid N".
    # A run a worker was executing is retried when that worker dies (ingest/sweep.py).
    executor = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Executions started (claims)")
    # When the sweeper last enqueued this pending run again (its task message was lost).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = IngestRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "billing_period_start", "state"])]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=IngestState.values), name="ingestrun_state_valid"),
            models.CheckConstraint(
                condition=Q(billing_period_end__gt=models.F("billing_period_start")),
                name="ingestrun_period_ordered",
            ),
            models.UniqueConstraint(
                fields=["account", "billing_period_start"],
                condition=Q(state="running"),
                name="ingestrun_one_running_per_period",
            ),
            models.UniqueConstraint(
                fields=["account", "billing_period_start"],
                condition=Q(state="succeeded"),
                name="ingestrun_one_current_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account.slug} {self.billing_period_start:%Y-%m} #{self.pk} ({self.state})"

    @property
    def progress(self) -> float | None:
        if not self.bytes_total:
            return None
        return min(1.0, self.bytes_processed / self.bytes_total)


class TagSet(models.Model):
    """One distinct combination of a line item's tags, shared by every line item that carries it.

    Billing rows repeat a handful of tag combinations millions of times; stored once, they take a
    third off every line item (and off every COPY). The id is a 63-bit BLAKE2b digest of the two
    JSON texts (`tag_set_id` in attribution/ingest/loader.py), so the loader names a set without
    asking the database; a digest that is already taken by different tags stops the ingest.
    Rows are never updated and are kept when the line items that used them are restated.
    """

    id = models.BigIntegerField(primary_key=True)
    tags = models.JSONField(default=dict, blank=True)
    # Tag keys normalised across clouds (`user:team`, `resource_tags_user_team`, `Team ` -> `team`).
    normalized_tags = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"tag set {self.id}"


class CostLineItem(models.Model):
    """One billed charge, normalised to FOCUS columns (see the focus_line_items view).

    Loaded in bulk with COPY by the ingest pipeline; never written row by row through the ORM.

    The table is partitioned by ingest run (LIST on ingest_run_id, migration 0008): each version of
    an (account, billing period) is one partition, `attribution_costlineitem_r<run id>`. A run COPYs
    into a table of its own with no index to maintain, attaches it before its swap, and a
    superseded version is dropped whole instead of deleted row by row (attribution/ingest/loader.py).
    Readers name the runs they read (`ingest_run_id = ANY(...)`, see `IngestRun.charge_period_*`),
    so the planner reads only those partitions. There is no index and no primary-key constraint
    in the database (ids come from a sequence); foreign keys are neither enforced nor indexed: the
    loader writes only ids it has just read from those tables.
    """

    account = models.ForeignKey(CloudAccount, on_delete=models.PROTECT, related_name="+", **_UNENFORCED_KEY)
    ingest_run = models.ForeignKey(IngestRun, on_delete=models.PROTECT, related_name="+", **_UNENFORCED_KEY)
    source_line = models.BigIntegerField(help_text="Line (or row) number in the source file")
    billing_period_start = models.DateField(help_text="Unit of restatement, with the account")

    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    list_cost = models.DecimalField(**MONEY, null=True, blank=True)
    contracted_cost = models.DecimalField(**MONEY, null=True, blank=True)
    billing_currency = models.CharField(max_length=3)

    charge_period_start = models.DateTimeField()
    charge_period_end = models.DateTimeField()
    billing_period_start_at = models.DateTimeField()
    billing_period_end_at = models.DateTimeField()
    charge_category = models.CharField(max_length=20)
    charge_class = models.CharField(max_length=20, blank=True)
    charge_description = models.TextField(blank=True)
    charge_frequency = models.CharField(max_length=20, blank=True)

    provider_name = models.CharField(max_length=100)
    publisher_name = models.CharField(max_length=200, blank=True)
    invoice_issuer_name = models.CharField(max_length=200, blank=True)
    billing_account_id = models.CharField(max_length=200)
    billing_account_name = models.CharField(max_length=300, blank=True)
    sub_account_id = models.CharField(max_length=200, blank=True)
    sub_account_name = models.CharField(max_length=300, blank=True)
    region_id = models.CharField(max_length=64, blank=True)
    region_name = models.CharField(max_length=100, blank=True)
    availability_zone = models.CharField(max_length=64, blank=True)
    resource_id = models.TextField(blank=True)
    resource_name = models.TextField(blank=True)
    resource_type = models.CharField(max_length=200, blank=True)
    service_name = models.CharField(max_length=200, blank=True)
    service_category = models.CharField(max_length=64, blank=True)
    sku_id = models.CharField(max_length=200, blank=True)
    sku_price_id = models.CharField(max_length=300, blank=True)
    pricing_category = models.CharField(max_length=20, blank=True)
    pricing_quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    pricing_unit = models.CharField(max_length=100, blank=True)
    consumed_quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    consumed_unit = models.CharField(max_length=100, blank=True)
    commitment_discount_id = models.TextField(blank=True)
    # FOCUS 1.2 additions (migration 0010): filled by the parsers and attribution/focus/conform.py.
    service_subcategory = models.CharField(max_length=64, blank=True, default="")
    invoice_id = models.CharField(max_length=200, blank=True, default="")
    commitment_discount_status = models.CharField(max_length=20, blank=True, default="")
    # FOCUS 1.2 conditional columns (migration 0022), as the export states them; "" or null when it
    # has none (see README, FOCUS: which export column fills each).
    list_unit_price = models.DecimalField(**QUANTITY, null=True, blank=True)
    contracted_unit_price = models.DecimalField(**QUANTITY, null=True, blank=True)
    pricing_currency = models.CharField(max_length=3, blank=True, default="")
    pricing_currency_list_unit_price = models.DecimalField(**QUANTITY, null=True, blank=True)
    pricing_currency_contracted_unit_price = models.DecimalField(**QUANTITY, null=True, blank=True)
    pricing_currency_effective_cost = models.DecimalField(**MONEY, null=True, blank=True)
    sku_meter = models.CharField(max_length=300, blank=True, default="")
    sku_price_details = models.TextField(blank=True, default="")  # a JSON object, as text
    billing_account_type = models.CharField(max_length=100, blank=True, default="")
    sub_account_type = models.CharField(max_length=100, blank=True, default="")
    commitment_discount_name = models.TextField(blank=True, default="")
    commitment_discount_category = models.CharField(max_length=20, blank=True, default="")
    commitment_discount_type = models.CharField(max_length=100, blank=True, default="")
    commitment_discount_quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    commitment_discount_unit = models.CharField(max_length=100, blank=True, default="")
    capacity_reservation_id = models.TextField(blank=True, default="")
    capacity_reservation_status = models.CharField(max_length=20, blank=True, default="")
    # The provider's tags and their normalised keys, stored once per distinct combination.
    tag_set = models.ForeignKey("TagSet", on_delete=models.PROTECT, related_name="+", **_UNENFORCED_KEY)

    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", **_UNENFORCED_KEY
    )
    model = models.ForeignKey(
        ServedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", **_UNENFORCED_KEY
    )
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", **_UNENFORCED_KEY
    )

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(billing_currency__regex=r"^[A-Z]{3}$"), name="costlineitem_currency_iso"
            ),
            models.CheckConstraint(
                condition=Q(charge_period_end__gte=models.F("charge_period_start")),
                name="costlineitem_charge_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.ingest_run_id} line {self.source_line}: {self.billed_cost} {self.billing_currency}"

    @property
    def tags(self) -> dict:
        return self.tag_set.tags

    @property
    def normalized_tags(self) -> dict:
        return self.tag_set.normalized_tags


class RejectedRow(models.Model):
    """A source row that could not be parsed, kept with its reason: nothing vanishes silently."""

    ingest_run = models.ForeignKey(IngestRun, on_delete=models.CASCADE, related_name="rejected_rows")
    file_path = models.TextField()
    line_number = models.BigIntegerField()
    raw_text = models.TextField()
    reason = models.TextField()

    class Meta:
        ordering = ["ingest_run", "line_number"]
        indexes = [models.Index(fields=["ingest_run", "line_number"])]

    def __str__(self) -> str:
        return f"{self.file_path}:{self.line_number}: {self.reason}"


class TagKey(models.Model):
    """Tag keys seen per account, offered in the UI for grouping."""

    account = models.ForeignKey(CloudAccount, on_delete=models.CASCADE, related_name="tag_keys")
    key = models.CharField(max_length=512)
    normalized_key = models.CharField(max_length=512)
    last_seen_run = models.ForeignKey(IngestRun, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["account", "normalized_key"]
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="tagkey_unique_per_account")]

    def __str__(self) -> str:
        return self.key


# Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended. Fine enough
# near typical LLM latencies to give p50 and p95 within one bucket.
LATENCY_BUCKET_BOUNDS_MS: tuple[int, ...] = (
    50,
    100,
    200,
    300,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    5000,
    7500,
    10000,
    20000,
    30000,
    60000,
)


class UsageRecord(models.Model):
    """Usage in one time bucket for (reporter, deployment, team, model).

    `reporter` is the slug of the gateway (or cloud metrics source) that reported it. It is a plain
    string because gateways belong to routing, a higher layer.
    """

    bucket_start = models.DateTimeField()
    bucket_seconds = models.PositiveIntegerField(default=60)
    reporter = models.CharField(max_length=100)
    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="usage")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="usage")
    model = models.ForeignKey(ServedModel, on_delete=models.PROTECT, related_name="usage")
    requests = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    gpu_seconds = models.DecimalField(max_digits=20, decimal_places=3, default=0)
    latency_ms_sum = models.FloatField(default=0)
    # Counts per LATENCY_BUCKET_BOUNDS_MS bucket, plus one for the open-ended tail.
    latency_histogram = models.JSONField(default=list, blank=True)
    batch_id = models.CharField(max_length=100, blank=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["bucket_start"]),
            models.Index(fields=["deployment", "bucket_start"]),
            models.Index(fields=["team", "bucket_start"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_start", "bucket_seconds", "reporter", "deployment", "team", "model"],
                nulls_distinct=False,
                name="usagerecord_unique_bucket",
            ),
            models.CheckConstraint(
                condition=Q(requests__gte=0)
                & Q(input_tokens__gte=0)
                & Q(output_tokens__gte=0)
                & Q(errors__gte=0)
                & Q(errors__lte=models.F("requests")),
                name="usagerecord_counts_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reporter} {self.bucket_start:%Y-%m-%d %H:%M} deployment {self.deployment_id}"


class DailyCost(models.Model):
    """Daily rollup read by every page and list endpoint; rebuilt in SQL per (account, period)."""

    day = models.DateField()
    account = models.ForeignKey(CloudAccount, on_delete=models.CASCADE, related_name="+")
    billing_period_start = models.DateField()
    provider = models.CharField(max_length=16, choices=Provider.choices)
    service_name = models.CharField(max_length=200, blank=True)
    region_id = models.CharField(max_length=64, blank=True)
    # FOCUS SkuId: the explorer and the anomaly contributors group by it (migration 0022).
    sku_id = models.CharField(max_length=200, blank=True, default="")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model = models.ForeignKey(ServedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    charge_category = models.CharField(max_length=20)
    billing_currency = models.CharField(max_length=3)
    billed_cost = models.DecimalField(**MONEY, default=0)
    effective_cost = models.DecimalField(**MONEY, default=0)
    list_cost = models.DecimalField(**MONEY, default=0)
    consumed_quantity = models.DecimalField(**QUANTITY, default=0)
    # No token or request counts here: usage has no service, region or charge category, so it
    # cannot be spread over these cells without inventing a split. They live in the usage rollups
    # (UsageDaily) and, per deployment and model, next to the cost in UnitCost.
    line_items = models.BigIntegerField(default=0)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "day",
                    "account",
                    "billing_period_start",
                    "service_name",
                    "region_id",
                    "sku_id",
                    "team",
                    "model",
                    "deployment",
                    "charge_category",
                    "billing_currency",
                ],
                nulls_distinct=False,
                name="dailycost_unique_cell",
            ),
        ]
        indexes = [
            models.Index(fields=["day"]),
            models.Index(fields=["account", "billing_period_start"]),
            models.Index(fields=["team", "day"]),
            models.Index(fields=["model", "day"]),
            models.Index(fields=["provider", "day"]),
            # The explorer's filter options walk this index's distinct tuples (a loose index scan,
            # attribution/costs/explorer.py `_walk_sql`): keep it in step with _COST_OPTION_KEYS.
            models.Index(
                id_or_zero("team"),
                F("provider"),
                F("account"),
                F("service_name"),
                F("region_id"),
                F("sku_id"),
                id_or_zero("model"),
                id_or_zero("deployment"),
                F("charge_category"),
                F("billing_currency"),
                name="dailycost_options",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.account_id} {self.billed_cost} {self.billing_currency}"
