"""Writes of the cost dimensions people name by hand: teams, served models and deployments.

Each write validates first (a clear message per field, nothing saved on error) and is audited in
the same transaction through `audited_change` (attribution/audit.py), like mapping rules and
exchange rates. Slugs are what billing tags, mapping rules and gateways use to name a dimension, so
a rename changes the display name and keeps the slug.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import transaction
from django.utils.text import slugify

from attribution.audit import audited_change_send, model_snapshot, snapshot_changes
from attribution.choices import DeploymentState, PricingMode, Provider
from attribution.models import CloudAccount, Deployment, ServedModel, Team
from attribution.slugs import dimension_slugify, validate_dimension_slug


def _audit(*, actor: Any, obj, before: dict | None, remote_addr: str | None) -> None:
    audited_change_send(
        actor=actor,
        action="create" if before is None else "update",
        obj=obj,
        changes=snapshot_changes(before, model_snapshot(obj)),
        remote_addr=remote_addr,
    )


def _slug_check(errors: dict, *, model, slug: str, exclude_pk: int | None, what: str) -> str:
    # Models and deployments may have dots in their slugs (llama-3.1-70b); teams may not.
    dotted = model is not Team
    try:
        (validate_dimension_slug if dotted else validate_slug)(slug)
    except ValidationError:
        allowed = "letters, digits, hyphens, underscores and dots (not first, not two in a row)"
        errors.setdefault("slug", []).append(
            f"{slug!r} is not a slug: use "
            + (allowed if dotted else "lower-case letters, digits, hyphens and underscores")
            + "."
        )
        return slug
    if model.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        errors.setdefault("slug", []).append(f"A {what} with the slug {slug!r} already exists.")
    return slug


# --- Teams ------------------------------------------------------------------------------------------


def team_save(
    *,
    name: str,
    cost_center: str = "",
    slug: str = "",
    team: Team | None = None,
    actor: Any = None,
    remote_addr: str | None = None,
) -> Team:
    """Create a team (slug from the name unless given) or rename an existing one (its slug stays)."""
    name, cost_center = (name or "").strip(), (cost_center or "").strip()
    errors: dict[str, list[str]] = {}
    exclude_pk = team.pk if team is not None else None
    if not name:
        errors["name"] = ["A team needs a name."]
    elif len(name) > 200:
        errors["name"] = ["A team name has at most 200 characters."]
    elif Team.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        errors["name"] = [f"A team named {name!r} already exists."]
    if len(cost_center) > 100:
        errors["cost_center"] = ["A cost center has at most 100 characters."]
    if team is None:
        slug = (slug or "").strip() or slugify(name)[:100]
        if not slug and "name" not in errors:
            errors["slug"] = ["Give a slug: the name has no letters or digits to make one from."]
        elif slug:
            _slug_check(errors, model=Team, slug=slug, exclude_pk=None, what="team")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        before = None
        if team is not None:
            team = Team.objects.select_for_update().get(pk=team.pk)
            before = model_snapshot(team)
        else:
            team = Team(slug=slug)
        team.name, team.cost_center = name, cost_center
        team.save()
        _audit(actor=actor, obj=team, before=before, remote_addr=remote_addr)
    return team


# --- Served models and deployments -----------------------------------------------------------------


def served_model_save(
    *,
    name: str,
    family: str = "",
    slug: str = "",
    served_model: ServedModel | None = None,
    actor: Any = None,
    remote_addr: str | None = None,
) -> ServedModel:
    name, family = (name or "").strip(), (family or "").strip()
    errors: dict[str, list[str]] = {}
    exclude_pk = served_model.pk if served_model is not None else None
    if not name:
        errors["name"] = ["A model needs a name, e.g. llama-3.1-70b-instruct."]
    elif ServedModel.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        errors["name"] = [f"A model named {name!r} already exists."]
    if served_model is None:
        slug = (slug or "").strip() or dimension_slugify(name)[:100]
        if slug:
            _slug_check(errors, model=ServedModel, slug=slug, exclude_pk=None, what="model")
        elif "name" not in errors:
            errors["slug"] = ["Give a slug: the name has no letters or digits to make one from."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        before = None
        if served_model is not None:
            served_model = ServedModel.objects.select_for_update().get(pk=served_model.pk)
            before = model_snapshot(served_model)
        else:
            served_model = ServedModel(slug=slug)
        served_model.name, served_model.family = name, family
        served_model.save()
        _audit(actor=actor, obj=served_model, before=before, remote_addr=remote_addr)
    return served_model


# The deployment fields a person edits; `slug` only when creating (usage and bills refer to it).
DEPLOYMENT_FIELDS = (
    "model_id", "account_id", "provider", "region", "accelerator", "instance_type", "pricing_mode",
    "endpoint_url", "capacity_rps", "gpu_count", "residency_region", "resource_id", "state",
)  # fmt: skip


def deployment_validate(
    *, values: dict[str, Any], deployment: Deployment | None = None
) -> dict[str, list[str]]:
    """Field errors of a deployment's values (empty when it may be saved)."""
    errors: dict[str, list[str]] = {}
    if deployment is None:
        slug = (values.get("slug") or "").strip()
        if not slug:
            errors["slug"] = ["A deployment needs a slug, e.g. llama-70b-aws-use1-h100."]
        else:
            _slug_check(errors, model=Deployment, slug=slug, exclude_pk=None, what="deployment")
    if not values.get("model_id") or not ServedModel.objects.filter(pk=values["model_id"]).exists():
        errors["model"] = ["Choose the model this deployment serves."]
    if values.get("provider") not in Provider.values:
        errors["provider"] = [f"Choose a provider: {', '.join(Provider.values)}."]
    if values.get("pricing_mode") not in PricingMode.values:
        errors["pricing_mode"] = [f"Choose a pricing mode: {', '.join(PricingMode.values)}."]
    if values.get("state") not in DeploymentState.values:
        errors["state"] = [f"Choose a state: {', '.join(DeploymentState.values)}."]
    if not (values.get("region") or "").strip():
        errors["region"] = ["Give the region, e.g. us-east-1 or europe-west4."]
    account_id = values.get("account_id")
    if account_id:
        account = CloudAccount.objects.filter(pk=account_id).only("provider").first()
        if account is None:
            errors["account"] = ["That cloud account does not exist."]
        elif values.get("provider") in Provider.values and account.provider != values["provider"]:
            errors["account"] = [
                f"The account is on {account.get_provider_display()}, the deployment on "
                f"{Provider(values['provider']).label}; pick an account of the same provider."
            ]
    capacity = values.get("capacity_rps")
    if capacity is not None and Decimal(capacity) <= 0:
        errors["capacity_rps"] = ["Capacity must be more than 0 requests per second, or left empty."]
    if values.get("endpoint_url"):
        try:
            URLValidator(schemes=["http", "https"])(values["endpoint_url"])
        except ValidationError:
            errors["endpoint_url"] = [f"{values['endpoint_url']!r} is not an http(s) URL."]
    return errors


def deployment_save(
    *,
    values: dict[str, Any],
    deployment: Deployment | None = None,
    actor: Any = None,
    remote_addr: str | None = None,
) -> Deployment:
    """Create or edit a deployment (attribution's fields; routing's are saved by routing)."""
    errors = deployment_validate(values=values, deployment=deployment)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        before = None
        if deployment is not None:
            deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
            before = model_snapshot(deployment)
        else:
            deployment = Deployment(slug=values["slug"].strip())
        if values.get("capacity_rps") is not None:
            # The column's precision: an edit that re-sends "35" for 35.000 changes nothing.
            values = {**values, "capacity_rps": Decimal(values["capacity_rps"]).quantize(Decimal("0.001"))}
        for name in DEPLOYMENT_FIELDS:
            if name in values:
                value = values[name]
                setattr(deployment, name, value.strip() if isinstance(value, str) else value)
        deployment.save()
        _audit(actor=actor, obj=deployment, before=before, remote_addr=remote_addr)
    return deployment
