"""The error catalogue: one typed `ServiceError` per row of the design's error table, and the one
place an error becomes an HTTP answer: `{"error": {"code", "message", "details"}}`.

Services raise these classes. DRF's exceptions, Django's request-parsing errors and Django's own
400/403/404/500 paths are mapped onto them here, so no HTML error page reaches an API client and
no error body is built anywhere else.
"""

import math
from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf

# code -> class, filled as the classes below are defined (each code exactly once).
CATALOGUE: dict[str, type["ServiceError"]] = {}


class ServiceError(Exception):
    """A failure a client can act on. Subclasses fix `code`, `status` and the default message."""

    code: ClassVar[str]
    status: ClassVar[int]
    message: str = "The request could not be completed."
    # Whether the same call may succeed later (a provider's 429/5xx/timeout): callers that retry
    # on their own (tasks) use it to tell waiting from giving up.
    transient: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        code = cls.__dict__.get("code")
        if code is not None:
            if code in CATALOGUE:
                raise TypeError(f"error code {code!r} is defined twice ({CATALOGUE[code].__name__}, {cls.__name__})")
            CATALOGUE[code] = cls

    def __init__(self, message: str | None = None, *, details: dict | None = None,
                 retry_after: float | None = None) -> None:
        self.message = message or type(self).message
        self.details = details or {}
        self.retry_after = retry_after
        super().__init__(self.message)

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def retry_after_header(self) -> str | None:
        return None if self.retry_after is None else str(max(1, math.ceil(self.retry_after)))


def error_class(code: str) -> type[ServiceError]:
    """The catalogue class of a code (KeyError for a code the table does not have)."""
    return CATALOGUE[code]


# --- 400 -------------------------------------------------------------------------------------------
class ValidationFailed(ServiceError):
    code, status, message = "validation_error", 400, "The request is not valid."


class InvalidAudio(ServiceError):
    code, status, message = "invalid_audio", 400, "An uploaded file is not usable audio."


class InvalidImage(ServiceError):
    code, status, message = "invalid_image", 400, "An uploaded file is not a usable image."


class TextTooLong(ServiceError):
    code, status, message = "text_too_long", 400, "The text is longer than the model accepts."


class MalformedJson(ServiceError):
    code, status, message = "malformed_json", 400, "The JSON body could not be parsed."


class MalformedRequest(ServiceError):
    code, status, message = "malformed_request", 400, "The request could not be understood."


class InvalidResetToken(ServiceError):
    code, status, message = "invalid_reset_token", 400, "The reset link is invalid or has expired."


# --- 401 / 403 -------------------------------------------------------------------------------------
class NotAuthenticated(ServiceError):
    code, status, message = "not_authenticated", 401, "Authentication credentials were not provided or are not valid."


class NotOwner(ServiceError):
    code, status, message = "not_owner", 403, "Only the owner may change this."


class PermissionDenied(ServiceError):
    code, status, message = "permission_denied", 403, "You do not have permission to do this."


# --- 404 -------------------------------------------------------------------------------------------
class NotFound(ServiceError):
    code, status, message = "not_found", 404, "Not found."


class VoiceNotFound(ServiceError):
    code, status, message = "voice_not_found", 404, "Voice not found."


class JobNotFound(ServiceError):
    code, status, message = "job_not_found", 404, "Speech job not found."


class BookNotFound(ServiceError):
    code, status, message = "book_not_found", 404, "Book not found."


class TokenNotFound(ServiceError):
    code, status, message = "token_not_found", 404, "No such device token."


# --- 405 / 406 -------------------------------------------------------------------------------------
class MethodNotAllowed(ServiceError):
    code, status, message = "method_not_allowed", 405, "This method is not allowed here."


class NotAcceptable(ServiceError):
    code, status, message = "not_acceptable", 406, "No representation matches the Accept header."


# --- 409 -------------------------------------------------------------------------------------------
class VoiceNotReady(ServiceError):
    code, status, message = "voice_not_ready", 409, "The voice is not ready."


class VoiceBlocked(ServiceError):
    code, status, message = "voice_blocked", 409, "A moderator blocked this voice."


class BookNotReady(ServiceError):
    code, status, message = "book_not_ready", 409, "Exports need every line of the book narrated: retry the failed lines first."


class VoiceLimitReached(ServiceError):
    code, status, message = "voice_limit_reached", 409, "No free voice slot."


class JobNotCancellable(ServiceError):
    code, status, message = "job_not_cancellable", 409, "Only a queued job can be cancelled."


class RequestInProgress(ServiceError):
    code, status, message = "request_in_progress", 409, "A request with this Idempotency-Key is still in progress."


# --- 413 / 415 / 422 -------------------------------------------------------------------------------
class RequestTooLarge(ServiceError):
    code, status, message = "request_too_large", 413, "The request body is too large."


class UnsupportedMediaType(ServiceError):
    code, status, message = "unsupported_media_type", 415, "This content type is not accepted here."


class IdempotencyKeyReused(ServiceError):
    code, status, message = "idempotency_key_reused", 422, "This Idempotency-Key was used for a different request."


# --- 429 -------------------------------------------------------------------------------------------
class QuotaExceeded(ServiceError):
    code, status, message = "quota_exceeded", 429, "This month's characters are used up."


class Throttled(ServiceError):
    code, status, message = "throttled", 429, "Too many requests; retry later."


class RateLimited(ServiceError):
    code, status, message = "rate_limited", 429, "The speech provider is busy; retry later."
    transient = True


class TooManyAttempts(ServiceError):
    code, status, message = "too_many_attempts", 429, "Too many wrong passwords; try again later."


# --- 5xx -------------------------------------------------------------------------------------------
class ServerError(ServiceError):
    code, status, message = "server_error", 500, "Internal server error."


class ProviderRejected(ServiceError):
    code, status, message = "provider_rejected", 502, "The speech provider refused the request."


class ProviderQuotaExceeded(ServiceError):
    code, status, message = "provider_quota_exceeded", 503, "The service's speech provider account is out of characters."


class ProviderUnavailable(ServiceError):
    code, status, message = "provider_unavailable", 503, "The speech provider is unavailable; retry later."
    transient = True


class InvalidApiKey(ServiceError):
    code, status, message = "invalid_api_key", 503, "The service's speech provider key is not valid."


# --- Rendering -------------------------------------------------------------------------------------

def error_response(error: ServiceError) -> JsonResponse:
    """The answer for an error outside DRF views (middleware, Django handlers, websocket refusal)."""
    response = JsonResponse(error.body(), status=error.status)
    if (retry_after := error.retry_after_header()) is not None:
        response["Retry-After"] = retry_after
    return response


def _first_message(detail: Any, fallback: str) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], str):
        return detail[0]
    return fallback


def _from_drf(exc: drf.APIException, request) -> ServiceError:
    """DRF's exceptions as catalogue errors."""
    if isinstance(exc, drf.ValidationError):
        if isinstance(exc.detail, dict):
            return ValidationFailed(details={"fields": exc.detail})
        return ValidationFailed(_first_message(exc.detail, ValidationFailed.message),
                                details={"non_field_errors": exc.detail})
    if isinstance(exc, drf.ParseError):
        is_json = request is not None and "json" in (request.content_type or "")
        cls = MalformedJson if is_json else MalformedRequest
        return cls(_first_message(exc.detail, cls.message))
    if isinstance(exc, drf.Throttled):
        return Throttled(details={"retry_after": exc.wait}, retry_after=exc.wait)
    for drf_class, ours in ((drf.NotAuthenticated, NotAuthenticated), (drf.AuthenticationFailed, NotAuthenticated),
                            (drf.PermissionDenied, PermissionDenied), (drf.NotFound, NotFound),
                            (drf.MethodNotAllowed, MethodNotAllowed), (drf.NotAcceptable, NotAcceptable),
                            (drf.UnsupportedMediaType, UnsupportedMediaType)):
        if isinstance(exc, drf_class):
            return ours(_first_message(exc.detail, ours.message))
    return ServerError()


def as_service_error(exc: Exception, request=None) -> ServiceError | None:
    """Any exception a request can end with, as a catalogue error; None for a bug (a 500)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, (TooManyFilesSent, TooManyFieldsSent)):
        return RequestTooLarge(str(exc) or "Too many parts in the request.")
    if isinstance(exc, SuspiciousOperation):
        return MalformedRequest()
    if isinstance(exc, Http404):
        return NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return PermissionDenied()
    if isinstance(exc, drf.APIException):
        return _from_drf(exc, request)
    return None


def exception_handler(exc: Exception, context: dict):
    """DRF's EXCEPTION_HANDLER: every error a view raises, in the one shape."""
    from rest_framework.response import Response
    from rest_framework.views import set_rollback

    error = as_service_error(exc, context.get("request"))
    if error is None:
        return None  # a bug: Django's handler500 answers (JSON for API paths)
    set_rollback()  # as DRF's own handler does, for ATOMIC_REQUESTS
    response = Response(error.body(), status=error.status)
    if (retry_after := error.retry_after_header()) is not None:
        response["Retry-After"] = retry_after
    if auth_header := getattr(exc, "auth_header", None):  # set by DRF for 401s: "Token"
        response["WWW-Authenticate"] = auth_header
    return response


# --- Django-level handlers (outside DRF views) -------------------------------------------------------

def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def bad_request(request: HttpRequest, exception: Exception | None = None):
    if wants_json(request):
        return error_response(RequestTooLarge() if isinstance(exception, RequestDataTooBig) else MalformedRequest())
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None):
    if wants_json(request):
        return error_response(PermissionDenied())
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None):
    if wants_json(request):
        return error_response(NotFound())
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    if wants_json(request):
        return error_response(ServerError())
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = ""):
    if wants_json(request):
        return error_response(PermissionDenied(f"CSRF check failed: {reason}"))
    return django_csrf_failure(request, reason)


@csrf_exempt  # it does nothing: an unknown path is a 404 for every method, not a CSRF 403
def api_not_found(request: HttpRequest, *args, **kwargs):
    """Catch-all for unknown /api paths: JSON 404 even when DEBUG shows HTML pages elsewhere."""
    return error_response(NotFound("No such API endpoint."))
