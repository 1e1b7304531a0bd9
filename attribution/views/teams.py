"""Settings → Teams: the teams a user may see with their member counts; holders of
attribution.add_team create teams and holders of attribution.change_team rename them (admin; see
setup_roles). Writes go through attribution.dimensions.services (validated, audited)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from attribution.dimensions.selectors import teams_page
from attribution.dimensions.services import team_save
from attribution.models import Team


class TeamForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.CharField(
        max_length=100,
        required=False,
        help_text="Blank: made from the name. Tags and rules use it; it never changes.",
    )
    cost_center = forms.CharField(max_length=100, required=False, label="Cost center")


class TeamRenameForm(forms.Form):
    name = forms.CharField(max_length=200)
    cost_center = forms.CharField(max_length=100, required=False, label="Cost center")


def service_errors_to_form(error: ValidationError, form: forms.Form) -> None:
    """A service's field errors onto the form fields they name, the rest at the top."""
    for field, field_messages in getattr(error, "message_dict", {"__all__": error.messages}).items():
        for message in field_messages:
            form.add_error(field if field in form.fields else None, message)


@login_required
@permission_required("attribution.view_team", raise_exception=True)
@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest) -> HttpResponse:
    may_create = request.user.has_perm("attribution.add_team")
    form = TeamForm() if may_create else None
    status = 200
    if request.method == "POST":
        if not may_create:
            raise PermissionDenied("Creating teams needs the attribution.add_team permission (admin).")
        form = TeamForm(request.POST)
        if form.is_valid():
            try:
                team = team_save(
                    name=form.cleaned_data["name"],
                    slug=form.cleaned_data["slug"],
                    cost_center=form.cleaned_data["cost_center"],
                    actor=request.user,
                    remote_addr=request.META.get("REMOTE_ADDR"),
                )
            except ValidationError as error:
                service_errors_to_form(error, form)
            else:
                messages.success(request, f"Team {team.name!r} created (slug {team.slug}).")
                return redirect("settings_teams:index")
        status = 400
    query = request.GET.get("q", "").strip()
    return render(
        request,
        "attribution/settings/teams.html",
        {
            "page": teams_page(user=request.user, query=query, page_number=request.GET.get("page", 1)),
            "query": query,
            "form": form,
            "may_rename": request.user.has_perm("attribution.change_team"),
            "reads_all": request.user.has_perm("attribution.view_all_teams"),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def team_edit(request: HttpRequest, team_id: int) -> HttpResponse:
    # A team the user may not see is not found, whatever their permissions.
    team = get_object_or_404(Team.objects.restrict(request.user), pk=team_id)
    if not request.user.has_perm("attribution.change_team"):
        raise PermissionDenied("Renaming teams needs the attribution.change_team permission (admin).")
    if request.method == "POST":
        form = TeamRenameForm(request.POST)
        if form.is_valid():
            try:
                team = team_save(
                    team=team,
                    name=form.cleaned_data["name"],
                    cost_center=form.cleaned_data["cost_center"],
                    actor=request.user,
                    remote_addr=request.META.get("REMOTE_ADDR"),
                )
            except ValidationError as error:
                service_errors_to_form(error, form)
            else:
                messages.success(request, f"Team {team.slug} saved as {team.name!r}.")
                return redirect("settings_teams:index")
        status = 400
    else:
        form = TeamRenameForm(initial={"name": team.name, "cost_center": team.cost_center})
        status = 200
    return render(request, "attribution/settings/team_edit.html", {"team": team, "form": form}, status=status)
