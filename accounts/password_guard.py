"""One brute-force guard for every password door (django-axes, database handler).

Logins go through `authenticate()`, where axes' backend refuses a locked (account, address)
pair and its signal handler counts failures. Doors that check a password without logging in
(password change, email change) use `verify_password`, which feeds the same counters.
"""

import math

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse

from config.api.errors import TooManyAttempts, error_response, wants_json

from .models import normalize_email


def _normalise(email: str | None) -> str | None:
    return normalize_email(email) if isinstance(email, str) else None


def axes_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The account an attempt is counted against: the email, however the door named it."""
    credentials = credentials or {}
    name = credentials.get("username") or credentials.get("email")
    if name is None and request is not None:
        name = request.POST.get("username")
    return _normalise(name)


def retry_after_seconds(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600


def locked_out() -> TooManyAttempts:
    return TooManyAttempts(retry_after=retry_after_seconds())


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the answer to a locked-out login on any door."""
    error = locked_out()
    if wants_json(request):
        return error_response(error)
    response = HttpResponse(f"{error.message}\n", status=error.status, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = error.retry_after_header()
    return response


def verify_password(*, request: HttpRequest | None, user, password: str) -> bool:
    """Check a password outside a login, counted like a login attempt. Raises TooManyAttempts
    while the pair is locked (before checking, so the right password does not help)."""
    if request is None:  # not an HTTP door (management code): nothing to guard
        return user.check_password(password)
    credentials = {"username": _normalise(user.email)}
    if not AxesProxyHandler.is_allowed(request, credentials):
        raise locked_out()
    if user.check_password(password):
        return True
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    if getattr(request, "axes_locked_out", False):
        raise locked_out()
    return False
