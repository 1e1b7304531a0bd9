"""The Ingestion page: every ingest run with its progress, checks and restatements; a run's rejected
rows with their reasons and a CSV download. Read-only here (retry and upload are not built yet)."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from attribution.choices import IngestState
from attribution.ingest import selectors
from attribution.models import CloudAccount, IngestRun


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@permission_required("attribution.view_ingestrun", raise_exception=True)
@require_GET
def ingestion_page(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    account = request.GET.get("account", "")
    page = selectors.ingest_runs_page(state=state, account=account, page_number=request.GET.get("page", 1))
    return render(
        request,
        "attribution/ingestion.html",
        {
            "page": page,
            "state": state,
            "account": account,
            "states": IngestState.choices,
            "accounts": CloudAccount.objects.order_by("slug").values_list("slug", flat=True),
            "live": any(
                view.run.state in (IngestState.PENDING, IngestState.RUNNING) for view in page.object_list
            ),
            "may_see_rejected": request.user.has_perm("attribution.view_rejectedrow"),
        },
    )


@login_required
@permission_required("attribution.view_rejectedrow", raise_exception=True)
@require_GET
def rejected_rows_page(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        run = selectors.ingest_run_get(run_id=run_id)
    except IngestRun.DoesNotExist as error:
        raise Http404(f"No ingest run #{run_id}.") from error
    if request.GET.get("format") == "csv":
        writer = csv.writer(_Echo())
        rows = selectors.rejected_rows_all(run_id=run.pk)
        header = [["file", "line", "reason", "raw_text"]]
        response = StreamingHttpResponse(
            (writer.writerow(row) for source in (header, rows) for row in source),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="rejected-rows-run-{run.pk}.csv"'
        return response
    page = selectors.rejected_rows_page(run_id=run.pk, page_number=request.GET.get("page", 1))
    return render(request, "attribution/rejected_rows.html", {"run": run, "page": page})
