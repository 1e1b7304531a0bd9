"""URLs for bench/policy_api.py: the app's URLs plus a bare view that returns the same bytes as the
policy endpoint (body and headers: ETag, Cache-Control, Allow, Vary), with no authentication and no
database, served by the same gunicorn."""

from __future__ import annotations

import os
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns

BODY = Path(os.environ["BENCH_POLICY_BODY"]).read_bytes()
ETAG = os.environ["BENCH_POLICY_ETAG"]


HEADERS = {"ETag": ETAG, "Cache-Control": "no-cache", "Allow": "GET, HEAD, OPTIONS", "Vary": "Accept"}


def bare_policy(request: HttpRequest) -> HttpResponse:
    if request.headers.get("If-None-Match") == ETAG:
        return HttpResponse(status=304, headers=HEADERS)
    return HttpResponse(BODY, content_type="application/json", headers=HEADERS)


urlpatterns = [path("bench/bare-policy", bare_policy), *app_urlpatterns]
