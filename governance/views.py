"""Governance pages: budgets (list, detail with burn-down, form), alerts, quotas, the audit log.
Every page reads through querysets restricted to the user, so nothing they may not see is rendered."""

from __future__ import annotations

import csv
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from attribution.models import Team
from governance import access, alert_services, budget_services
from governance.alert_contributors import alert_contributors
from governance.choices import AlertKind
from governance.forms import BudgetForm, ThresholdFormSet, budget_data_from
from governance.models import Alert, AuditEvent, Budget, Quota
from governance.page_selectors import budget_burndown_figure, budget_rows
from governance.selectors import budget_status_detail, enforcement_active, quota_limit_effective

AUDIT_PAGE_SIZE = 200


def _editable_teams(user):
    if access.user_edits_any_scope(user=user):
        return Team.objects.order_by("name")
    return Team.objects.filter(pk__in=access.user_led_team_ids(user=user)).order_by("name")


def _may_create(user) -> bool:
    return access.user_edits_any_scope(user=user) or bool(access.user_led_team_ids(user=user))


@login_required
def budgets_list(request: HttpRequest) -> HttpResponse:
    rows = budget_rows(user=request.user)
    return render(request, "governance/budgets.html", {"rows": rows, "may_create": _may_create(request.user)})


@login_required
def budget_detail(request: HttpRequest, budget_id: int) -> HttpResponse:
    budget = get_object_or_404(
        Budget.objects.restrict(request.user).select_related("team", "model"), pk=budget_id
    )
    detail = budget_status_detail(budget=budget)
    thresholds = list(budget.thresholds.all())
    burndown = budget_burndown_figure(budget=budget, detail=detail, thresholds=thresholds)
    return render(
        request,
        "governance/budget_detail.html",
        {
            "budget": budget,
            "status": detail.status,
            "thresholds": thresholds,
            "events": budget.events.select_related("threshold").order_by("-created_at", "-id")[:100],
            "alerts": budget.alerts.order_by("-created_at")[:50],
            "figures": {"burndown": burndown},
            "may_edit": access.user_may_edit_team_scope(user=request.user, team_id=budget.team_id),
        },
    )


def _apply_service_errors(error: ValidationError, form: BudgetForm) -> None:
    for field, messages_ in getattr(error, "message_dict", {"__all__": error.messages}).items():
        target = field if field in form.fields else None
        for message in messages_:
            form.add_error(target, message)


@login_required
@require_http_methods(["GET", "POST"])
def budget_edit(request: HttpRequest, budget_id: int | None = None) -> HttpResponse:
    budget = None
    if budget_id is not None:
        budget = get_object_or_404(Budget.objects.restrict(request.user), pk=budget_id)
        if not access.user_may_edit_team_scope(user=request.user, team_id=budget.team_id):
            raise PermissionDenied("You may edit budgets of the teams you lead only.")
    elif not _may_create(request.user):
        raise PermissionDenied("Only admins, finance and team leads create budgets.")
    teams = _editable_teams(request.user)
    if request.method == "POST":
        form = BudgetForm(request.POST, teams=teams)
        thresholds = ThresholdFormSet(request.POST, prefix="thresholds")
        if form.is_valid() and thresholds.is_valid():
            data = budget_data_from(form, thresholds)
            try:
                if budget is None:
                    budget = budget_services.budget_create(
                        actor=request.user, data=data, remote_addr=request.META.get("REMOTE_ADDR")
                    )
                else:
                    budget = budget_services.budget_update(
                        actor=request.user,
                        budget=budget,
                        data=data,
                        remote_addr=request.META.get("REMOTE_ADDR"),
                    )
            except ValidationError as error:
                _apply_service_errors(error, form)
            else:
                messages.success(request, f"Budget {budget.name!r} saved.")
                return redirect("governance:budget", budget_id=budget.pk)
    else:
        initial = {}
        threshold_initial = []
        if budget is not None:
            initial = {
                name: getattr(budget, name)
                for name in ("name", "team", "model", "provider", "account", "period", "timezone",
                             "fiscal_year_start_month", "custom_start", "custom_end", "amount", "currency",
                             "action", "is_active")
            }  # fmt: skip
            threshold_initial = [
                {"percent": t.percent, "amount": t.amount, "basis": t.basis, "action": t.action,
                 "throttle_share": t.throttle_share}
                for t in budget.thresholds.all()
            ]  # fmt: skip
        form = BudgetForm(initial=initial, teams=teams)
        thresholds = ThresholdFormSet(initial=threshold_initial, prefix="thresholds")
    return render(
        request, "governance/budget_form.html", {"form": form, "thresholds": thresholds, "budget": budget}
    )


@login_required
def alerts_list(request: HttpRequest) -> HttpResponse:
    alerts = Alert.objects.restrict(request.user).select_related(
        "team", "budget__team", "budget__model", "budget__account", "acknowledged_by"
    )
    team, kind, state = (
        request.GET.get("team", ""),
        request.GET.get("kind", ""),
        request.GET.get("state", "open"),
    )
    if team:
        alerts = alerts.filter(team__slug=team)
    if kind:
        alerts = alerts.filter(kind=kind)
    if state in ("open", "acknowledged"):
        alerts = alerts.filter(acknowledged_at__isnull=(state == "open"))
    alerts = list(alerts.prefetch_related("deliveries__channel").order_by("-created_at")[:200])
    teams = list(Team.objects.restrict(request.user).order_by("name"))
    contributors = alert_contributors(alerts=alerts, user=request.user, teams=teams)
    # Asked once, not per row: who may acknowledge which team's alerts.
    edits_any, led = (
        access.user_edits_any_scope(user=request.user),
        access.user_led_team_ids(user=request.user),
    )
    return render(
        request,
        "governance/alerts.html",
        {
            "alerts": [
                (alert, edits_any or alert.team_id in led, contributors.get(alert.pk, [])) for alert in alerts
            ],
            "teams": teams, "kinds": AlertKind.choices,
            "selected": {"team": team, "kind": kind, "state": state},
        },
    )  # fmt: skip


@login_required
@require_POST
def alert_ack(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.restrict(request.user), pk=alert_id)
    alert_services.alert_acknowledge(
        alert=alert, actor=request.user, remote_addr=request.META.get("REMOTE_ADDR")
    )
    messages.success(request, "Alert acknowledged.")
    return redirect(request.POST.get("next") or "governance:alerts")


@login_required
def quotas_list(request: HttpRequest) -> HttpResponse:
    states = enforcement_active()
    rows = []
    for quota in (
        Quota.objects.restrict(request.user).select_related("team", "model").order_by("team__name", "id")
    ):
        limit, reason = quota_limit_effective(
            configured=quota.limit, team_id=quota.team_id, model_id=quota.model_id, states=states
        )
        rows.append({"quota": quota, "effective": limit, "reason": reason})
    return render(request, "governance/quotas.html", {"rows": rows})


def _audit_rows(request: HttpRequest):
    if not access.user_edits_any_scope(user=request.user):
        raise PermissionDenied("The audit log is for admin and finance.")
    rows = AuditEvent.objects.order_by("-created_at", "-id")
    actor, object_type = request.GET.get("actor", ""), request.GET.get("object_type", "")
    object_id, since, until = (
        request.GET.get("object_id", ""),
        request.GET.get("since", ""),
        request.GET.get("until", ""),
    )
    if actor:
        rows = rows.filter(actor_label=actor)
    if object_type:
        rows = rows.filter(object_type=object_type)
    if object_id:
        rows = rows.filter(object_id=object_id)
    try:
        if since:
            rows = rows.filter(created_at__date__gte=dt.date.fromisoformat(since))
        if until:
            rows = rows.filter(created_at__date__lte=dt.date.fromisoformat(until))
    except ValueError:
        messages.error(request, "Dates are YYYY-MM-DD; the date filter was not applied.")
    return rows, {
        "actor": actor,
        "object_type": object_type,
        "object_id": object_id,
        "since": since,
        "until": until,
    }


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    rows, selected = _audit_rows(request)
    if request.GET.get("format") == "csv":
        writer = csv.writer(_Echo())
        header = [
            "created_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object",
            "changes",
            "remote_addr",
        ]

        def lines():
            yield writer.writerow(header)
            for event in rows.iterator(chunk_size=2000):
                yield writer.writerow([
                    event.created_at.isoformat(), event.actor_label, event.action, event.object_type,
                    event.object_id, event.object_repr, event.changes, event.remote_addr or "",
                ])  # fmt: skip

        response = StreamingHttpResponse(lines(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
        return response
    object_types = AuditEvent.objects.order_by().values_list("object_type", flat=True).distinct()
    return render(
        request,
        "governance/audit.html",
        {"events": rows[:AUDIT_PAGE_SIZE], "selected": selected, "object_types": sorted(object_types),
         "page_size": AUDIT_PAGE_SIZE},
    )  # fmt: skip
