"""Voice-sync benchmarks: clone -> `voice.completed` as a websocket client sees it, and the cost of
one sync tick against the number of pending voices.

    python -m tests.benchmarks.voice_sync --emulator-port PORT --out results.json

Started by the runner (`make bench`) with the bench environment, ELEVENLABS_BASE_URL pointing at
PORT and `TTS_PROVIDER=elevenlabs`. This process serves the emulator in a thread (a new clone
passes verification 1 s after it is added, so the sync sees it processing, then completed),
starts uvicorn and the main and tts clusters with production settings, and:

- latency: N clones through `POST /api/v1/tts/voices/clone`, one every `--clone-interval`
  seconds, spread over users (5 voices each); each user's websocket client (the `websockets`
  library, token subprotocol) records when `voice.completed` arrives. Latency = from sending the
  clone request to that event. Run once idle, once with 100 speech jobs queued on the tts cluster.
- tick cost: `voices_sync_pending()` called here with 0, 10, 100, 1000 pending voices that stay
  processing (verification outstanding): provider calls, SQL queries and wall time of one tick.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from tests.benchmarks.driver import driver_parser, setup_django
from tests.benchmarks.scenarios import SERVERS
from tests.benchmarks.servers import RunningServer, qclusters

ROOT = Path(__file__).resolve().parents[2]
VOICES_PER_USER = 5
EVENT_TIMEOUT = 60.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]  # nearest rank


async def _listen(port: int, key: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key]) as ws:
        json.loads(await ws.recv())  # hello
        ready.set()
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "voice.completed":
                seen[message["data"]["id"]] = time.monotonic()


async def _clones(port: int, keys: list[str], n: int, interval: float) -> dict:
    import httpx

    from tests.audio_samples import speech_wav_bytes

    seen: dict[str, float] = {}
    readies = [asyncio.Event() for _ in keys]
    listeners = [asyncio.create_task(_listen(port, key, seen, ready)) for key, ready in zip(keys, readies)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    sample = speech_wav_bytes(3.0)
    sent: dict[str, float] = {}
    request_ms: list[float] = []
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for i in range(n):
            key = keys[i // VOICES_PER_USER]
            started = time.monotonic()
            response = await http.post(
                "/api/v1/tts/voices/clone", headers={"Authorization": f"Token {key}"},
                data={"name": f"Parent {i}", "consent": "true", "language": "en"},
                files=[("samples", ("sample.wav", sample, "audio/wav"))])
            request_ms.append((time.monotonic() - started) * 1000)
            if response.status_code != 202:
                failures.append(f"{response.status_code} {response.text[:200]}")
            else:
                sent[response.json()["id"]] = started
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    deadline = time.monotonic() + EVENT_TIMEOUT
    while set(sent) - set(seen) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    latencies = [seen[v] - t for v, t in sent.items() if v in seen]
    return {"clones": n, "events": len(latencies), "missing": len(set(sent) - set(seen)), "failures": failures,
            "p50_s": statistics.median(latencies) if latencies else None,
            "p95_s": _percentile(latencies, 0.95) if latencies else None,
            "max_s": max(latencies) if latencies else None,
            "clone_request_ms_p50": statistics.median(request_ms) if request_ms else None}


def _users(n: int) -> list[str]:
    from accounts.services import device_token_create
    from tests.factories import UserFactory

    return [device_token_create(user=UserFactory(email=f"sync-bench-{time.time_ns()}-{i}@bench.invalid"),
                                device_name="bench")[1] for i in range(n)]


def _queue_speech_jobs(n: int) -> list:
    from tests.factories import UserFactory
    from tts.services import speech_job_create

    owner = UserFactory(email=f"sync-bench-book-{time.time_ns()}@bench.invalid", monthly_character_quota=10_000_000)
    return [speech_job_create(owner=owner, provider="elevenlabs", provider_voice_id=BOOK_VOICE,
                              text=f"Backlog line {time.time_ns()} {i}: the owl hooted twice.",
                              model_id="eleven_multilingual_v2", output_format="mp3_44100_128",
                              purpose="story_line").pk for i in range(n)]


BOOK_VOICE = "benchBookVoice000000"


def _tick_costs(emulator, sizes: list[int]) -> list[dict]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from django_redis import get_redis_connection

    from tests.factories import UserFactory
    from voices.models import Voice
    from voices.services import PENDING_SET
    from voices.sync import voices_sync_pending

    rows = []
    owner = UserFactory(email=f"sync-bench-ticks-{time.time_ns()}@bench.invalid")
    for size in sizes:
        Voice.objects.filter(owner=owner).delete()
        get_redis_connection("default").delete(PENDING_SET)
        emulator.reset()
        ids = [emulator.add_voice(f"Waiting {i}", requires_verification=True, is_verified=False) for i in range(size)]
        voices = Voice.objects.bulk_create(
            Voice(owner=owner, provider="elevenlabs", provider_voice_id=pid, name="Waiting", status="processing",
                  sync_deadline=timezone.now() + timedelta(minutes=30)) for pid in ids)
        if voices:
            get_redis_connection("default").sadd(PENDING_SET, *[str(v.pk) for v in voices])
        voices_sync_pending()  # warm: connections, the SDK client
        calls_before = emulator.count()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = voices_sync_pending()
            wall = time.perf_counter() - started
        rows.append({"pending": size, "provider_calls": emulator.count() - calls_before, "sql_queries": len(queries),
                     "wall_ms": wall * 1000, "checked": result.checked})
    Voice.objects.filter(owner=owner).delete()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = driver_parser("python -m tests.benchmarks.voice_sync")
    p.add_argument("--clones", type=int, default=20)
    p.add_argument("--clone-interval", type=float, default=0.5)
    p.add_argument("--ready-after", type=float, default=1.0)
    p.add_argument("--backlog", type=int, default=100)
    p.add_argument("--tick-sizes", default="0,10,100,1000")
    args = p.parse_args(argv)

    setup_django()
    from django.conf import settings

    from tests.fakes import elevenlabs as el
    from tests.fakes.elevenlabs import ElevenLabsEmulator

    args.log_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {"ready_after": args.ready_after, "clone_interval": args.clone_interval, "backlog": args.backlog,
                 "q_workers": settings.Q_WORKERS, "latency": []}
    n_users = -(-args.clones // VOICES_PER_USER)
    env = dict(os.environ)  # the web server adds DB_POOL itself (SERVERS["asgi"]); clusters never pool
    with ElevenLabsEmulator(api_key=settings.ELEVENLABS_API_KEY, port=args.emulator_port) as emulator:
        emulator.account.voice_limit = 10_000
        emulator.account.clone_ready_after = args.ready_after
        emulator.set_concurrency_limit(None)
        server = RunningServer(SERVERS["asgi"], env, args.log_dir / "voice-sync-asgi.log")
        try:
            with qclusters(["main", "tts"], args.log_dir, env=env, tag="voice-sync") as procs:
                keys = _users(n_users)
                server.wait_ready("/api/v1/ping", {"Authorization": f"Token {keys[0]}"})
                time.sleep(3)  # the clusters' first poll
                for backlog in (0, args.backlog):
                    from tts.models import SpeechJob

                    if backlog:
                        emulator.add_voice("Book", voice_id=BOOK_VOICE)
                        emulator.set_latency(el.TTS_TIMESTAMPS, 0.5)
                        jobs = _queue_speech_jobs(backlog)
                    row = asyncio.run(_clones(server.port, _users(n_users), args.clones, args.clone_interval))
                    row["backlog"] = backlog
                    if backlog:
                        row["backlog_still_queued"] = SpeechJob.objects.filter(
                            pk__in=jobs, status__in=["queued", "running"]).count()
                        emulator.set_latency(el.TTS_TIMESTAMPS, 0.0)
                    out["latency"].append(row)
                    print(f"  voice sync: backlog={backlog} p50={row['p50_s']} p95={row['p95_s']} "
                          f"events={row['events']}/{row['clones']}", file=sys.stderr, flush=True)
                    if any(p.poll() is not None for p in procs):
                        raise SystemExit("voice sync bench: a cluster died; see its log")
        finally:
            server.stop()
        out["ticks"] = _tick_costs(emulator, [int(s) for s in args.tick_sizes.split(",") if s.strip()])
    args.out.write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
