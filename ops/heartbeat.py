"""Worker heartbeats: a daemon thread in every django-q2 worker process writes its cluster's row
every `WORKER_HEARTBEAT_SECONDS`. A thread, not a task: an idle cluster runs no tasks, and a
worker busy with a long provider call is still alive."""

import logging
import os
import socket
import threading

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)


def cluster_names() -> list[str]:
    """The clusters a deployment runs (`make worker`): the main one and each ALT_CLUSTERS entry."""
    return [settings.Q_CLUSTER["name"], *settings.Q_CLUSTER.get("ALT_CLUSTERS", {})]


def beat(*, cluster: str) -> None:
    from .models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        cluster=cluster, defaults={"beat_at": timezone.now(), "host": socket.gethostname(), "pid": os.getpid()})


def _run(cluster: str, stop: threading.Event) -> None:
    while True:
        try:
            close_old_connections()
            beat(cluster=cluster)
        except DatabaseError:
            logger.warning("heartbeat of cluster %s not written", cluster, exc_info=True)
            connection.close()  # a broken connection is not reused for the next beat
        if stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
            return


_started: threading.Event | None = None


def start_heartbeat(sender=None, proc_name: str = "", **kwargs) -> None:
    """django-q2's post_spawn hook: runs in the new worker process."""
    global _started
    from django_q.conf import Conf

    # Inline (Q_SYNC) tasks run django-q2's worker code in this very process: no cluster to vouch for.
    if _started is not None or Conf.SYNC:
        return
    _started = threading.Event()
    threading.Thread(target=_run, args=(Conf.CLUSTER_NAME, _started), name="heartbeat", daemon=True).start()
