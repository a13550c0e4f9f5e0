"""Request ids on every log line: taken from `X-Request-ID` (or made), echoed in the response,
carried into the django-q2 tasks a request queues, and set again while the task runs."""

import logging
import re
import threading
import time
import uuid
from contextvars import ContextVar, Token

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # a client's id is kept only if it is this tame
TASK_KEY = "request_id"

access_logger = logging.getLogger("storybook.access")


def incoming_request_id(header: str | None) -> str:
    return header if header and _VALID.fullmatch(header) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record ("-" outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class RequestIdMiddleware:
    """First in the chain. Sets the id for the request's context (asgiref runs each request in its
    own context, and the sync view in a copy of it) and is not reset on the way out, so Django's own
    4xx/5xx line, written after the chain returns, carries it too. Writes one access line."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _start(self, request) -> float:
        request.request_id = incoming_request_id(request.headers.get("X-Request-ID"))
        request_id_var.set(request.request_id)
        return time.perf_counter()

    def _finish(self, request, response, started: float):
        response["X-Request-ID"] = request.request_id
        # The path only: query strings are the client's business, signed paths are redacted by the handler's filter.
        access_logger.info("%s %s %s %.1fms", request.method, request.path, response.status_code,
                           (time.perf_counter() - started) * 1000)
        return response

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        started = self._start(request)
        return self._finish(request, self.get_response(request), started)

    async def __acall__(self, request):
        started = self._start(request)
        return self._finish(request, await self.get_response(request), started)


# --- tasks (django-q2 signals, connected in OpsConfig.ready) ----------------------------------------

# Per thread: an inline (Q_SYNC) task runs in its request's thread, and requests run in many.
_local = threading.local()


def _task_tokens() -> list[Token]:
    if not hasattr(_local, "tokens"):
        _local.tokens = []
    return _local.tokens


def task_carry_request_id(sender=None, task: dict | None = None, **kwargs) -> None:
    """pre_enqueue: the id travels inside the signed task package."""
    if task is not None and (request_id := request_id_var.get()):
        task[TASK_KEY] = request_id


def task_set_request_id(sender=None, task: dict | None = None, **kwargs) -> None:
    """pre_execute, in the worker: the task's lines carry the id of the request that queued it."""
    _task_tokens().append(request_id_var.set((task or {}).get(TASK_KEY)))


def task_reset_request_id(sender=None, **kwargs) -> None:
    """post_execute_in_worker. A reset, not a clear: an inline (Q_SYNC) task runs inside the request."""
    if tokens := _task_tokens():
        request_id_var.reset(tokens.pop())
