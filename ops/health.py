"""`/healthz` and `/readyz`: plain Django views (no DRF: no auth, no throttling, no content
negotiation) for load balancers and process managers."""

import logging
from datetime import timedelta

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django_redis import get_redis_connection

from config.api.errors import MethodNotAllowed, error_response

from .heartbeat import cluster_names

logger = logging.getLogger(__name__)


def probe(view):
    """GET/HEAD only (else the project's JSON 405), never cached."""

    @never_cache
    def wrapped(request: HttpRequest) -> JsonResponse:
        if request.method not in ("GET", "HEAD"):
            response = error_response(MethodNotAllowed())
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    wrapped.__name__ = wrapped.__qualname__ = view.__name__
    return wrapped


@probe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering; touches nothing else."""
    return JsonResponse({"status": "ok"})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except DatabaseError as exc:
        connection.close()
        return f"unreachable ({exc.__class__.__name__})"


def _redis() -> str:
    try:
        get_redis_connection("default").ping()
        return "ok"
    except (redis.RedisError, OSError) as exc:
        return f"unreachable ({exc.__class__.__name__})"


def _workers(database_ok: bool) -> dict[str, str]:
    from .models import WorkerHeartbeat

    names = cluster_names()
    if settings.Q_CLUSTER.get("sync"):
        return {f"worker:{name}": "inline (Q_SYNC)" for name in names}
    if not database_ok:
        return {f"worker:{name}": "unknown (database unreachable)" for name in names}
    oldest = timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS)
    try:
        beats = dict(WorkerHeartbeat.objects.filter(cluster__in=names).values_list("cluster", "beat_at"))
    except DatabaseError:
        return {f"worker:{name}": "unknown (database unreachable)" for name in names}
    checks = {}
    for name in names:
        beat_at = beats.get(name)
        if beat_at is None:
            checks[f"worker:{name}"] = "no heartbeat"
        elif beat_at < oldest:
            checks[f"worker:{name}"] = f"stale (last {int((timezone.now() - beat_at).total_seconds())} s ago)"
        else:
            checks[f"worker:{name}"] = "ok"
    return checks


@probe
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database and Redis answer and every cluster's heartbeat is fresh.
    503 names each failing part."""
    checks = {"database": _database(), "redis": _redis()}
    checks.update(_workers(checks["database"] == "ok"))
    failing = [part for part, state in checks.items() if state != "ok" and not state.startswith("inline")]
    if failing:
        logger.warning("not ready: %s", ", ".join(f"{p}: {checks[p]}" for p in failing))
        return JsonResponse({"status": "not_ready", "failing": failing, "checks": checks}, status=503)
    return JsonResponse({"status": "ready", "checks": checks})
