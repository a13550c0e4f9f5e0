"""The global limit across worker clusters: 30 jobs through two `tts` qcluster processes of 5
workers each, on the real test database, against the emulator at 200 ms a call."""

import subprocess
import sys
import time

import pytest

from tests.fakes import elevenlabs as el
from tests.live import ROOT, service_env, stop_process_group
from tts.models import SpeechJob
from tts.services import speech_job_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def start_cluster(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def run_through_two_clusters(user, emulator, *, limit: int) -> int:
    """Queue 30 distinct jobs, run them on two tts clusters; the emulator's peak in flight."""
    from django_q import tasks as q_tasks

    voice_id = emulator.add_voice("Mom")
    emulator.set_latency(el.TTS_TIMESTAMPS, 0.2)
    # With the limiter on, the provider enforces a plan of exactly three (and must never refuse);
    # with it off, no cap, so the peak shows what the workers alone would send.
    emulator.set_concurrency_limit(3 if limit == 3 else None)
    env = service_env(Q_CLUSTER_NAME="tts", TTS_Q_WORKERS="5", TTS_MAX_CONCURRENCY=str(limit),
                      ELEVENLABS_API_KEY=emulator.api_key, ELEVENLABS_BASE_URL=emulator.base_url)
    clusters = [start_cluster(env) for _ in range(2)]
    try:
        q_tasks.Conf.SYNC = False  # queue the wake-ups for the clusters instead of running them here
        for i in range(30):
            speech_job_create(owner=user, provider="elevenlabs", provider_voice_id=voice_id,
                              text=f"Line number {i} of the story.", model_id="eleven_multilingual_v2",
                              output_format="mp3_44100_128")
        deadline = time.monotonic() + 120
        while SpeechJob.objects.filter(status="succeeded").count() < 30:
            assert time.monotonic() < deadline, list(SpeechJob.objects.values_list("status", "error_code"))
            assert all(c.poll() is None for c in clusters), "a cluster died"
            time.sleep(0.25)
    finally:
        q_tasks.Conf.SYNC = True
        for cluster in clusters:
            stop_process_group(cluster, leader_only=True)
    assert emulator.count(el.TTS_TIMESTAMPS) == 30  # one provider call per job: no 429 from the plan's cap
    assert not [r for r in emulator.requests if r.status == 429]
    return emulator.max_tts_in_flight


def test_two_clusters_never_exceed_three_calls_in_flight(user, elevenlabs_settings):
    assert run_through_two_clusters(user, elevenlabs_settings, limit=3) == 3


def test_without_the_limit_the_same_load_goes_past_three(user, elevenlabs_settings):
    """Proves the test above can fail: ten workers, no effective limit."""
    assert run_through_two_clusters(user, elevenlabs_settings, limit=100) > 3
