"""Login throttling (django-axes): the backend that counts attempts, and the answer to a locked-out
login (AXES_LOCKOUT_CALLABLE)."""

from __future__ import annotations

import math

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """429 with Retry-After and a page that says why and for how long, for /login/ and the admin."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    context = {
        "failure_limit": get_failure_limit(request, credentials),
        "username": get_client_username(request, credentials) or "",
        "retry_minutes": max(1, math.ceil(seconds / 60)),
    }
    response = render(request, "registration/locked_out.html", context, status=429)
    response["Retry-After"] = str(seconds or 60)
    return response


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' check for every login that comes with a request (the login page, the admin).

    A call to authenticate() without a request comes from code in this process (a management
    command, a test): there is no client address to throttle, and axes would raise. It is left to
    the next backend instead."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
