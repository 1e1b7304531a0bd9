"""Settings → Allocation rules: how shared cost (a GPU pool, untagged platform cost) is split, each
rule with its shares and its preview: what it moved over the last 30 days, per team or model.
Holders of attribution.add/change_allocationrule (admin; see setup_roles) create and edit rules
through attribution.allocation.services.allocation_rule_save (validated, audited with its shares)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from attribution.allocation.page_selectors import allocation_rules_with_effect
from attribution.allocation.services import allocation_rule_save
from attribution.models import (
    AllocationMethod,
    AllocationRule,
    CloudAccount,
    Deployment,
    IdlePolicy,
    ServedModel,
    Team,
)
from attribution.views.teams import service_errors_to_form

EDIT_PERMISSIONS = ("attribution.add_allocationrule", "attribution.change_allocationrule")


class AllocationRuleForm(forms.Form):
    name = forms.CharField(max_length=200)
    priority = forms.IntegerField(min_value=0, initial=100, help_text="Lower runs first")
    account = forms.ModelChoiceField(queryset=CloudAccount.objects.order_by("name"), required=False,
                                     empty_label="Any account")  # fmt: skip
    match_deployment = forms.ModelChoiceField(queryset=Deployment.objects.order_by("slug"), required=False,
                                              label="Pool: deployment", empty_label="—")  # fmt: skip
    match_tag_key = forms.CharField(
        max_length=200, required=False, label="Pool: tag key", help_text="e.g. pool"
    )
    match_tag_value = forms.CharField(max_length=500, required=False, label="Pool: tag value")
    method = forms.ChoiceField(choices=AllocationMethod.choices)
    idle_policy = forms.ChoiceField(choices=IdlePolicy.choices, label="Idle capacity")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    shares = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4, "placeholder": "search = 60\nads = 40"}),
        label="Fixed shares",
        help_text="Method “fixed”: one per line, team-slug = percent (model:slug = percent); total 100.",
    )  # fmt: skip

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("match_deployment") and not (data.get("match_tag_key") or "").strip():
            raise ValidationError("Say which cost is the pool: a deployment, or a tag key (and value).")
        parsed, problems = [], []
        teams = dict(Team.objects.values_list("slug", "pk"))
        models = dict(ServedModel.objects.values_list("slug", "pk"))
        for number, line in enumerate((data.get("shares") or "").splitlines(), start=1):
            if not line.strip():
                continue
            target, _, raw = line.partition("=")
            target, raw = target.strip(), raw.strip()
            try:
                percent = Decimal(raw)
            except InvalidOperation:
                problems.append(f"line {number}: {raw!r} is not a percent")
                continue
            if target.startswith("model:"):
                pk = models.get(target.removeprefix("model:").strip())
                share = {"team_id": None, "model_id": pk}
            else:
                pk = teams.get(target)
                share = {"team_id": pk, "model_id": None}
            if pk is None:
                problems.append(f"line {number}: no team or model with the slug {target!r}")
                continue
            if not Decimal(0) < percent <= 100:
                problems.append(f"line {number}: a share is more than 0 and at most 100 percent")
                continue
            parsed.append({**share, "percent": percent})
        if problems:
            self.add_error("shares", "; ".join(problems))
        data["share_list"] = parsed
        return data


def _rule_from(form: AllocationRuleForm, rule: AllocationRule | None) -> AllocationRule:
    rule = rule or AllocationRule()
    data = form.cleaned_data
    for name in ("name", "priority", "account", "match_deployment", "method", "idle_policy", "is_active"):
        setattr(rule, name, data.get(name))
    rule.match_tag_key = (data.get("match_tag_key") or "").strip()
    rule.match_tag_value = (data.get("match_tag_value") or "").strip()
    return rule


def _save(
    request: HttpRequest, form: AllocationRuleForm, rule: AllocationRule | None
) -> AllocationRule | None:
    if not form.is_valid():
        return None
    shares = form.cleaned_data["share_list"]
    try:
        return allocation_rule_save(
            rule=_rule_from(form, rule), shares=shares if form.cleaned_data["method"] == "fixed" else [],
            actor=request.user, remote_addr=request.META.get("REMOTE_ADDR"),
        )  # fmt: skip
    except ValidationError as error:
        service_errors_to_form(error, form)
        return None


@login_required
@permission_required("attribution.view_allocationrule", raise_exception=True)
@require_http_methods(["GET", "POST"])
def allocation_rules(request: HttpRequest) -> HttpResponse:
    may_edit = request.user.has_perms(EDIT_PERMISSIONS)
    form, status = (AllocationRuleForm() if may_edit else None), 200
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied(
                "Allocation rules are edited by admins (attribution.change_allocationrule)."
            )
        form = AllocationRuleForm(request.POST)
        saved = _save(request, form, None)
        if saved is not None:
            messages.success(
                request, f"Allocation rule {saved.name!r} created; it applies from the next allocation run."
            )
            return redirect("settings_allocation:index")
        status = 400
    rows, since = allocation_rules_with_effect(user=request.user, today=timezone.localdate())
    return render(
        request,
        "attribution/settings/allocation_rules.html",
        {"rows": rows, "since": since, "form": form, "may_edit": may_edit,
         "reads_all": request.user.has_perm("attribution.view_all_teams")},
        status=status,
    )  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def allocation_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_object_or_404(
        AllocationRule.objects.prefetch_related("shares__team", "shares__model"), pk=rule_id
    )
    if not request.user.has_perms(EDIT_PERMISSIONS):
        raise PermissionDenied("Allocation rules are edited by admins (attribution.change_allocationrule).")
    if request.method == "POST":
        form = AllocationRuleForm(request.POST)
        if _save(request, form, rule) is not None:
            messages.success(
                request, f"Allocation rule {rule.name!r} saved; it applies from the next allocation run."
            )
            return redirect("settings_allocation:index")
        status = 400
    else:
        lines = [
            f"{share.team.slug} = {format(share.percent.normalize(), 'f')}" if share.team_id
            else f"model:{share.model.slug} = {format(share.percent.normalize(), 'f')}"
            for share in rule.shares.all()
        ]  # fmt: skip
        form = AllocationRuleForm(initial={
            "name": rule.name, "priority": rule.priority, "account": rule.account_id,
            "match_deployment": rule.match_deployment_id, "match_tag_key": rule.match_tag_key,
            "match_tag_value": rule.match_tag_value, "method": rule.method, "idle_policy": rule.idle_policy,
            "is_active": rule.is_active, "shares": "\n".join(lines),
        })  # fmt: skip
        status = 200
    return render(request, "attribution/settings/allocation_rule_edit.html", {"rule": rule, "form": form},
                  status=status)  # fmt: skip
