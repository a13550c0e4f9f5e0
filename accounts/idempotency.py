"""`Idempotency-Key` for unsafe endpoints: a retried request gets the first answer instead of
doing the work (cloning, charging) twice, also when the two requests run at the same time."""

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from config.api.errors import IdempotencyKeyReused, RequestInProgress, ServiceError, ValidationFailed

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"


def _fingerprint(request: Request) -> str:
    """What makes two requests "the same": method, path, fields and uploaded files' names/sizes."""
    fields = {k: request.data.getlist(k) if hasattr(request.data, "getlist") else request.data[k] for k in request.data}
    files = sorted((name, f.name, f.size) for name, items in request.FILES.lists() for f in items)
    payload = json.dumps([request.method, request.path, fields, files], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.response_status)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(request: Request, scope: str, handler: Callable[[], Response]) -> Response:
    key = request.headers.get(HEADER)
    if not key:
        return handler()
    if len(key) > 255:
        raise ValidationFailed(f"{HEADER} is longer than 255 characters.")
    fingerprint = _fingerprint(request)
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
    while True:
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(user=request.user, scope=scope, key=key, fingerprint=fingerprint)
            break  # this request does the work
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(user=request.user, scope=scope, key=key).first()
            if existing is None:
                continue  # the first attempt failed transiently and let go of the key: take it
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"This {HEADER} was used for a different request.")
            if existing.state == IdempotencyRecord.State.DONE:
                return _replay(existing)
            stale_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS)
            if existing.created_at < stale_before:
                # The first attempt died mid-request (no answer was ever stored): let this retry run.
                IdempotencyRecord.objects.filter(pk=existing.pk, state=IdempotencyRecord.State.IN_PROGRESS,
                                                 created_at__lt=stale_before).delete()
                continue
            if time.monotonic() > deadline:
                raise RequestInProgress(retry_after=1)
            time.sleep(0.05)

    try:
        response = handler()
    except ServiceError as exc:
        if exc.status >= 500 or exc.status == 429:
            record.delete()  # transient: a retry with the same key should try again
        else:
            _store(record, exc.status, exc.body())
        raise
    except BaseException:
        record.delete()
        raise
    _store(record, response.status_code, response.data)
    return response


def _store(record: IdempotencyRecord, status: int, body) -> None:
    record.state = IdempotencyRecord.State.DONE
    record.response_status = status
    record.response_body = json.loads(json.dumps(body, default=str))
    record.save(update_fields=["state", "response_status", "response_body"])


def purge_idempotency_records() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
