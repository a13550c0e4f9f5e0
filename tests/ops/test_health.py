"""/healthz and /readyz: no auth, no throttling; /readyz names the part that is down."""

import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from ops.models import WorkerHeartbeat
from tests.live import ROOT, running_asgi_server, service_env, stop_process_group


def fresh_heartbeats(**ages: float) -> None:
    for cluster in ("main", "tts"):
        WorkerHeartbeat.objects.update_or_create(
            cluster=cluster, defaults={"beat_at": timezone.now() - timedelta(seconds=ages.get(cluster, 0))})


@pytest.fixture
def clusters_running(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}


def test_healthz_needs_nothing(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert "no-cache" in response["Cache-Control"]


def test_other_methods_get_the_json_405(client, db):
    for path in ("/healthz", "/readyz"):
        response = client.post(path)
        assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
        assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_readyz_is_ready_when_every_part_answers(client, clusters_running):
    fresh_heartbeats()
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready", "checks": {
        "database": "ok", "redis": "ok", "worker:main": "ok", "worker:tts": "ok"}}


@pytest.mark.django_db
def test_readyz_names_a_cluster_without_a_fresh_heartbeat(client, clusters_running, settings):
    fresh_heartbeats(tts=settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS + 5)
    body = client.get("/readyz").json()
    assert body["status"] == "not_ready" and body["failing"] == ["worker:tts"]
    assert body["checks"]["worker:tts"].startswith("stale")
    WorkerHeartbeat.objects.all().delete()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failing"] == ["worker:main", "worker:tts"]


@pytest.mark.django_db
def test_health_is_not_throttled_and_needs_no_auth(client, clusters_running, settings):
    fresh_heartbeats()
    for _ in range(3 * 60):
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_down(client, clusters_running, settings):
    fresh_heartbeats()
    closed = "redis://127.0.0.1:1/0"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": closed}}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"] and response.json()["checks"]["database"] == "ok"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_readyz_names_the_database_when_it_is_down():
    # A server whose database does not answer (nothing listens on the port).
    with running_asgi_server(DATABASE_URL="postgres://postgres@127.0.0.1:1/storybook") as port:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert "database" in body["failing"] and body["checks"]["redis"] == "ok"
        assert body["checks"]["worker:main"] == "unknown (database unreachable)"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_cluster_keeps_its_heartbeat_fresh():
    env = service_env(Q_CLUSTER_NAME="tts", WORKER_HEARTBEAT_SECONDS="0.5")
    proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not WorkerHeartbeat.objects.filter(cluster="tts").exists():
            assert time.monotonic() < deadline, "no heartbeat from the tts cluster"
            time.sleep(0.2)
        first = WorkerHeartbeat.objects.get(cluster="tts").beat_at
        time.sleep(1.5)
        assert WorkerHeartbeat.objects.get(cluster="tts").beat_at > first
        assert not WorkerHeartbeat.objects.filter(cluster="main").exists()
    finally:
        stop_process_group(proc, leader_only=True)
