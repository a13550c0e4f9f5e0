"""The websocket client example (`python -m examples.events`) against a real server: it logs in,
prints events as they arrive, and comes back by itself after the server restarts."""

import json
import os
import queue
import subprocess
import sys
import threading

import pytest

from accounts.events import notify_user
from tests.factories import PASSWORD, UserFactory
from tests.live import ROOT, free_port, running_asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def lines_of(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def test_the_example_prints_events_and_reconnects_after_a_restart():
    user = UserFactory()
    port = free_port()
    argv = [sys.executable, "-m", "examples.events", "--base", f"http://127.0.0.1:{port}", "--email", user.email,
            "--min-delay", "0.2", "--max-delay", "1", "--max-events", "3"]
    env = {**os.environ, "STORYBOOK_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
    with running_asgi_server(port=port):
        client = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = lines_of(client.stdout), lines_of(client.stderr)
            assert json.loads(out.get(timeout=20))["type"] == "hello"
            sent = notify_user(user.pk, "voice.completed", {"voice_id": "v1"})
            assert json.loads(out.get(timeout=10)) == sent
        except BaseException:
            client.kill()
            raise
    # The server is gone: the client retries until one listens on the port again.
    seen = []
    while "reconnecting in" not in (line := err.get(timeout=20)):
        seen.append(line)
    with running_asgi_server(port=port):
        assert json.loads(out.get(timeout=30))["type"] == "hello"
        assert client.wait(10) == 0  # --max-events 3: hello, the event, hello again
    while not err.empty():
        seen.append(err.get())
    assert "logged in" in "".join(seen) and PASSWORD not in "".join(seen)
