"""Writes of the routing layer."""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from attribution.models import Deployment, ServedModel
from governance.choices import AlertKind
from governance.services import alert_raise, audit_event_record
from governance.tokens import generate_token
from routing import documents, policy_cache, selectors
from routing.adapters import PushError, haproxy, webhook
from routing.choices import Health, HealthSource, PublishReason, PushOutcome, RequestClass
from routing.models import (
    DeploymentRouting,
    Gateway,
    PolicyDocument,
    PushAttempt,
    RouteLatency,
    RouteState,
    WeightPin,
)
from routing.optimiser import Candidate, PolicySpec, RouteProblem, route_solve, routes_solve, share_text


def gateway_token_rotate(
    *, gateway: Gateway, actor: AbstractBaseUser | None, remote_addr: str | None = None
) -> str:
    """Give the gateway a new token and return its plaintext (shown once, never stored).

    The previous token stops working in the same transaction: only the new hash is kept.
    """
    new = generate_token()
    with transaction.atomic():
        previous_prefix = gateway.token_prefix
        gateway.token_prefix = new.prefix
        gateway.token_hash = new.token_hash
        gateway.save(update_fields=["token_prefix", "token_hash"])
        # The old token's cached answers must stop working at commit, in every web process.
        policy_cache.policy_cache_invalidate()
        audit_event_record(
            actor=actor,
            action="rotate_token",
            obj=gateway,
            changes={"token_prefix": [previous_prefix, new.prefix]},
            remote_addr=remote_addr,
        )
    return new.plaintext


def gateway_token_revoke(
    *, gateway: Gateway, actor: AbstractBaseUser | None, remote_addr: str | None = None
) -> None:
    """Remove the gateway's token: its usage posts are refused until a new one is issued."""
    with transaction.atomic():
        previous_prefix = gateway.token_prefix
        changed = Gateway.objects.filter(pk=gateway.pk, token_hash__isnull=False).update(
            token_prefix=None, token_hash=None
        )
        gateway.token_prefix = gateway.token_hash = None
        if changed:
            policy_cache.policy_cache_invalidate()
            audit_event_record(
                actor=actor,
                action="revoke_token",
                obj=gateway,
                changes={"token_prefix": [previous_prefix, None]},
                remote_addr=remote_addr,
            )


# --- Health ------------------------------------------------------------------------------------------


def restore_step() -> Decimal:
    """How much a restored deployment's weight cap rises per evaluation cycle."""
    return Decimal(str(getattr(settings, "ROUTING_RESTORE_STEP", "0.25")))


def deployment_health_report(
    *, deployment: Deployment, healthy: bool, source: str, reason: str = "", now: dt.datetime | None = None
) -> bool:
    """Record what a probe, a gateway or an operator saw. A failure drains the deployment at once;
    success after a failure starts a gradual restore (weight capped at one step, rising per
    cycle). Returns True when routing must be re-evaluated."""
    now = now or timezone.now()
    with transaction.atomic():
        profile = _profile_locked(deployment)
        if source == HealthSource.PROBE:
            profile.last_probe_at = now
        changed = False
        if healthy and profile.drained:
            profile.health, profile.restore_cap = Health.RESTORING, restore_step()
            changed = True
        elif not healthy and not profile.drained:
            profile.health, profile.restore_cap = Health.UNHEALTHY, None
            changed = True
        if changed:
            profile.health_source, profile.health_reason, profile.health_changed_at = (
                source,
                reason[:2000],
                now,
            )
        profile.save()
    return changed


def deployment_spot_notice(*, deployment: Deployment, source: str, reason: str = "") -> bool:
    """A spot interruption notice: drained at once (its pair takes the load at the next publish,
    which the caller triggers right away rather than waiting for the cycle)."""
    with transaction.atomic():
        profile = _profile_locked(deployment)
        if profile.health == Health.INTERRUPTED:
            return False
        profile.health, profile.restore_cap = Health.INTERRUPTED, None
        profile.health_source = HealthSource.SPOT_NOTICE
        profile.health_reason = (reason or f"spot interruption notice ({source})")[:2000]
        profile.health_changed_at = timezone.now()
        profile.save()
    return True


def restore_caps_advance() -> int:
    """One evaluation cycle: each restoring deployment's cap rises one step; at 1 it is healthy."""
    step = restore_step()
    advanced = 0
    with transaction.atomic():
        for profile in DeploymentRouting.objects.select_for_update().filter(health=Health.RESTORING):
            cap = (profile.restore_cap or Decimal(0)) + step
            if cap >= 1:
                profile.health, profile.restore_cap = Health.HEALTHY, None
            else:
                profile.restore_cap = cap
            profile.save(update_fields=["health", "restore_cap"])
            advanced += 1
    return advanced


def _profile_locked(deployment: Deployment) -> DeploymentRouting:
    DeploymentRouting.objects.get_or_create(deployment=deployment)
    return DeploymentRouting.objects.select_for_update().get(deployment=deployment)


def deployments_probe(*, timeout: float = 2.0) -> list[tuple[Deployment, bool, str]]:
    """HTTP GET every routed deployment's probe URL (2xx within `timeout` = healthy). Network only:
    the caller records the outcomes, so no transaction is held open while waiting on sockets."""
    outcomes = []
    for profile in selectors.deployments_to_probe():
        url = profile.probe_url or profile.deployment.endpoint_url.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (operator's URL)
                healthy, reason = 200 <= response.status < 300, f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            healthy, reason = False, f"HTTP {error.code} from {url}"
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            healthy, reason = False, f"{url}: {getattr(error, 'reason', error)}"
        outcomes.append((profile.deployment, healthy, reason))
    return outcomes


# --- Evaluation --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteOutcome:
    model_id: int
    request_class: str
    origin: str
    team_id: int | None
    weights: dict[int, float]
    changed: bool
    feasible: bool
    failed_constraint: str = ""
    message: str = ""
    pinned: bool = False


def routes_evaluate(
    *, model: ServedModel, now: dt.datetime | None = None, enforcement: list | None = None
) -> list[RouteOutcome]:
    """Solve every route of the model and store the weights (RouteState). An infeasible route keeps
    its last weights and raises an alert that names the constraint."""
    now = now or timezone.now()
    enforcement = selectors.enforcement_states(at=now) if enforcement is None else enforcement
    policy = selectors.policy_for_model(model=model)
    deployments = selectors.routable_deployments(model=model)
    ids = [d.id for d in deployments]
    unit_costs = selectors.unit_costs_per_1m_tokens(
        deployment_ids=ids, today=now.date(), currency=selectors.routing_currency()
    )
    rates = selectors.egress_rates()
    load = selectors.expected_load_tps(model=model, now=now)
    pins = selectors.pins_active(model=model, now=now)
    batch_share = float(policy.batch_share)
    reroutes = [s for s in enforcement if s.action == "reroute" and s.model_id in (None, model.id)]
    model_reroute = next((s for s in reroutes if s.team_id is None), None)
    team_reroutes = {s.team_id: s for s in reroutes if s.team_id is not None}
    states = {(s.request_class, s.origin, s.team_id): s for s in RouteState.objects.filter(model=model)}
    outcomes: list[RouteOutcome | None] = []
    pending: list[tuple[int, RouteState | None, RouteProblem, tuple[str, str, int | None]]] = []
    with transaction.atomic():
        for origin, gateway_provider, gateway_region in selectors.route_origins(model=model):
            candidates = tuple(
                selectors.route_candidates(
                    deployments=deployments,
                    origin=origin,
                    gateway_provider=gateway_provider,
                    gateway_region=gateway_region,
                    unit_costs=unit_costs,
                    latencies=selectors.route_latencies(deployment_ids=ids, origin=origin),
                    rates=rates,
                )
            )
            spec = selectors.policy_spec(policy=policy, origin=origin)
            routes: list[tuple[str, int | None, object]] = [
                (RequestClass.REALTIME, None, model_reroute),
                (RequestClass.BATCH, None, model_reroute),
            ] + [(RequestClass.REALTIME, team_id, state) for team_id, state in team_reroutes.items()]
            for request_class, team_id, reroute in routes:
                share = batch_share if request_class == RequestClass.BATCH else 1 - batch_share
                state = states.pop((request_class, origin, team_id), None)
                last = {int(k): float(v) for k, v in (state.weights if state else {}).items()}
                pin = (
                    selectors.pin_for_route(pins=pins, request_class=request_class, origin=origin)
                    if team_id is None
                    else None
                )
                outcome = (
                    _pinned_outcome(model, request_class, origin, pin, candidates, last) if pin else None
                )
                if outcome is None:
                    problem = _route_problem(reroute, candidates, spec, request_class, load * share, last)
                    pending.append((len(outcomes), state, problem, (request_class, origin, team_id)))
                    outcomes.append(None)
                else:
                    outcomes.append(outcome)
                    _route_state_save(model, outcome, state)
        # Every route of the model in one LP (routing.optimiser.routes_solve).
        solutions = routes_solve([problem for _, _, problem, _ in pending])
        for (index, state, problem, (request_class, origin, team_id)), solution in zip(
            pending, solutions, strict=True
        ):
            if not solution.feasible and problem.excluded_providers:
                # Nothing eligible outside the provider: still cheapest, the provider allowed.
                solution = route_solve(replace(problem, excluded_providers=()))
            outcome = RouteOutcome(
                model_id=model.id,
                request_class=request_class,
                origin=origin,
                team_id=team_id,
                weights=solution.weights,
                changed=solution.changed,
                feasible=solution.feasible,
                failed_constraint=solution.failed_constraint,
                message=solution.message,
            )
            outcomes[index] = outcome
            _route_state_save(model, outcome, state)
        # Team routes whose reroute was lifted: forget them so a new reroute starts fresh.
        stale = [s.pk for (cls, origin, team_id), s in states.items() if team_id is not None]
        RouteState.objects.filter(pk__in=stale).delete()
    for outcome in outcomes:
        if not outcome.feasible:
            _infeasible_alert(model, outcome, now)
    return outcomes


def _route_problem(
    reroute,
    candidates: tuple[Candidate, ...],
    spec: PolicySpec,
    request_class: str,
    load: float,
    last: dict[int, float],
) -> RouteProblem:
    excluded = (reroute.provider,) if reroute is not None and reroute.provider else ()
    # A reroute is about money: the rerouted traffic takes its cheapest eligible route, latency aside.
    return RouteProblem(
        candidates=candidates,
        policy=spec,
        request_class=RequestClass.BATCH if reroute is not None else request_class,
        load_tps=load,
        last_weights=last,
        excluded_providers=excluded,
    )


def _pinned_outcome(
    model: ServedModel,
    request_class: str,
    origin: str,
    pin: WeightPin,
    candidates: tuple[Candidate, ...],
    last: dict[int, float],
) -> RouteOutcome | None:
    by_slug = {c.slug: c for c in candidates}
    weights = {c.deployment_id: 0.0 for c in candidates}
    for slug, points in pin.weights.items():
        # A pin never overrides a drain: a failed deployment's pinned share goes to the others.
        if slug in by_slug and not by_slug[slug].drained:
            weights[by_slug[slug].deployment_id] = points / 100
    total = sum(weights.values())
    if total <= 0:
        return None  # every pinned deployment is drained: the optimiser routes around them
    weights = {d: w / total for d, w in weights.items()}
    return RouteOutcome(
        model_id=model.id,
        request_class=request_class,
        origin=origin,
        team_id=None,
        weights=weights,
        changed=weights != last,
        feasible=True,
        message=f"pinned until {pin.expires_at:%Y-%m-%d %H:%M} UTC: {pin.reason}",
        pinned=True,
    )


def _route_state_save(model: ServedModel, outcome: RouteOutcome, state: RouteState | None) -> None:
    weights = {str(d): share_text(w) for d, w in outcome.weights.items()}
    problem = "" if outcome.feasible else f"{outcome.failed_constraint}: {outcome.message}"
    # An infeasible route keeps its weights, unless a drain forced a relaxed solution.
    keep = outcome.feasible or outcome.changed
    if state is None:
        RouteState.objects.create(
            model=model,
            request_class=outcome.request_class,
            origin=outcome.origin,
            team_id=outcome.team_id,
            weights=weights if keep else {},
            last_problem=problem,
        )
    elif (keep and state.weights != weights) or state.last_problem != problem:
        if keep:
            state.weights = weights
        state.last_problem = problem
        state.save()


def _infeasible_alert(model: ServedModel, outcome: RouteOutcome, now: dt.datetime) -> None:
    where = f"{model.slug} {outcome.request_class}" + (f" from {outcome.origin}" if outcome.origin else "")
    alert_raise(
        kind=AlertKind.ROUTING_INFEASIBLE,
        severity="warning",
        dedup_key=(
            f"routing-infeasible:{model.slug}:{outcome.request_class}:{outcome.origin}:"
            f"{outcome.team_id or ''}:{outcome.failed_constraint}:{now:%Y-%m-%d}"
        ),
        message=(
            f"Routing policy for {where} is infeasible ({outcome.failed_constraint}): {outcome.message}"
        ),
        details={
            "model": model.slug,
            "request_class": outcome.request_class,
            "origin": outcome.origin,
            "team_id": outcome.team_id,
            "constraint": outcome.failed_constraint,
        },
    )


# --- Publishing --------------------------------------------------------------------------------------

PUSH_KINDS = ("haproxy", "webhook")


def policy_document_publish(
    *, gateway: Gateway, reason: str, reason_detail: str = "", enforcement: list | None = None
) -> tuple[PolicyDocument, bool]:
    """Publish the gateway's current document. Identical content makes no new version (returns the
    latest, False). A new version is pushed after commit to gateways that take pushes."""
    enforcement = selectors.enforcement_states() if enforcement is None else enforcement
    content = documents.gateway_content_build(gateway=gateway, enforcement=enforcement)
    digest = documents.content_hash(content)
    with transaction.atomic():
        # One publisher per gateway at a time: versions are consecutive and never collide.
        Gateway.objects.select_for_update().filter(pk=gateway.pk).first()
        latest = selectors.latest_document(gateway=gateway)
        if latest is not None and latest.content_hash == digest:
            return latest, False
        document = PolicyDocument.objects.create(
            gateway=gateway,
            version=(latest.version + 1) if latest else 1,
            content=content,
            content_hash=digest,
            reason=reason if latest else PublishReason.INITIAL,
            reason_detail=reason_detail[:4000],
            diff=documents.document_diff(latest.content if latest else None, content),
        )
        policy_cache.policy_cache_invalidate()
        if gateway.kind in PUSH_KINDS:
            from routing.tasks import policy_push  # tasks import services: import at call time

            document_id = document.id
            transaction.on_commit(lambda: policy_push.delay(document_id))
    return document, True


def policies_republish(
    *, reason: str, reason_detail: str = "", now: dt.datetime | None = None
) -> list[PolicyDocument]:
    """Re-evaluate every routed model and publish every gateway; returns the new versions."""
    now = now or timezone.now()
    enforcement = selectors.enforcement_states(at=now)
    model_ids = Gateway.served_models.through.objects.values_list("servedmodel_id", flat=True).distinct()
    problems = []
    for model in ServedModel.objects.filter(id__in=model_ids).order_by("slug"):
        for outcome in routes_evaluate(model=model, now=now, enforcement=enforcement):
            if not outcome.feasible:
                problems.append(f"{model.slug}/{outcome.request_class}: {outcome.failed_constraint}")
    detail = reason_detail + (f" (kept last weights: {'; '.join(problems)})" if problems else "")
    published = []
    for gateway in Gateway.objects.order_by("slug"):
        document, created = policy_document_publish(
            gateway=gateway, reason=reason, reason_detail=detail.strip(), enforcement=enforcement
        )
        if created:
            published.append(document)
    return published


def evaluation_cycle_run(
    *, now: dt.datetime | None = None, probe_timeout: float = 2.0
) -> list[PolicyDocument]:
    """One cycle: restoring deployments rise one step, probes decide health, then publish. A failing
    deployment is therefore drained in the same cycle its probe fails."""
    now = now or timezone.now()
    restore_caps_advance()
    health_changes = []
    for deployment, healthy, reason in deployments_probe(timeout=probe_timeout):
        if deployment_health_report(
            deployment=deployment, healthy=healthy, source=HealthSource.PROBE, reason=reason, now=now
        ):
            health_changes.append(f"{deployment.slug} {'healthy again' if healthy else 'failing'}: {reason}")
    if health_changes:
        return policies_republish(
            reason=PublishReason.HEALTH, reason_detail="; ".join(health_changes), now=now
        )
    return policies_republish(reason=PublishReason.COST, reason_detail="periodic evaluation", now=now)


def weight_pin_create(
    *,
    model: ServedModel,
    weights: dict[str, int],
    reason: str,
    expires_at: dt.datetime,
    actor: AbstractBaseUser | None,
    request_class: str = "",
    origin: str = "",
) -> WeightPin:
    """Pin a model's weights until `expires_at`; audited, published after commit."""
    pin = WeightPin(
        model=model,
        weights=weights,
        reason=reason,
        expires_at=expires_at,
        created_by=actor,
        request_class=request_class,
        origin=origin,
    )
    pin.full_clean()
    known = set(model.deployments.values_list("slug", flat=True))
    unknown = sorted(set(weights) - known)
    if unknown:
        raise ValidationError({"weights": f"Not deployments of {model.slug}: {', '.join(unknown)}."})
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    with transaction.atomic():
        pin.save()
        audit_event_record(
            actor=actor,
            action="pin_weights",
            obj=pin,
            changes={"weights": weights, "reason": reason, "expires_at": expires_at.isoformat()},
        )
        transaction.on_commit(lambda: _republish_later(PublishReason.MANUAL, f"pin: {reason}"))
    return pin


def _republish_later(reason: str, detail: str) -> None:
    from routing.tasks import policies_republish as republish_task

    republish_task.delay(reason=reason, detail=detail)


# --- Pushing -----------------------------------------------------------------------------------------


def policy_document_push(*, document_id: int, attempt: int = 1) -> PushAttempt | None:
    """Push one document to its gateway and record the attempt. Raises PushError (after recording
    it) when the push failed, so the task can retry; a document that is no longer the latest is
    not pushed (None): the newer one has its own push."""
    document = PolicyDocument.objects.select_related("gateway").get(pk=document_id)
    gateway = document.gateway
    latest = selectors.latest_document_tag(gateway_id=gateway.id)
    if latest is None or latest[0] != document.version:
        return None
    record = PushAttempt.objects.create(document=document, gateway=gateway, attempt=attempt)
    try:
        if gateway.kind == "haproxy":
            detail = haproxy.push(
                content=document.content, settings=gateway.push_settings, origin=gateway.origin_region
            )
            status_code = None
        elif gateway.kind == "webhook":
            body = documents.document_body(
                version=document.version, content_hash_hex=document.content_hash, content=document.content
            )
            status_code, detail = webhook.push(
                body=body, version=document.version, settings=gateway.push_settings
            )
        else:
            raise PushError(f"{gateway.get_kind_display()} gateways pull their document; nothing to push.")
    except PushError as error:
        PushAttempt.objects.filter(pk=record.pk).update(
            outcome=PushOutcome.FAILED, error=str(error)[:4000], finished_at=timezone.now()
        )
        raise
    PushAttempt.objects.filter(pk=record.pk).update(
        outcome=PushOutcome.SUCCEEDED,
        status_code=status_code,
        error=detail[:4000],
        finished_at=timezone.now(),
    )
    if gateway.kind == "haproxy":
        # The runtime API answered with the weights read back: that is this version applied.
        Gateway.objects.filter(pk=gateway.pk).update(
            applied_version=document.version, applied_at=timezone.now()
        )
    record.refresh_from_db()
    return record


def gateway_status_record(*, gateway: Gateway, report: dict, now: dt.datetime | None = None) -> list[str]:
    """A gateway's status report: the version it applied, per-deployment health and latencies, spot
    notices. Returns what changed routing (empty: nothing to republish)."""
    now = now or timezone.now()
    origin = report.get("origin") or gateway.origin_region
    changes = []
    deployments = {
        d.slug: d
        for d in Deployment.objects.filter(slug__in=[r["deployment"] for r in report.get("deployments", [])])
    }
    error_rate_limit = float(getattr(settings, "ROUTING_MAX_ERROR_RATE", 0.5))
    with transaction.atomic():
        Gateway.objects.filter(pk=gateway.pk).update(
            applied_version=report.get("applied_version"), applied_at=now, last_status=report
        )
        for row in report.get("deployments", []):
            deployment = deployments[row["deployment"]]
            if row.get("latency_p95_ms") is not None:
                RouteLatency.objects.update_or_create(
                    deployment=deployment,
                    origin=origin,
                    defaults={
                        "p95_ms": row["latency_p95_ms"],
                        "error_rate": row.get("error_rate") or 0,
                        "reported_by": gateway.slug,
                    },
                )
            if row.get("bytes_per_token") is not None:
                DeploymentRouting.objects.update_or_create(
                    deployment=deployment, defaults={"bytes_per_token": row["bytes_per_token"]}
                )
            if row.get("spot_notice"):
                if deployment_spot_notice(deployment=deployment, source=f"gateway {gateway.slug}"):
                    changes.append(f"spot notice for {deployment.slug} from {gateway.slug}")
                continue
            healthy = row.get("healthy")
            if row.get("error_rate") is not None and float(row["error_rate"]) > error_rate_limit:
                healthy = False
            if healthy is not None and deployment_health_report(
                deployment=deployment,
                healthy=bool(healthy),
                source=HealthSource.GATEWAY,
                reason=f"{gateway.slug}: error rate {row.get('error_rate')}",
                now=now,
            ):
                changes.append(
                    f"{deployment.slug} {'healthy again' if healthy else 'failing'} per {gateway.slug}"
                )
    return changes


def gateways_lag_check(*, now: dt.datetime | None = None) -> int:
    """Alert for each gateway that has not reported the latest version within the deadline."""
    now = now or timezone.now()
    deadline = dt.timedelta(seconds=int(getattr(settings, "ROUTING_APPLY_DEADLINE_SECONDS", 120)))
    raised = 0
    for gateway, document in selectors.gateways_lagging(now=now, deadline=deadline):
        _, created = alert_raise(
            kind=AlertKind.GATEWAY_LAG,
            severity="warning",
            dedup_key=f"gateway-lag:{gateway.slug}:v{document.version}",
            message=(
                f"Gateway {gateway.slug} reports version {gateway.applied_version or 'none'}; version "
                f"{document.version} was published at {document.created_at:%Y-%m-%d %H:%M:%S} UTC and should "
                f"be applied within {int(deadline.total_seconds())} s. Check its pushes and status reports."
            ),
            details={"gateway": gateway.slug, "latest": document.version, "applied": gateway.applied_version},
        )
        raised += int(created)
    return raised
