from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per django-q2 cluster, refreshed by its workers (`ops.heartbeat`). A row in the
    database, not django-q2's own stats: those live in the cache, which is Redis here, so a Redis
    outage would read as "no workers"."""

    cluster = models.CharField(max_length=64, primary_key=True)
    beat_at = models.DateTimeField()
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.cluster} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
