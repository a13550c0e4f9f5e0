"""One error shape for every API response: {"error": {"code", "message", "details"}}.

Codes and statuses follow the design's error table. Services raise `ServiceError` subclasses;
DRF's exceptions, Django's request-parsing errors and Django's own 400/403/404/500 paths are
mapped here, so no HTML error page reaches an API client.
"""

import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django.views.csrf import csrf_failure as django_csrf_failure
from rest_framework import exceptions as drf
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(Exception):
    """A failure a client can act on, raised by services and selectors."""

    code = "error"
    status = 400
    message = "The request could not be completed."
    # Whether the same call may succeed later (a provider's 429/5xx/timeout): callers that retry
    # on their own (tasks) use it to tell waiting from giving up.
    transient = False

    def __init__(self, message: str | None = None, *, code: str | None = None, status: int | None = None,
                 details: dict | None = None, retry_after: float | None = None) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        self.retry_after = retry_after
        super().__init__(self.message)


class ValidationFailed(ServiceError):
    code, status, message = "validation_error", 400, "The request is not valid."


class NotFound(ServiceError):
    code, status, message = "not_found", 404, "Not found."


class NotOwner(ServiceError):
    code, status, message = "not_owner", 403, "Only the owner may change this."


class Conflict(ServiceError):
    code, status, message = "conflict", 409, "The request conflicts with the current state."


class TooManyAttempts(ServiceError):
    code, status, message = "too_many_attempts", 429, "Too many wrong passwords; try again later."


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(code: str, message: str, status: int, details: Any = None,
                   retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse(error_body(code, message, details), status=status)
    if retry_after is not None:
        response["Retry-After"] = str(int(retry_after))
    return response


# DRF exception class -> stable code. Order matters: subclasses first.
_DRF_CODES: list[tuple[type, str]] = [
    (drf.ValidationError, "validation_error"),
    (drf.NotAuthenticated, "not_authenticated"),
    (drf.AuthenticationFailed, "not_authenticated"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
]


def _message(detail: Any, fallback: str) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], str):
        return detail[0]
    return fallback


def exception_handler(exc: Exception, context: dict):
    from rest_framework.response import Response

    if isinstance(exc, ServiceError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("request_too_large", "The request body is too large."), status=413)
    if isinstance(exc, (TooManyFilesSent, TooManyFieldsSent)):
        return Response(error_body("request_too_large", str(exc) or "Too many parts in the request."), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("bad_request", "The request could not be understood."), status=400)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's handler500 answers (JSON for API paths)

    if isinstance(exc, drf.ParseError):
        request = context.get("request")
        is_json = request is not None and "json" in (request.content_type or "")
        code = "malformed_json" if is_json else "malformed_request"
        response.data = error_body(code, _message(exc.detail, "Malformed request body."))
        return response

    code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), None)
    if code is None:  # custom APIException: use its own default code
        code = exc.default_code if isinstance(exc, drf.APIException) else "error"
    details: Any = {}
    if isinstance(exc, drf.ValidationError):
        details = {"fields": exc.detail} if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "The request is not valid."
        if isinstance(exc.detail, list):
            message = _message(exc.detail, message)
    elif isinstance(exc, drf.Throttled):
        details = {"retry_after": exc.wait}
        message = "Too many requests; retry later."
    else:
        message = _message(getattr(exc, "detail", ""), "Request failed.")
    response.data = error_body(code, message, details)
    return response


# --- Django-level handlers (outside DRF views) -------------------------------------------------

def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def bad_request(request: HttpRequest, exception: Exception | None = None):
    if wants_json(request):
        if isinstance(exception, RequestDataTooBig):
            return error_response("request_too_large", "The request body is too large.", 413)
        return error_response("bad_request", "The request could not be understood.", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None):
    if wants_json(request):
        return error_response("permission_denied", "You do not have permission to do this.", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None):
    if wants_json(request):
        return error_response("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    if wants_json(request):
        return error_response("server_error", "Internal server error.", 500)
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = ""):
    if wants_json(request):
        return error_response("permission_denied", f"CSRF check failed: {reason}", 403)
    return django_csrf_failure(request, reason)


@csrf_exempt  # it does nothing: an unknown path is a 404 for every method, not a CSRF 403
def api_not_found(request: HttpRequest, *args, **kwargs):
    """Catch-all for unknown /api paths: JSON 404 even when DEBUG shows HTML pages elsewhere."""
    return error_response("not_found", "No such API endpoint.", 404)
