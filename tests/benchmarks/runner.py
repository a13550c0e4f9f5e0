"""`make bench`: set up, load, start the servers, drive each scenario, print one table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from . import environment
from .client import build_request
from .environment import PYTHON, ROOT
from .report import (
    BOOK_HEADERS, BOOK_RIGHT, FAIR_HEADERS, FAIR_RIGHT, SYNC_HEADERS, SYNC_RIGHT, TICK_HEADERS, TICK_RIGHT, TTS_HEADERS, TTS_RIGHT, Row,
    aligned, book_cells, error_details, markdown, markdown_table, sync_cells, text_table, tts_cells, tts_failures,
)
from .scenarios import FLOOR, REPLACED, SERVE_PROCESSES, SERVED, BASELINE, SCENARIOS, SERVERS, Scenario
from tests.fakes.elevenlabs import DEFAULT_API_KEY as EMULATOR_API_KEY

from .servers import RunningServer, die_with_parent, free_port, machine_cpu_seconds

OUT_DIR = ROOT / "var" / "bench"
NCPU = os.cpu_count() or 1
# `--only <section>` picks a whole section; any other `--only TEXT` filters the HTTP scenarios.
SECTIONS = ("http", "tts", "sync")
DISTURBED_PCT = 25.0


def _env_default(name: str, default, cast=int):
    value = os.environ.get(name)
    return cast(value) if value not in (None, "") else default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks", description="HTTP benchmarks, one table per run.")
    p.add_argument("--requests", type=int, default=_env_default("BENCH_REQUESTS", 2000),
                   help="measured requests per scenario and concurrency (default 2000)")
    p.add_argument("--warmup", type=int, default=_env_default("BENCH_WARMUP", 200),
                   help="unrecorded requests before measuring (default 200)")
    p.add_argument("--max-seconds", type=float, default=_env_default("BENCH_MAX_SECONDS", 12.0, float),
                   help="time cap for each warm-up and each measured phase (default 12)")
    p.add_argument("--users", type=int, default=_env_default("BENCH_USERS", 50),
                   help="users (one token each) the requests rotate over (default 50)")
    p.add_argument("--concurrency", default=os.environ.get("BENCH_CONCURRENCY", "1,8"),
                   help="comma-separated connection counts (default 1,8)")
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="a section (http, tts, sync), or HTTP scenarios whose name contains TEXT "
                        "(repeatable; the baseline always runs)")
    p.add_argument("--all", action="store_true", help="also run the scenarios that are off by default")
    p.add_argument("--load-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the loader hooks")
    p.add_argument("--tts-jobs", type=int, default=_env_default("BENCH_TTS_JOBS", 120),
                   help="speech jobs per batch in the speech-job section (default 120)")
    p.add_argument("--no-tts", action="store_true", help="skip the speech-job section")
    p.add_argument("--no-sync", action="store_true", help="skip the voice-sync section")
    p.add_argument("--sync-clones", type=int, default=_env_default("BENCH_SYNC_CLONES", 20),
                   help="clones per latency row in the voice-sync section (default 20)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 300 requests, 50 warm-up, 4 s caps, 20 users, 30 speech jobs per batch")
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.warmup, args.max_seconds, args.users = 300, 50, 4.0, 20
        args.tts_jobs = min(args.tts_jobs, 30)
        args.sync_clones = min(args.sync_clones, 10)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    if args.users < 1 or args.requests < 1 or args.tts_jobs < 2 or not args.concurrency or min(args.concurrency) < 1:
        p.error("--users, --requests and --concurrency must be positive, --tts-jobs at least 2")
    return args


def selected_scenarios(only: list[str], everything: bool = False) -> list[Scenario]:
    if not only:
        return [s for s in SCENARIOS if s.default or everything]
    return [s for s in SCENARIOS if s.name == BASELINE or any(o.lower() in s.name.lower() for o in only)]


def _versions() -> str:
    def v(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"

    return ", ".join(f"{d} {v(d)}" for d in ("Django", "djangorestframework", "uvicorn", "uvloop", "httptools", "gunicorn", "psycopg"))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{head}{' (+ uncommitted changes)' if dirty else ''}" if head else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _pg_version(db_url: str) -> str:
    import psycopg

    with psycopg.connect(db_url.replace("postgres://", "postgresql://", 1), connect_timeout=5) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def run_load(env: dict[str, str], n_users: int, options: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "fixtures.json"
        cmd = [PYTHON, "-m", "tests.benchmarks.load", "--users", str(n_users), "--out", str(out), "--count-queries"]
        cmd += [f"--opt={o}" for o in options]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if proc.stderr.strip():
            print(proc.stderr.rstrip(), file=sys.stderr)
        if proc.returncode != 0:
            raise SystemExit(f"loader failed ({proc.returncode}):\n{proc.stdout}")
        return json.loads(out.read_text())


def run_client(server: RunningServer, scenario: Scenario, connections: int, tokens: list[str], args,
               paths: dict[str, dict[str, str]] | None = None) -> dict:
    """`paths`: per-token values for placeholders in the scenario's path ("{detail_book}")."""
    headers_for = []
    for key in tokens if scenario.auth else [None]:
        headers = dict(scenario.headers)
        if key is not None:
            headers["Authorization"] = f"Token {key}"
        path = scenario.path.format(**(paths or {}).get(key, {})) if "{" in scenario.path else scenario.path
        headers_for.append(build_request(scenario.method, path, headers, scenario.body).decode("latin-1"))
    warmup = max(args.warmup, len(headers_for)) if scenario.prime else args.warmup
    spec = {
        "port": server.port,
        "requests": headers_for,
        "connections": connections,
        "warmup": warmup,
        "measure": args.requests,
        "max_seconds": args.max_seconds,
        "expect_status": scenario.expect_status,
    }
    proc = subprocess.run(
        [PYTHON, "-m", "tests.benchmarks.client"], cwd=ROOT, input=json.dumps(spec), capture_output=True,
        text=True, timeout=2 * args.max_seconds + 60, preexec_fn=die_with_parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def _on_signal(signum, frame):  # SIGTERM/SIGHUP: unwind through the finally blocks
    print(f"\nbench: got signal {signum}; stopping servers", file=sys.stderr)
    raise SystemExit(128 + signum)


def section_selected(section: str, only: list[str]) -> bool:
    return not only or section in (o.lower() for o in only)


def http_section(args, env: dict[str, str], stamp: str, scenarios: list[Scenario]) -> tuple[list[str], list[str], bool]:
    """Load fixtures, start the servers, drive each scenario: (text lines, markdown lines, failed)."""
    t = time.monotonic()
    fixtures = run_load(env, args.users, args.load_opt)
    tokens = [key for _, key in fixtures["tokens"]]
    detail_books = fixtures.get("extra", {}).get("detail_books", {})
    paths = {key: {"detail_book": detail_books.get(uid, "")} for uid, key in fixtures["tokens"]}
    cached_queries: dict[str, list[str]] = fixtures.get("cached_queries", {})
    print(f"bench: loaded {len(tokens)} users with tokens in {time.monotonic() - t:.1f}s", flush=True)

    servers: dict[str, RunningServer] = {}
    rows: list[Row] = []
    try:
        for name in dict.fromkeys(s.server for s in scenarios):
            servers[name] = RunningServer(SERVERS[name], env, OUT_DIR / f"{stamp}-{name}.log")
        ready_headers = {"Authorization": f"Token {tokens[0]}"}
        for running in servers.values():
            running.wait_ready("/api/v1/ping", ready_headers)
        print("bench: servers ready: " + ", ".join(f"{n} pid {s.pid} port {s.port}" for n, s in servers.items()), flush=True)

        for connections in args.concurrency:
            for scenario in scenarios:
                running = servers[scenario.server]
                cpu_before, (busy_before, steal_before) = running.cpu_seconds(), machine_cpu_seconds()
                wall_before = time.monotonic()
                result = run_client(running, scenario, connections, tokens, args, paths)
                wall = time.monotonic() - wall_before
                cpu = running.cpu_seconds() - cpu_before
                busy, steal = (a - b for a, b in zip(machine_cpu_seconds(), (busy_before, steal_before)))
                # Everything but this server and this client: Postgres, Redis, the kernel, and
                # whatever else runs on the machine (a high share means a disturbed run).
                other = max(0.0, busy - cpu - result["client_cpu_total_s"])
                done = result["completed"]
                row = Row(
                    scenario.name, connections, result,
                    server_cpu_ms_per_req=(cpu / done * 1000) if done else None,
                    client_cpu_us_per_req=(result["client_cpu_s"] / done * 1e6) if done else None,
                    other_cpu_pct=other / (wall * NCPU) * 100 if wall > 0 else None,
                    steal_pct=steal / (wall * NCPU) * 100 if wall > 0 else None,
                )
                rows.append(row)
                flag = f"  {result['errors']} ERRORS" if result["errors"] else ""
                print(
                    f"  {scenario.name:<28} c={connections:<2} n={result['measured']:<5} "
                    f"p50={result['p50_ms'] or 0:.2f}ms rps={result['rps']:.0f} "
                    f"server={row.server_cpu_ms_per_req or 0:.2f}ms/req client={row.client_cpu_us_per_req or 0:.0f}us/req "
                    f"other={row.other_cpu_pct or 0:.0f}%{flag}",
                    flush=True,
                )
                if running.proc.poll() is not None:
                    raise RuntimeError(f"{running.server.name} died during '{scenario.name}':\n{running.log_tail()}")
    finally:
        for running in servers.values():
            running.stop()

    commands = {name: s.display for name, s in servers.items()}
    client_cpu = [r.client_cpu_us_per_req for r in rows if r.client_cpu_us_per_req is not None]
    settings_line = (
        f"{args.users} users rotating tokens; per run {args.warmup} warm-up + {args.requests} measured requests "
        f"(cap {args.max_seconds:g}s per phase); closed loop, keep-alive where the server allows it"
    )
    query_lines = [(f"SQL queries on a cached {path} hit: {len(qs)}", qs) for path, qs in cached_queries.items()]
    client_line = (
        f"load client CPU: {min(client_cpu):.0f}-{max(client_cpu):.0f} us/request (separate process, uvloop)"
        if client_cpu else ""
    )
    errors = error_details(rows)
    others = [r.other_cpu_pct for r in rows if r.other_cpu_pct is not None]
    disturbed = [r for r in rows if (r.other_cpu_pct or 0) > DISTURBED_PCT]
    other_line = (
        f"other CPU (Postgres, Redis, kernel, anything else on the machine) {min(others):.0f}-{max(others):.0f}% "
        f"of {NCPU} cores; steal up to {max(r.steal_pct or 0 for r in rows):.0f}%"
        if others else ""
    )
    if disturbed:
        other_line += (
            f". WARNING: {len(disturbed)} run(s) had over {DISTURBED_PCT:.0f}% other CPU: something else was "
            "competing for the cores; rerun on a quiet machine before trusting those rows"
        )

    serving = serving_lines(rows)
    text = ["HTTP"] + [f"  {name}: {cmd}" for name, cmd in commands.items()]
    text += ["load: " + settings_line, "", text_table(rows), ""]
    for line, queries in query_lines:
        text.append(line)
        if len(queries) != 1:
            text += [f"    {q}" for q in queries]
    text += [line for line in (client_line, other_line) if line] + errors + serving

    md = ["### HTTP", ""] + [f"- {name}: `{cmd}`" for name, cmd in commands.items()]
    md += [f"- load: {settings_line}"]
    for line, queries in query_lines:
        md += [f"- {line}"] + ([f"  - `{q}`" for q in queries] if len(queries) != 1 else [])
    md += [f"- {line}" for line in (client_line, other_line) if line]
    md += ["", markdown_table(rows), ""] + [f"- {line.strip()}" for line in errors]
    md += ["", "```", *serving, "```"] if serving else []
    return text, md, bool(errors)


def serving_lines(rows: list[Row]) -> list[str]:
    """`make serve`'s cached reads against the WSGI floor (same processes), side by side.
    Targets: at 8 connections >= 0.6x the floor's req/s; at 1 connection p50 <= 1.5x the floor's."""
    by = {(r.scenario, r.connections): r.result for r in rows}
    lines = []
    for connections in sorted({r.connections for r in rows}):
        floor = by.get((FLOOR, connections))
        if not floor or not floor.get("rps"):
            continue
        for name in (*SERVED, *REPLACED):
            served = by.get((name, connections))
            if not served or not served.get("rps"):
                continue
            rps_ratio, p50_ratio = served["rps"] / floor["rps"], (served["p50_ms"] or 0) / (floor["p50_ms"] or 1)
            verdict = ""
            if connections == 8:
                verdict = "meets >= 0.6x" if rps_ratio >= 0.6 else "MISSES >= 0.6x"
            elif connections == 1:
                verdict = "meets <= 1.5x p50" if p50_ratio <= 1.5 else "MISSES <= 1.5x p50"
            lines.append(f"  c={connections:<2} {name:<43} {served['rps']:>6.0f} req/s vs floor {floor['rps']:>6.0f}: "
                         f"{rps_ratio:.2f}x;  p50 {served['p50_ms']:.2f} vs {floor['p50_ms']:.2f} ms: {p50_ratio:.2f}x  "
                         f"{verdict}")
    return ["", f"serving (make serve vs the floor, {SERVE_PROCESSES} processes each)", *lines] if lines else []


def emulator_env(env: dict[str, str], port: int) -> dict[str, str]:
    """The bench environment pointed at an emulator on `port` (served by the section's driver)."""
    return {**env, "ELEVENLABS_API_KEY": EMULATOR_API_KEY, "ELEVENLABS_BASE_URL": f"http://127.0.0.1:{port}",
            "TTS_PROVIDER": "elevenlabs"}


def run_driver(module: str, env: dict[str, str], port: int, stamp: str, *extra: str) -> dict:
    """Run a section's Django-side driver (`python -m tests.benchmarks.<module>`); its JSON result."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{module}-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [PYTHON, "-m", f"tests.benchmarks.{module}", "--emulator-port", str(port), "--out", str(out),
               "--log-dir", str(OUT_DIR / f"{stamp}-{module}"), *extra]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stderr=None, stdout=subprocess.PIPE, text=True,
                              timeout=1800, preexec_fn=die_with_parent)
        if proc.returncode != 0:
            raise RuntimeError(f"{module} bench failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
        return json.loads(out.read_text())


def tts_section(args, env: dict[str, str], stamp: str) -> tuple[list[str], list[str], bool]:
    """Speech jobs through real tts clusters against the emulator: (text lines, markdown lines, failed)."""
    port = free_port()
    tts_env = emulator_env(env, port)
    print(f"bench: speech jobs ({args.tts_jobs} per batch) through tts clusters, emulator on port {port}", flush=True)
    result = run_driver("tts_jobs", tts_env, port, stamp, "--jobs", str(args.tts_jobs))
    batches, fair = tts_cells(result)
    breaks = {n for n in range(1, len(batches)) if batches[n][1] != batches[n - 1][1]}
    setup = (
        f"{result['jobs']} jobs per batch, emulator latency {result['latency'] * 1000:.0f} ms per call, "
        f"{result['slots']} provider slots, {result['workers']} workers per cluster, backoff base "
        f"{result['backoff_base']:g} s; ideal = distinct texts x latency / slots; wall = first submit to last finish"
    )
    failures = tts_failures(result)
    text = ["speech jobs (tts clusters against the ElevenLabs emulator)", "load: " + setup, "",
            aligned(TTS_HEADERS, batches, TTS_RIGHT, breaks), "",
            "fairness: one user's book, then 1 s later another user's single clip (wait = submit to claim)", "",
            aligned(FAIR_HEADERS, fair, FAIR_RIGHT), "",
            "a 60-line storybook (15 pages x 4 lines): book_create to the book's ready", "",
            aligned(BOOK_HEADERS, book_cells(result), BOOK_RIGHT)] + ([""] + failures if failures else [])
    md = ["### Speech jobs", "", f"- load: {setup}", "", markdown(TTS_HEADERS, batches, TTS_RIGHT), "",
          "Fairness: one user's book, then 1 s later another user's single clip (wait = submit to claim).", "",
          markdown(FAIR_HEADERS, fair, FAIR_RIGHT), "", "A 60-line storybook: book_create to the book's ready.", "",
          markdown(BOOK_HEADERS, book_cells(result), BOOK_RIGHT), ""] + [f"- {line}" for line in failures]
    return text, md, bool(failures)


def sync_section(args, env: dict[str, str], stamp: str) -> tuple[list[str], list[str], bool]:
    """Clone -> voice.completed over a real websocket, and the cost of a sync tick."""
    port = free_port()
    print(f"bench: voice sync ({args.sync_clones} clones per row), emulator on port {port}", flush=True)
    result = run_driver("voice_sync", emulator_env(env, port), port, stamp, "--clones", str(args.sync_clones))
    latency, ticks, failures = sync_cells(result)
    setup = (
        f"{result['latency'][0]['clones']} clones per row through POST /api/v1/tts/voices/clone, one every "
        f"{result['clone_interval']:g} s; the emulator passes a clone's verification {result['ready_after']:g} s after "
        f"it is added; latency = clone request sent -> voice.completed received by the owner's websocket client "
        f"(uvicorn, main + tts clusters, {result['q_workers']} main workers)"
    )
    text = ["voice sync (clone -> voice.completed; the cost of one sync tick)", "load: " + setup, "",
            aligned(SYNC_HEADERS, latency, SYNC_RIGHT), "", "one tick of the minute schedule, voices left processing:", "",
            aligned(TICK_HEADERS, ticks, TICK_RIGHT)] + ([""] + failures if failures else [])
    md = ["### Voice sync", "", f"- load: {setup}", "", markdown(SYNC_HEADERS, latency, SYNC_RIGHT), "",
          "One tick of the minute schedule, voices left processing:", "", markdown(TICK_HEADERS, ticks, TICK_RIGHT), ""]
    md += [f"- {line}" for line in failures]
    return text, md, bool(failures)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    filters = [o for o in args.only if o.lower() not in SECTIONS]
    scenarios = selected_scenarios(filters, args.all)
    run_http = section_selected("http", args.only) or any(s.name != BASELINE for s in scenarios if filters)
    run_tts = section_selected("tts", args.only) and not args.no_tts
    run_sync = section_selected("sync", args.only) and not args.no_sync
    if not (run_http or run_tts or run_sync):
        raise SystemExit(f"bench: nothing matches --only {' '.join(args.only)}")
    began = time.monotonic()

    db_url, r_url = environment.database_url(), environment.redis_url()
    environment.check_urls(db_url, r_url)
    print(f"bench: database {db_url} (drop + create), redis {r_url} (flushdb)", flush=True)
    environment.reset_database(db_url)
    environment.flush_redis(r_url)
    env = environment.django_env(db_url, r_url)
    t = time.monotonic()
    environment.migrate(env)
    print(f"bench: migrated in {time.monotonic() - t:.1f}s", flush=True)

    text: list[str] = []
    md: list[str] = []
    failed = False
    sections = ((run_http, lambda: http_section(args, env, stamp, scenarios)), (run_tts, lambda: tts_section(args, env, stamp)),
                (run_sync, lambda: sync_section(args, env, stamp)))
    for wanted, section in sections:
        if not wanted:
            continue
        lines, md_lines, section_failed = section()
        text += [""] + lines
        md += md_lines + [""]
        failed |= section_failed

    env_line = (
        f"{os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, {_versions()}, "
        f"PostgreSQL {_pg_version(db_url)}, Redis {r_url}, git {_git()}"
    )
    print()
    print("environment: " + env_line)
    print("\n".join(text))
    report = OUT_DIR / f"{stamp}.md"
    report.write_text("\n".join([f"## Benchmark {stamp}", "", f"- environment: {env_line}", ""] + md).rstrip() + "\n")
    print(f"\nwritten to {report.relative_to(ROOT)} ({time.monotonic() - began:.0f}s in all)")
    return 1 if failed else 0
