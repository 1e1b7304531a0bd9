"""Writes of Settings → Models and deployments: a deployment's inventory (attribution's fields) and its
routing profile (capacity in tokens/s, warm standby, spot pair, probe URL) saved together.

Everything is validated before anything is written, so a bad value in either half leaves both as
they were; the change is audited (the deployment by attribution's audited_change, the routing
profile here) and the routing policies are republished after the commit, because capacity, state
and pairing change the weights."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from attribution.audit import model_snapshot, snapshot_changes
from attribution.choices import PricingMode
from attribution.dimensions.services import deployment_save, deployment_validate
from attribution.models import Deployment
from governance.services import audit_event_record
from routing.choices import PublishReason
from routing.models import DeploymentRouting

ROUTING_FIELDS = ("capacity_tps", "warm_standby", "spot_pair_id", "probe_url")


def _routing_errors(values: dict[str, Any], routing: dict[str, Any], deployment: Deployment | None) -> dict:
    errors: dict[str, list[str]] = {}
    capacity = routing.get("capacity_tps")
    if capacity is not None and Decimal(capacity) <= 0:
        errors["capacity_tps"] = ["Capacity must be more than 0 tokens per second, or left empty."]
    pair_id = routing.get("spot_pair_id")
    if pair_id:
        pair = Deployment.objects.filter(pk=pair_id).only("model_id", "pricing_mode", "slug").first()
        if values.get("pricing_mode") != PricingMode.SPOT:
            errors["spot_pair"] = [
                "Only a spot deployment has a spot pair; clear it or set pricing mode to spot."
            ]
        elif pair is None:
            errors["spot_pair"] = ["That deployment does not exist."]
        elif deployment is not None and pair.pk == deployment.pk:
            errors["spot_pair"] = ["A deployment cannot be its own spot pair."]
        elif pair.model_id != values.get("model_id"):
            errors["spot_pair"] = [f"{pair.slug} serves another model; the pair must serve the same one."]
        elif pair.pricing_mode == PricingMode.SPOT:
            errors["spot_pair"] = [f"{pair.slug} is spot too; pair a spot deployment with an on-demand one."]
    if routing.get("probe_url"):
        try:
            URLValidator(schemes=["http", "https"])(routing["probe_url"])
        except ValidationError:
            errors["probe_url"] = [f"{routing['probe_url']!r} is not an http(s) URL."]
    return errors


def deployment_inventory_save(
    *,
    values: dict[str, Any],
    routing: dict[str, Any],
    deployment: Deployment | None = None,
    actor: Any = None,
    remote_addr: str | None = None,
) -> Deployment:
    """Create or edit a deployment with its routing profile, in one transaction, audited."""
    errors = deployment_validate(values=values, deployment=deployment)
    for field, messages in _routing_errors(values, routing, deployment).items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        deployment = deployment_save(
            values=values, deployment=deployment, actor=actor, remote_addr=remote_addr
        )
        profile = DeploymentRouting.objects.select_for_update().filter(deployment=deployment).first()
        before = model_snapshot(profile) if profile is not None else None
        profile = profile or DeploymentRouting(deployment=deployment)
        if routing.get("capacity_tps") is not None:
            routing = {**routing, "capacity_tps": Decimal(routing["capacity_tps"]).quantize(Decimal("0.001"))}
        for name in ROUTING_FIELDS:
            if name in routing:
                value = routing[name]
                setattr(profile, name, value.strip() if isinstance(value, str) else value)
        profile.save()
        changes = snapshot_changes(before, model_snapshot(profile))
        if before is None or changes["before"]:
            audit_event_record(
                actor=actor if getattr(actor, "is_authenticated", False) else None,
                action="create" if before is None else "update",
                obj=profile,
                changes=changes,
                remote_addr=remote_addr,
            )
        from routing.services import _republish_later

        detail = f"deployment {deployment.slug} edited"
        transaction.on_commit(lambda: _republish_later(PublishReason.MANUAL, detail))
    return deployment
