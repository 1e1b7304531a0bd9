"""The Ingestion page: every ingest run with its progress, checks and restatements; a run's rejected
rows with their reasons and a CSV download; and, for those who may load bills (admin, finance:
`attribution.add_ingestrun`), retry of a failed run and upload of a billing file."""

from __future__ import annotations

import csv
import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from attribution.choices import IngestState
from attribution.ingest import selectors
from attribution.ingest.errors import IngestError
from attribution.ingest.formats import PARSERS
from attribution.ingest.manual import ingest_run_retry, ingest_upload_create
from attribution.models import CloudAccount, IngestRun

INGEST_PERMISSION = "attribution.add_ingestrun"


class _Echo:
    def write(self, value: str) -> str:
        return value


class UploadForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=CloudAccount.objects.order_by("slug"),
        to_field_name="slug",
        label="Cloud account",
        empty_label="Choose an account",
    )
    file = forms.FileField(
        label="Billing file",
        help_text="CUR 2.0 or legacy CUR (CSV, CSV.gz, Parquet), FOCUS, Google Cloud export, "
        "Azure cost details.",
    )
    source_format = forms.ChoiceField(
        label="Format",
        required=False,
        choices=[("auto", "Detect from the file"), *((parser.name, parser.label) for parser in PARSERS)],
    )
    billing_period = forms.CharField(
        label="Billing period",
        required=False,
        help_text="YYYY-MM; only needed for a file without rows.",
        widget=forms.TextInput(attrs={"placeholder": "YYYY-MM", "pattern": r"\d{4}-\d{2}"}),
    )

    def clean_billing_period(self) -> dt.date | None:
        value = (self.cleaned_data.get("billing_period") or "").strip()
        if not value:
            return None
        try:
            return dt.datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise forms.ValidationError(
                f"{value!r} is not a month: write it as YYYY-MM, e.g. 2026-11."
            ) from None


def _page(
    request: HttpRequest,
    *,
    upload_form: UploadForm | None = None,
    upload_open: bool = False,
    status: int = 200,
) -> HttpResponse:
    state = request.GET.get("state", "")
    account = request.GET.get("account", "")
    page = selectors.ingest_runs_page(state=state, account=account, page_number=request.GET.get("page", 1))
    may_ingest = request.user.has_perm(INGEST_PERMISSION)
    if may_ingest and upload_form is None:
        upload_form = UploadForm(initial={"account": account or None})
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
            "may_ingest": may_ingest,
            "upload_form": upload_form if may_ingest else None,
            "upload_open": upload_open or bool(upload_form is not None and upload_form.errors),
        },
        status=status,
    )


@login_required
@permission_required("attribution.view_ingestrun", raise_exception=True)
@require_GET
def ingestion_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@permission_required(INGEST_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def ingestion_upload(request: HttpRequest) -> HttpResponse:
    """GET: the Ingestion page with the upload form open (a link that can be shared). POST: upload."""
    if request.method == "GET":
        return _page(request, upload_open=True)
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        account = form.cleaned_data["account"]
        try:
            runs = ingest_upload_create(
                actor=request.user,
                account=account,
                filename=upload.name,
                content=upload,
                source_format=form.cleaned_data["source_format"] or "auto",
                billing_period=form.cleaned_data["billing_period"],
            )
        except IngestError as error:
            form.add_error("file", f"Nothing was loaded. {error}")
        else:
            queued = [run for run in runs if run.state == IngestState.PENDING]
            periods = ", ".join(f"{run.billing_period_start:%Y-%m}" for run in runs)
            if queued:
                numbers = ", ".join(f"#{run.pk}" for run in queued)
                messages.success(request, f"{upload.name}: {periods} queued as run {numbers}.")
            else:
                messages.info(request, f"{upload.name}: the same file is already loaded for {periods}.")
            return HttpResponseRedirect(f"{reverse('attribution:ingestion')}?account={account.slug}")
    return _page(request, upload_form=form, status=400)


@login_required
@permission_required(INGEST_PERMISSION, raise_exception=True)
@require_POST
def ingestion_run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    try:
        retry = ingest_run_retry(actor=request.user, run_id=run_id)
    except IngestError as error:
        messages.error(request, f"Run #{run_id} was not retried: {error}")
    else:
        messages.success(request, f"Run #{run_id} retried as run #{retry.pk}.")
    return HttpResponseRedirect(reverse("attribution:ingestion"))


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
