"""The `make load` workload, run by locust against `make serve`: each simulated app user lists its
voices, reads one of its books and now and then asks for a clip, at LOAD_RATE_PER_USER requests a
second (a fixed rate: locust's constant throughput). Websocket listeners run beside it
(tests/load/listeners.py). Settings come from the environment the runner sets."""

import itertools
import json
import os
import random

import gevent
from locust import FastHttpUser, constant_throughput, task

FIXTURES = json.loads(open(os.environ["LOAD_FIXTURES"]).read())
TOKENS = [key for _, key in FIXTURES["tokens"]]
BOOKS = FIXTURES["extra"]["detail_books"]  # user id -> a book id
USER_OF = {key: uid for uid, key in FIXTURES["tokens"]}
VOICE_ID = os.environ["LOAD_VOICE_ID"]
_next_user = itertools.count()
_lines = itertools.count()


class AppUser(FastHttpUser):  # geventhttpclient: a client lean enough not to slow what it measures
    wait_time = constant_throughput(float(os.environ.get("LOAD_RATE_PER_USER", "1")))

    def on_start(self) -> None:
        # A random phase in the first second: users started together would otherwise all send at
        # the same instant every second, a burst of N requests instead of a steady rate.
        gevent.sleep(random.random() / float(os.environ.get("LOAD_RATE_PER_USER", "1")))
        key = TOKENS[next(_next_user) % len(TOKENS)]
        self.auth = {"Authorization": f"Token {key}"}
        self.book = BOOKS[USER_OF[key]]

    @task(4)
    def list_voices(self) -> None:
        self.client.get("/api/v1/tts/voices?page_size=50", name="GET /tts/voices", headers=self.auth)

    @task(4)
    def book_detail(self) -> None:
        self.client.get(f"/api/v1/storybook/books/{self.book}", name="GET /storybook/books/{id}", headers=self.auth)

    @task(1)
    def generate(self) -> None:
        with self.client.post("/api/v1/tts/generate", name="POST /tts/generate", catch_response=True, headers=self.auth,
                              json={"voice_id": VOICE_ID, "text": f"Line {next(_lines)}: the fox looked up."}) as r:
            if r.status_code != 202:
                r.failure(f"{r.status_code} {r.text[:200]}")
