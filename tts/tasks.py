"""django-q2 entry points on the tts cluster: wake a runner, reap stuck jobs."""

from . import runner, services


def run_next_speech_job() -> str:
    """Claim the fairest queued job and run it (one job per task, so a task never outlives the
    cluster's timeout); a job that had to wait goes back to the queue and wakes another runner."""
    claimed = runner.speech_job_claim_next()
    if claimed is None:
        return "idle"
    job_id, run_token = claimed
    outcome = runner.speech_job_run(job_id=job_id, run_token=run_token)
    if outcome == "requeued":
        services.speech_jobs_wake()
    return outcome


def reap_speech_jobs() -> int:
    """Every minute: requeue jobs whose worker died, and wake runners for jobs left waiting
    (a run deferred while Redis was down wakes nobody by itself)."""
    from django.conf import settings

    reaped = runner.speech_jobs_reap()
    waiting = services.speech_jobs_waiting(older_than_seconds=60)
    wake = min(reaped + waiting, settings.TTS_Q_WORKERS)
    if wake:
        services.speech_jobs_wake(count=wake)
    return reaped
