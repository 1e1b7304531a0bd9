"""The mapping rules page: lists the rules and, for holders of the rule permissions, edits them
with a live preview. The page reads rules through the ORM once; edits go through the REST API
(audited by the service)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from attribution.api.rules import DimensionRuleSerializer, user_may_edit_rules
from attribution.mapping.services import REAPPLY_KIND
from attribution.models import (
    BackgroundRun,
    CloudAccount,
    Deployment,
    DimensionRule,
    RuleMatchField,
    RuleOperator,
    ServedModel,
    Team,
)


def rules_page_data(*, user) -> dict:
    """Everything the page script needs, in one JSON object (a handful of queries, no N+1)."""
    rules = DimensionRule.objects.select_related("account", "set_team", "set_model", "set_deployment")
    rules = rules.order_by("priority", "id")
    latest_run = BackgroundRun.objects.filter(kind=REAPPLY_KIND).order_by("-id").first()
    return {
        "can_edit": user_may_edit_rules(user),
        "can_reapply": user.has_perm("attribution.reapply_rules"),
        "rules": DimensionRuleSerializer(rules, many=True).data,
        "choices": {
            "match_field": [[value, label] for value, label in RuleMatchField.choices],
            "operator": [[value, label] for value, label in RuleOperator.choices],
            "account": list(CloudAccount.objects.order_by("slug").values_list("slug", "name")),
            "set_team": list(Team.objects.order_by("name").values_list("slug", "name")),
            "set_model": list(ServedModel.objects.order_by("name").values_list("slug", "name")),
            "set_deployment": list(Deployment.objects.order_by("slug").values_list("slug", "slug")),
        },
        "latest_run": latest_run.pk if latest_run else None,
    }


@login_required
@require_GET
def rules_page(request: HttpRequest) -> HttpResponse:
    return render(request, "attribution/rules.html", {"page": rules_page_data(user=request.user)})
