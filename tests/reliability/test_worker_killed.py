"""The `tts` cluster killed outright in the middle of provider calls: a burst of 30 jobs through a
real qcluster against the emulator (0.5 s a call), SIGKILL to the cluster's whole process group
(django-q2's sentinel and workers outlive a SIGKILL to the main pid alone), then a new cluster.
Every job ends with exactly one clip and one quota charge; `provider_calls` shows the repeats."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.db.models import Sum

from tests.fakes import elevenlabs as el
from tests.live import ROOT, service_env, stop_process_group
from tts import tasks as tts_tasks
from tts.models import AudioClip, QuotaMonth, SpeechJob
from tts.services import speech_job_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

JOBS = 30


def start_cluster(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def wait_for(condition, timeout: float, what: str, tick=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: {list(SpeechJob.objects.values_list('status', 'error_code'))}"
        if tick:
            tick()
        time.sleep(0.2)


def test_a_killed_cluster_leaves_every_job_done_once_after_a_restart(user, elevenlabs_settings, settings):
    from django_q import tasks as q_tasks

    emulator = elevenlabs_settings
    voice_id = emulator.add_voice("Mom")
    emulator.set_latency(el.TTS_TIMESTAMPS, 0.5)
    # Short bounds, so a job whose worker died is found in seconds rather than minutes; the
    # order the settings check (waits + attempts x timeout < task timeout < retry) still holds.
    bounds = dict(ELEVENLABS_TIMEOUT="5", TTS_CALL_ATTEMPTS="2", TTS_BACKOFF_MAX_SECONDS="1",
                  TTS_SLOT_WAIT_SECONDS="5", TTS_RENDER_WAIT_SECONDS="5", TTS_Q_TIMEOUT="25", TTS_SLOT_LEASE_SECONDS="3")
    env = service_env(Q_CLUSTER_NAME="tts", TTS_Q_WORKERS="5", ELEVENLABS_API_KEY=emulator.api_key,
                      ELEVENLABS_BASE_URL=emulator.base_url, **bounds)
    settings.TTS_REAPER_AGE_SECONDS = 8  # this process runs the reaper, as its schedule does every minute
    first = start_cluster(env)
    second = None
    try:
        q_tasks.Conf.SYNC = False  # queue the wake-ups for the cluster instead of running them here
        for i in range(JOBS):
            speech_job_create(owner=user, provider="elevenlabs", provider_voice_id=voice_id,
                              text=f"Line number {i} of the story, read slowly.", model_id="eleven_multilingual_v2",
                              output_format="mp3_44100_128")
        # Mid-burst: some done, and calls in flight at the provider right now.
        wait_for(lambda: SpeechJob.objects.filter(status="succeeded").count() >= 6 and emulator.in_flight > 0,
                 60, "the burst never got going")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        wait_for(lambda: not group_alive(first.pid), 10, "the killed cluster's processes lingered")
        done_before = SpeechJob.objects.filter(status="succeeded").count()
        assert done_before < JOBS, "the kill came too late to interrupt anything"
        assert SpeechJob.objects.filter(status="running").exists()  # orphaned mid-call

        second = start_cluster(env)
        wait_for(lambda: SpeechJob.objects.filter(status="succeeded").count() == JOBS, 120,
                 "not every job finished after the restart", tick=tts_tasks.reap_speech_jobs)
    finally:
        q_tasks.Conf.SYNC = True
        for cluster in (first, second):
            if cluster is not None:
                stop_process_group(cluster, leader_only=True)

    jobs = list(SpeechJob.objects.all())
    assert len({job.clip_id for job in jobs}) == JOBS and AudioClip.objects.count() == JOBS  # one clip each
    quota = QuotaMonth.objects.get(user=user)
    assert quota.reserved == 0
    assert quota.used == sum(job.character_cost for job in jobs) == sum(job.characters for job in jobs)  # charged once
    calls = SpeechJob.objects.aggregate(total=Sum("provider_calls"))["total"]
    assert calls == emulator.count(el.TTS_TIMESTAMPS)  # every call the provider saw is on its job
    assert calls > JOBS and any(job.provider_calls > 1 for job in jobs)  # the calls the kill cut short, repeated
