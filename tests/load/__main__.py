"""`make load`: a bounded, fixed-rate run of a mixed workload against `make serve` + `make worker`
on Postgres + Redis, on loopback.

    make load                      # 30 app users at 1 request/s each for 180 s, 30 websocket listeners
    make load LOAD_ARGS="--users 10 --seconds 30"

The database (`LOAD_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/storybook_load_bench)
is dropped and migrated, Redis db 13 (`LOAD_REDIS_URL`) flushed; the provider is the ElevenLabs
emulator in this process (200 ms a call), never the real API. Prints the rate held, p50/p95/p99
and errors per request kind, the websocket listeners' tally, and the web and worker processes'
memory at the start and the end; writes the same to var/load/<timestamp>.md. Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.benchmarks import environment
from tests.benchmarks.environment import PYTHON, ROOT
from tests.benchmarks.runner import run_load
from tests.benchmarks.scenarios import Server
from tests.benchmarks.servers import RunningServer
from tests.fakes import elevenlabs as el

OUT_DIR = ROOT / "var" / "load"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/storybook_load_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
WEB = Server(name="web", argv=("env", "-u", "DB_POOL", "HOST=127.0.0.1", "PORT={port}", "WEB_CONCURRENCY=2",
                               "{python}", "-m", "config.serve"), display="make serve (WEB_CONCURRENCY=2)")
WORKER = Server(name="worker", argv=("{python}", "-m", "config.worker"), display="make worker")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.load", description="make load: a fixed-rate mixed workload")
    p.add_argument("--users", type=int, default=30, help="simulated app users (and websocket listeners)")
    p.add_argument("--rate-per-user", type=float, default=1.0, help="requests per second per user")
    p.add_argument("--seconds", type=int, default=180, help="length of the measured run")
    return p.parse_args(argv)


def rss_mb(proc: subprocess.Popen) -> float:
    """Resident memory of a process and everything it started (uvicorn's or django-q2's workers)."""
    try:
        root = psutil.Process(proc.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far."""
    try:
        root = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0.0


def own_cpu_seconds() -> float:
    """This process alone (the emulator's threads), not the servers it started."""
    return sum(psutil.Process().cpu_times()[:2])


def manage_shell(env: dict[str, str], code: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"manage.py shell failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]  # what the code printed last (log lines may come first)


def wait_ready(web: RunningServer, timeout: float = 90) -> None:
    """Until /readyz says the database, Redis and both clusters' heartbeats are fine."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=2)
            conn.request("GET", "/readyz", headers={"Host": "127.0.0.1"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"not ready after {timeout:.0f}s:\n{web.log_tail()}")


def locust_rows(prefix: Path) -> list[dict]:
    with open(f"{prefix}_stats.csv", newline="") as f:
        return list(csv.DictReader(f))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    db_url = os.environ.get("LOAD_DATABASE_URL", DEFAULT_DB)
    r_url = os.environ.get("LOAD_REDIS_URL", DEFAULT_REDIS)
    environment.check_urls(db_url, r_url)
    environment.reset_database(db_url)
    environment.flush_redis(r_url)

    emulator = el.ElevenLabsEmulator(port=0).start()
    emulator.set_latency(el.TTS_TIMESTAMPS, 0.2)
    provider_voice = emulator.add_voice("Narrator", category="premade")
    env = environment.django_env(db_url, r_url, TTS_PROVIDER="elevenlabs", ELEVENLABS_API_KEY=emulator.api_key,
                                 ELEVENLABS_BASE_URL=emulator.base_url, API_CACHE_ALLOW_BYPASS="false")
    env.pop("DB_POOL", None)  # make serve and make worker choose their own
    environment.migrate(env)
    fixtures = run_load(env, args.users, ["voices_total=2000", "books_per_user=10"])
    voice_id = manage_shell(env, (
        "from voices.models import Voice; print(Voice.objects.create(owner=None, provider='elevenlabs', "
        f"provider_voice_id='{provider_voice}', name='Narrator', language='en', visibility='default', "
        "status='completed', category='premade').pk)"))

    # A fresh database has every daily schedule due now: the voice reconcile would check the 2000
    # loaded voices during the run. In a steady state they ran hours ago, so they are put a day out.
    manage_shell(env, ("import datetime; from django.utils import timezone; from django_q.models import Schedule; "
                       "print(Schedule.objects.filter(schedule_type='D').update("
                       "next_run=timezone.now() + datetime.timedelta(days=1)))"))

    web = worker = listeners = None
    try:
        web = RunningServer(WEB, env, OUT_DIR / f"{stamp}-web.log")
        worker = RunningServer(WORKER, env, OUT_DIR / f"{stamp}-worker.log")
        wait_ready(web)
        with tempfile.TemporaryDirectory(prefix="load-") as tmp:
            fixtures_file = Path(tmp) / "fixtures.json"
            fixtures_file.write_text(json.dumps(fixtures))
            listeners = subprocess.Popen(
                [PYTHON, "-m", "tests.load.listeners", "--port", str(web.port), "--fixtures", str(fixtures_file),
                 "--seconds", str(args.seconds + 10)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            time.sleep(3)  # sockets open, caches warm
            memory_start = {"web": rss_mb(web.proc), "worker": rss_mb(worker.proc)}
            prefix = Path(tmp) / "locust"
            locust_env = {**env, "LOAD_FIXTURES": str(fixtures_file), "LOAD_VOICE_ID": voice_id,
                          "LOAD_RATE_PER_USER": str(args.rate_per_user)}
            began = time.monotonic()
            memory = [(0.0, memory_start)]
            cpu_start = {"web": cpu_seconds(web.pid), "worker": cpu_seconds(worker.pid), "emulator": own_cpu_seconds()}
            machine_start = psutil.cpu_times()
            locust = subprocess.Popen(
                [str(Path(PYTHON).parent / "locust"), "-f", str(ROOT / "tests" / "load" / "locustfile.py"),
                 "--headless", "--users", str(args.users), "--spawn-rate", str(args.users), "--run-time",
                 f"{args.seconds}s", "--host", f"http://127.0.0.1:{web.port}", "--csv", str(prefix), "--only-summary",
                 "--loglevel", "WARNING", "--stop-timeout", "10"],
                cwd=ROOT, env=locust_env, stdout=subprocess.DEVNULL)
            while locust.poll() is None:  # memory every 30 s: a leak climbs, a warm-up levels off
                try:
                    locust.wait(30)
                except subprocess.TimeoutExpired:
                    memory.append((time.monotonic() - began, {"web": rss_mb(web.proc), "worker": rss_mb(worker.proc)}))
            wall = time.monotonic() - began
            cpu = {"web": cpu_seconds(web.pid), "worker": cpu_seconds(worker.pid), "emulator": own_cpu_seconds()}
            cpu = {name: cpu[name] - cpu_start[name] for name in cpu}
            machine = psutil.cpu_times()
            busy = sum(getattr(machine, f) - getattr(machine_start, f)
                       for f in ("user", "system", "nice", "irq", "softirq"))
            cpu["everything else (Postgres, Redis, locust, kernel)"] = max(0.0, busy - sum(cpu.values()))
            memory_end = {"web": rss_mb(web.proc), "worker": rss_mb(worker.proc)}
            rows = locust_rows(prefix)
            ws = json.loads(listeners.communicate(timeout=60)[0] or "{}")
        jobs = json.loads(manage_shell(env, (
            "import json; from tts.models import SpeechJob as J; "
            "print(json.dumps({s: J.objects.filter(status=s).count() for s in "
            "('queued', 'running', 'succeeded', 'failed')}))")))
    finally:
        for running in (web, worker):
            if running is not None:
                running.stop()
        if listeners is not None and listeners.poll() is None:
            listeners.kill()
        emulator.stop()

    target = args.users * args.rate_per_user
    total = next(r for r in rows if r["Name"] == "Aggregated")
    errors = sum(int(r["Failure Count"]) for r in rows if r["Name"] != "Aggregated")
    lines = [
        f"load: {args.users} users x {args.rate_per_user:g} req/s = {target:g} req/s target for {args.seconds} s "
        f"({wall:.0f} s wall), {args.users} websocket listeners; make serve (2 processes) + make worker; "
        "provider: the emulator at 200 ms a call",
        "",
        "| request | count | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['Name'] if r['Name'] != 'Aggregated' else '**all**'} | {r['Request Count']} | "
                     f"{float(r['Requests/s']):.1f} | {r['50%']} | {r['95%']} | {r['99%']} | {r['Failure Count']} |")
    lines += [
        "",
        f"rate held: {float(total['Requests/s']):.1f} of {target:g} req/s "
        f"({float(total['Requests/s']) / target * 100:.0f}%); errors: {errors}",
        f"websocket listeners: {ws.get('connected', 0)} connections for {ws.get('sockets', 0)} sockets, "
        f"events {ws.get('events', {})}, drops {ws.get('drops', [])}, errors {len(ws.get('errors', []))}",
        f"speech jobs at the end: {jobs}",
        f"CPU over the run ({psutil.cpu_count()} cores, % of one core): " + ", ".join(
            f"{name} {seconds / wall * 100:.0f}%" for name, seconds in cpu.items()),
        f"memory (RSS, MiB): web {memory_start['web']:.0f} -> {memory_end['web']:.0f}, "
        f"worker {memory_start['worker']:.0f} -> {memory_end['worker']:.0f}",
        "memory every 30 s (s: web/worker MiB): " + ", ".join(
            f"{at:.0f}: {m['web']:.0f}/{m['worker']:.0f}" for at, m in [*memory, (wall, memory_end)]),
    ]
    print("\n".join(lines))
    report = OUT_DIR / f"{stamp}.md"
    report.write_text(f"## Load {stamp}\n\n" + "\n".join(lines) + "\n")
    print(f"\nwritten to {report.relative_to(ROOT)}")
    failed = errors or ws.get("errors") or ws.get("drops") or ws.get("connected", 0) < ws.get("sockets", 1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
