"""Speech-job benchmarks: the runner against the ElevenLabs emulator, through real `tts` clusters.

    python -m tests.benchmarks.tts_jobs --emulator-port PORT --out results.json

The runner (`make bench`) starts it with the bench environment, ELEVENLABS_BASE_URL pointing at
PORT; this process serves the emulator on that port in a thread, starts `manage.py qcluster`
processes for the `tts` cluster (production settings: 5 workers, 3 slots, real backoff), queues
jobs through `speech_job_create` and reads the results back from the job table and the
emulator's request log. Each batch uses texts no earlier batch used, so only the repeats a batch
asks for can reuse a clip.

Rows, for one and for two clusters:
- `distinct`: N jobs with distinct texts. ideal = N x latency / slots.
- `20% 429`: the same with a fifth of the provider's answers a 429 `too_many_concurrent_requests`
  (after the latency, like a provider that took the request and then refused it).
- `half repeated`: N jobs where every second one repeats an earlier text. ideal counts the
  distinct texts only.
- `fairness`: one user's 60-line book, then 1 s later another user's single clip; the clip's wait
  from submit to start (its claim) against one job's duration (the book's median claim to finish).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from tests.benchmarks.driver import driver_parser, setup_django
from tests.benchmarks.servers import group_cpu_seconds, machine_cpu_seconds, qclusters

ROOT = Path(__file__).resolve().parents[2]
VOICE_ID = "benchVoice0000000000"
MODEL_ID = "eleven_multilingual_v2"
OUTPUT_FORMAT = "mp3_44100_128"
WARMUP_JOBS = 6
BATCH_TIMEOUT = 300.0


class Bench:
    def __init__(self, *, emulator, jobs: int, latency: float, slots: int, log_dir: Path) -> None:
        self.emulator = emulator
        self.jobs = jobs
        self.latency = latency
        self.slots = slots
        self.log_dir = log_dir
        self._batch = 0

    # --- plumbing -------------------------------------------------------------------------------
    def _fresh_emulator(self, *, fault_rate: float = 0.0) -> None:
        from tests.fakes import elevenlabs as el

        self.emulator.reset()
        self.emulator.add_voice("Bench parent", voice_id=VOICE_ID)
        self.emulator.set_latency(el.TTS_TIMESTAMPS, self.latency)
        self.emulator.set_concurrency_limit(None)  # the provider would refuse past its plan; here we watch
        if fault_rate:
            self.emulator.seed_faults(20261202)
            self.emulator.fail(el.TTS_TIMESTAMPS, 429, code="too_many_concurrent_requests", times=None,
                               probability=fault_rate)

    def _user(self):
        from tests.factories import UserFactory

        self._batch += 1
        return UserFactory(email=f"tts-bench-{self._batch}-{time.time_ns()}@bench.invalid",
                           monthly_character_quota=10_000_000)

    def _submit(self, owner, texts: list[str], *, purpose: str = "generate") -> list:
        from tts.services import speech_job_create

        return [speech_job_create(owner=owner, provider="elevenlabs", provider_voice_id=VOICE_ID, text=text,
                                  model_id=MODEL_ID, output_format=OUTPUT_FORMAT, purpose=purpose).pk
                for text in texts]

    def _wait(self, ids: list, procs: list[subprocess.Popen]) -> None:
        from tts.models import SpeechJob

        deadline = time.monotonic() + BATCH_TIMEOUT
        open_states = (SpeechJob.Status.QUEUED, SpeechJob.Status.RUNNING)
        while SpeechJob.objects.filter(pk__in=ids, status__in=open_states).exists():
            if time.monotonic() > deadline:
                counts = Counter(SpeechJob.objects.filter(pk__in=ids).values_list("status", flat=True))
                raise SystemExit(f"tts bench: jobs not finished after {BATCH_TIMEOUT:.0f}s: {dict(counts)}")
            dead = [p.pid for p in procs if p.poll() is not None]
            if dead:
                raise SystemExit(f"tts bench: cluster process(es) {dead} died; see {self.log_dir}/tts-cluster-*.log")
            time.sleep(0.05)

    def _texts(self, n: int) -> list[str]:
        tag = f"{self._batch}-{time.time_ns()}"
        return [f"Chapter {tag}, line {i}: the little fox looked up at the moon and smiled." for i in range(n)]

    # --- rows -----------------------------------------------------------------------------------
    def warm_up(self, procs) -> None:
        """Wait until the clusters take jobs (their start is not part of any row)."""
        self._fresh_emulator()
        owner = self._user()
        self._wait(self._submit(owner, self._texts(WARMUP_JOBS)), procs)

    def batch(self, name: str, procs, *, fault_rate: float = 0.0, repeat_half: bool = False) -> dict:
        from tts.models import SpeechJob

        self._fresh_emulator(fault_rate=fault_rate)
        owner = self._user()
        texts = self._texts(self.jobs)
        if repeat_half:
            rng = random.Random(7)
            # every second job repeats a random earlier original (some repeats run while the
            # original still renders: the single flight makes them wait for it)
            texts = [texts[i] if i % 2 == 0 else texts[rng.randrange(0, i, 2)] for i in range(self.jobs)]
        distinct = len(set(texts))
        cpu_before = machine_cpu_seconds()[0]
        workers_before = sum(group_cpu_seconds(p.pid) for p in procs)
        own_before = time.process_time()
        started = time.time()
        ids = self._submit(owner, texts)
        submitted = time.time() - started
        self._wait(ids, procs)
        cpu_pct = (machine_cpu_seconds()[0] - cpu_before) / ((time.time() - started) * (os.cpu_count() or 1)) * 100
        workers_cpu = sum(group_cpu_seconds(p.pid) for p in procs) - workers_before
        own_cpu = time.process_time() - own_before  # submitting, the emulator, polling for the end
        jobs = list(SpeechJob.objects.filter(pk__in=ids).values("status", "text", "provider_calls", "character_cost",
                                                                 "finished_at", "clip_id"))
        wall = max(j["finished_at"] for j in jobs).timestamp() - started
        ideal = distinct * self.latency / self.slots
        from tests.fakes import elevenlabs as el

        calls = [r for r in self.emulator.requests if r.endpoint == el.TTS_TIMESTAMPS]
        ok_per_text = Counter(r.json["text"] for r in calls if r.status == 200)
        # where the time went: before the first call, provider time per slot, after the last answer
        busy = sum(r.answered_at - r.received_at for r in calls)
        first_call = min(r.received_at for r in calls) - started
        after_last = max(j["finished_at"] for j in jobs).timestamp() - max(r.answered_at for r in calls)
        statuses = Counter(j["status"] for j in jobs)
        return {
            "name": name, "clusters": len(procs), "jobs": len(jobs), "distinct_texts": distinct,
            "succeeded": statuses.get("succeeded", 0), "statuses": dict(statuses),
            "provider_calls": len(calls), "provider_calls_on_jobs": sum(j["provider_calls"] for j in jobs),
            "injected_429": sum(1 for r in calls if r.status == 429),
            "ok_calls_per_text": sorted(set(ok_per_text[t] for t in set(texts))),
            "charged": sum(j["character_cost"] or 0 for j in jobs),
            # one charge per distinct text: a reused clip costs nothing
            "charged_expected": sum(len(t) for t in set(texts)),
            "clips": len({j["clip_id"] for j in jobs}),
            "submit_s": submitted, "wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal,
            "max_in_flight": self.emulator.max_tts_in_flight,
            "slot_busy": busy / (self.slots * wall), "first_call_s": first_call, "after_last_s": after_last,
            "cpu_pct": cpu_pct, "cluster_cpu_ms_per_job": workers_cpu / len(ids) * 1000,
            "driver_cpu_ms_per_job": own_cpu / len(ids) * 1000,
        }

    def fairness(self, procs, *, book_lines: int = 60, delay: float = 1.0) -> dict:
        from tts.models import SpeechJob

        self._fresh_emulator()
        book_owner, other = self._user(), self._user()
        book = self._submit(book_owner, self._texts(book_lines), purpose="story_line")
        time.sleep(delay)
        book_waiting = SpeechJob.objects.filter(pk__in=book, status=SpeechJob.Status.QUEUED).count()
        [single] = self._submit(other, self._texts(1))
        self._wait([*book, single], procs)
        clip = SpeechJob.objects.get(pk=single)
        lines = SpeechJob.objects.filter(pk__in=book)
        durations = [(j.finished_at - j.started_at).total_seconds() for j in lines]
        wait = (clip.started_at - clip.created_at).total_seconds()
        done = (clip.finished_at - clip.created_at).total_seconds()
        return {
            "name": "fairness", "clusters": len(procs), "book_lines": book_lines,
            "book_queued_at_submit": book_waiting, "wait_s": wait, "done_s": done,
            "job_s": statistics.median(durations),
            # a first-in-first-out queue would start the clip after the book's queued lines
            "fifo_wait_s": book_waiting * self.latency / self.slots,
            "all_succeeded": all(j.status == "succeeded" for j in [*lines, clip]),
        }


    def book(self, procs, *, pages: int = 15, lines_per_page: int = 4) -> dict:
        """A 60-line storybook: create (every line queued at once) to the book's `ready`."""
        from storybook.models import Book
        from storybook.services import LineInput, PageInput, book_create
        from tests.fakes import elevenlabs as el
        from voices.models import Voice

        self._fresh_emulator()
        owner = self._user()
        voice, _ = Voice.objects.get_or_create(
            provider="elevenlabs", provider_voice_id=VOICE_ID,
            defaults={"name": "Bench narrator", "visibility": "default", "status": "completed", "owner": None,
                      "category": "premade", "language": "en"})
        texts = iter(self._texts(pages * lines_per_page))
        book_pages = [PageInput(lines=[LineInput(text=next(texts)) for _ in range(lines_per_page)])
                      for _ in range(pages)]
        started = time.time()
        book = book_create(user=owner, title="Bench book", language="en", narrator_voice_id=voice.pk, pages=book_pages)
        deadline = time.monotonic() + BATCH_TIMEOUT
        while Book.objects.filter(pk=book.pk, status=Book.Status.GENERATING).exists():
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("tts bench: the book did not settle")
            time.sleep(0.02)
        book.refresh_from_db()
        wall = book.updated_at.timestamp() - started
        lines = pages * lines_per_page
        ideal = lines * self.latency / self.slots
        return {"name": "book", "clusters": len(procs), "lines": lines, "status": book.status, "wall_s": wall,
                "ideal_s": ideal, "ratio": wall / ideal, "max_in_flight": self.emulator.max_tts_in_flight,
                "provider_calls": self.emulator.count(el.TTS_TIMESTAMPS)}


def main(argv: list[str] | None = None) -> int:
    p = driver_parser("python -m tests.benchmarks.tts_jobs")
    p.add_argument("--jobs", type=int, default=120)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--clusters", default="1,2")
    args = p.parse_args(argv)

    setup_django()
    from django.conf import settings

    from tests.fakes.elevenlabs import ElevenLabsEmulator

    args.log_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with ElevenLabsEmulator(api_key=settings.ELEVENLABS_API_KEY, port=args.emulator_port) as emulator:
        bench = Bench(emulator=emulator, jobs=args.jobs, latency=args.latency, slots=settings.TTS_MAX_CONCURRENCY,
                      log_dir=args.log_dir)
        for count in (int(c) for c in args.clusters.split(",") if c.strip()):
            with qclusters(["tts"] * count, args.log_dir, tag=str(count)) as procs:
                t = time.monotonic()
                bench.warm_up(procs)
                print(f"  tts: {count} cluster(s) up and warm in {time.monotonic() - t:.1f}s", file=sys.stderr, flush=True)
                for kwargs in ({"name": "distinct"}, {"name": "20% 429", "fault_rate": 0.2},
                               {"name": "half repeated", "repeat_half": True}):
                    row = bench.batch(procs=procs, **kwargs)
                    rows.append(row)
                    print(f"  tts: {row['name']:<14} clusters={count} wall={row['wall_s']:.2f}s "
                          f"ratio={row['ratio']:.2f} in-flight={row['max_in_flight']} calls={row['provider_calls']}",
                          file=sys.stderr, flush=True)
                row = bench.fairness(procs)
                rows.append(row)
                book = bench.book(procs)
                rows.append(book)
                print(f"  tts: book           clusters={count} wall={book['wall_s']:.2f}s ratio={book['ratio']:.2f} "
                      f"status={book['status']}", file=sys.stderr, flush=True)
                print(f"  tts: fairness       clusters={count} wait={row['wait_s']:.2f}s job={row['job_s']:.2f}s",
                      file=sys.stderr, flush=True)
    args.out.write_text(json.dumps({
        "jobs": args.jobs, "latency": args.latency, "slots": settings.TTS_MAX_CONCURRENCY,
        "workers": settings.TTS_Q_WORKERS, "backoff_base": settings.TTS_BACKOFF_BASE_SECONDS, "rows": rows,
        "finished": datetime.now().isoformat(timespec="seconds"),
    }, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
