"""Settings → Models and deployments: the served models and every deployment with its routing fields
(provider, region, accelerator, pricing mode, capacity in req/s and tokens/s, warm standby, spot pair,
residency, state). Everyone signed in reads this reference data (it names no team's spend); admins
(attribution.add/change_servedmodel, add/change_deployment, routing.change_deploymentrouting; see
setup_roles) create and edit through attribution.dimensions.services and routing.inventory_services,
which validate everything first and audit the change."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from attribution.choices import DeploymentState, PricingMode, Provider
from attribution.dimensions.services import served_model_save
from attribution.models import CloudAccount, Deployment, ServedModel
from routing.inventory_services import deployment_inventory_save
from routing.models import DeploymentRouting

PAGE_SIZE = 50
DEPLOYMENT_PERMISSIONS = (
    "attribution.add_deployment",
    "attribution.change_deployment",
    "routing.add_deploymentrouting",
    "routing.change_deploymentrouting",
)


class ServedModelForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="e.g. llama-3.1-70b-instruct")
    slug = forms.CharField(
        max_length=100, required=False, help_text="Blank: made from the name; it never changes."
    )
    family = forms.CharField(max_length=100, required=False, help_text="e.g. llama-3.1")


class ServedModelEditForm(forms.Form):
    name = forms.CharField(max_length=200)
    family = forms.CharField(max_length=100, required=False)


class DeploymentForm(forms.Form):
    slug = forms.CharField(max_length=120, help_text="e.g. llama-70b-aws-use1-h100; it never changes.")
    model = forms.ModelChoiceField(queryset=ServedModel.objects.order_by("name"))
    provider = forms.ChoiceField(choices=Provider.choices)
    account = forms.ModelChoiceField(
        queryset=CloudAccount.objects.order_by("name"), required=False, empty_label="No account (managed API)"
    )
    region = forms.CharField(max_length=64, help_text="e.g. us-east-1, europe-west4")
    residency_region = forms.CharField(
        max_length=32, required=False, label="Data residency", help_text="e.g. eu, us"
    )
    accelerator = forms.CharField(max_length=64, required=False, help_text="e.g. nvidia-h100-80gb")
    instance_type = forms.CharField(max_length=64, required=False, help_text="e.g. p5.48xlarge")
    gpu_count = forms.IntegerField(min_value=0, initial=0, label="GPUs")
    pricing_mode = forms.ChoiceField(choices=PricingMode.choices, label="Pricing mode")
    capacity_rps = forms.DecimalField(
        max_digits=12,
        decimal_places=3,
        required=False,
        label="Capacity (req/s)",
        help_text="Sustainable requests/s",
    )
    capacity_tps = forms.DecimalField(
        max_digits=14,
        decimal_places=3,
        required=False,
        label="Capacity (tokens/s)",
        help_text="Sustainable tokens/s",
    )
    warm_standby = forms.BooleanField(
        required=False, label="Warm standby", help_text="Gets traffic only when the others cannot carry it"
    )
    spot_pair = forms.ModelChoiceField(
        queryset=Deployment.objects.order_by("slug"), required=False, label="Spot pair",
        help_text="For a spot deployment: the on-demand one that takes its load on interruption",
    )  # fmt: skip
    state = forms.ChoiceField(choices=DeploymentState.choices, initial=DeploymentState.ACTIVE)
    endpoint_url = forms.URLField(max_length=500, required=False, label="Endpoint URL")
    probe_url = forms.URLField(max_length=500, required=False, label="Health probe URL",
                               help_text="Blank: the endpoint URL + /health")  # fmt: skip
    resource_id = forms.CharField(max_length=500, required=False, label="Billing resource id",
                                  help_text="The id its bill names (endpoint ARN, node pool…)")  # fmt: skip

    def __init__(self, *args, editing: Deployment | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if editing is not None:
            del self.fields["slug"]
            self.fields["spot_pair"].queryset = Deployment.objects.exclude(pk=editing.pk).order_by("slug")

    def values(self) -> tuple[dict, dict]:
        data = self.cleaned_data
        values = {
            name: data.get(name) or ""
            for name in ("region", "residency_region", "accelerator", "instance_type", "endpoint_url",
                         "resource_id", "provider", "pricing_mode", "state")
        }  # fmt: skip
        values.update(
            slug=data.get("slug", ""),
            model_id=data["model"].pk,
            account_id=data["account"].pk if data.get("account") else None,
            capacity_rps=data.get("capacity_rps"),
            gpu_count=data.get("gpu_count") or 0,
        )
        routing = {
            "capacity_tps": data.get("capacity_tps"),
            "warm_standby": bool(data.get("warm_standby")),
            "spot_pair_id": data["spot_pair"].pk if data.get("spot_pair") else None,
            "probe_url": data.get("probe_url") or "",
        }
        return values, routing


def _errors_to_form(error: ValidationError, form: forms.Form) -> None:
    for field, field_messages in getattr(error, "message_dict", {"__all__": error.messages}).items():
        for message in field_messages:
            form.add_error(field if field in form.fields else None, message)


def _remote_addr(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@login_required
@permission_required("attribution.view_deployment", raise_exception=True)
@require_http_methods(["GET", "POST"])
def models_and_deployments(request: HttpRequest) -> HttpResponse:
    user = request.user
    may_add_model = user.has_perm("attribution.add_servedmodel")
    model_form = ServedModelForm() if may_add_model else None
    status = 200
    if request.method == "POST":
        if not may_add_model:
            raise PermissionDenied("Adding models needs the attribution.add_servedmodel permission (admin).")
        model_form = ServedModelForm(request.POST)
        if model_form.is_valid():
            try:
                served = served_model_save(
                    **model_form.cleaned_data, actor=user, remote_addr=_remote_addr(request)
                )
            except ValidationError as error:
                _errors_to_form(error, model_form)
            else:
                messages.success(request, f"Model {served.name!r} added; now add its deployments.")
                return redirect("settings_routing:models")
        status = 400
    selected = {name: request.GET.get(name, "") for name in ("model", "provider", "state")}
    deployments = Deployment.objects.select_related("model", "account", "routing", "routing__spot_pair")
    if selected["model"]:
        deployments = deployments.filter(model__slug=selected["model"])
    if selected["provider"]:
        deployments = deployments.filter(provider=selected["provider"])
    if selected["state"]:
        deployments = deployments.filter(state=selected["state"])
    page = Paginator(deployments.order_by("model__name", "slug"), PAGE_SIZE).get_page(
        request.GET.get("page", 1)
    )
    served_models = list(
        ServedModel.objects.annotate(deployments_count=Count("deployments")).order_by("name")
    )
    return render(
        request,
        "routing/settings/models.html",
        {
            "served_models": served_models,
            "page": page,
            "selected": selected,
            "providers": Provider.choices,
            "states": DeploymentState.choices,
            "model_form": model_form,
            "may_edit_models": user.has_perm("attribution.change_servedmodel"),
            "may_edit_deployments": user.has_perms(DEPLOYMENT_PERMISSIONS),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def served_model_edit(request: HttpRequest, model_id: int) -> HttpResponse:
    served = get_object_or_404(ServedModel, pk=model_id)
    if not request.user.has_perm("attribution.change_servedmodel"):
        raise PermissionDenied("Editing models needs the attribution.change_servedmodel permission (admin).")
    if request.method == "POST":
        form = ServedModelEditForm(request.POST)
        if form.is_valid():
            try:
                served_model_save(served_model=served, **form.cleaned_data, actor=request.user,
                                  remote_addr=_remote_addr(request))  # fmt: skip
            except ValidationError as error:
                _errors_to_form(error, form)
            else:
                messages.success(request, f"Model {served.slug} saved.")
                return redirect("settings_routing:models")
        status = 400
    else:
        form, status = ServedModelEditForm(initial={"name": served.name, "family": served.family}), 200
    return render(
        request, "routing/settings/model_edit.html", {"served": served, "form": form}, status=status
    )


def _deployment_form_page(
    request: HttpRequest, *, deployment: Deployment | None, initial: dict
) -> HttpResponse:
    if not request.user.has_perms(DEPLOYMENT_PERMISSIONS):
        raise PermissionDenied("Creating and editing deployments needs the deployment permissions (admin).")
    if request.method == "POST":
        form = DeploymentForm(request.POST, editing=deployment)
        if form.is_valid():
            values, routing = form.values()
            try:
                saved = deployment_inventory_save(
                    values=values, routing=routing, deployment=deployment, actor=request.user,
                    remote_addr=_remote_addr(request),
                )  # fmt: skip
            except ValidationError as error:
                _errors_to_form(error, form)
            else:
                messages.success(request, f"Deployment {saved.slug} saved; routing policies are republished.")
                return redirect("settings_routing:models")
        status = 400
    else:
        form, status = DeploymentForm(initial=initial, editing=deployment), 200
    return render(
        request,
        "routing/settings/deployment_form.html",
        {"deployment": deployment, "form": form},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def deployment_new(request: HttpRequest, model_id: int) -> HttpResponse:
    served = get_object_or_404(ServedModel, pk=model_id)
    return _deployment_form_page(request, deployment=None, initial={"model": served.pk})


@login_required
@require_http_methods(["GET", "POST"])
def deployment_edit(request: HttpRequest, deployment_id: int) -> HttpResponse:
    deployment = get_object_or_404(Deployment, pk=deployment_id)
    profile = DeploymentRouting.objects.filter(deployment=deployment).first()
    initial = {
        name: getattr(deployment, name)
        for name in ("provider", "region", "residency_region", "accelerator", "instance_type", "gpu_count",
                     "pricing_mode", "capacity_rps", "state", "endpoint_url", "resource_id")
    }  # fmt: skip
    initial.update(model=deployment.model_id, account=deployment.account_id)
    if profile is not None:
        initial.update(capacity_tps=profile.capacity_tps, warm_standby=profile.warm_standby,
                       spot_pair=profile.spot_pair_id, probe_url=profile.probe_url)  # fmt: skip
    return _deployment_form_page(request, deployment=deployment, initial=initial)
