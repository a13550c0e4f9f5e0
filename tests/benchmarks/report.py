"""The results table, as aligned text for the terminal and as markdown for notes."""

from __future__ import annotations

from dataclasses import dataclass

from .scenarios import BASELINE


@dataclass
class Row:
    scenario: str
    connections: int
    result: dict  # the client's summary
    server_cpu_ms_per_req: float | None
    client_cpu_us_per_req: float | None
    other_cpu_pct: float | None = None
    steal_pct: float | None = None


HEADERS = (
    "scenario", "conns", "requests", "p50 ms", "p99 ms", "req/s", "errors",
    "p50 vs ping", "req/s vs ping", "server CPU ms/req", "other CPU",
)
RIGHT = set(range(1, len(HEADERS)))


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _errors(result: dict) -> str:
    n = result["errors"]
    return "0" if n == 0 else f"{n} ERRORS"


def cells(rows: list[Row]) -> list[tuple[str, ...]]:
    base = {r.connections: r.result for r in rows if r.scenario == BASELINE}
    out = []
    for r in rows:
        res = r.result
        b = base.get(r.connections)
        p50_ratio = rps_ratio = None
        if res["errors"] or (b and b["errors"]):
            b = None  # a ratio with failed requests on either side means nothing
        if b and b.get("p50_ms") and res.get("p50_ms") is not None:
            p50_ratio = res["p50_ms"] / b["p50_ms"]
        if b and b.get("rps") and res.get("rps"):
            rps_ratio = res["rps"] / b["rps"]
        out.append(
            (
                r.scenario + ("  <- ERRORS" if res["errors"] else ""),
                str(r.connections),
                str(res["measured"]),
                _num(res["p50_ms"], 2),
                _num(res["p99_ms"], 2),
                _num(res["rps"], 0),
                _errors(res),
                "-" if p50_ratio is None else f"{p50_ratio:.2f}x",
                "-" if rps_ratio is None else f"{rps_ratio:.2f}x",
                _num(r.server_cpu_ms_per_req, 2),
                "-" if r.other_cpu_pct is None else f"{r.other_cpu_pct:.0f}%",
            )
        )
    return out


def aligned(headers, body: list[tuple[str, ...]], right: set[int], breaks: set[int] = frozenset()) -> str:
    """Columns padded to width (numbers right-aligned); a blank line before each row in `breaks`."""
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(headers)]

    def line(values) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    out = [line(headers), "  ".join("-" * w for w in widths)]
    for n, c in enumerate(body):
        if n in breaks:
            out.append("")
        out.append(line(c))
    return "\n".join(out)


def markdown(headers, body: list[tuple[str, ...]], right: set[int]) -> str:
    out = ["| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    out += ["| " + " | ".join(c) + " |" for c in body]
    return "\n".join(out)


def text_table(rows: list[Row]) -> str:
    breaks = {n for n in range(1, len(rows)) if rows[n].connections != rows[n - 1].connections}
    return aligned(HEADERS, cells(rows), RIGHT, breaks)


def markdown_table(rows: list[Row]) -> str:
    return markdown(HEADERS, cells(rows), RIGHT)


def error_details(rows: list[Row]) -> list[str]:
    lines = []
    for r in rows:
        res = r.result
        if not res["errors"]:
            continue
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(res["error_kinds"].items()))
        lines.append(f"errors in '{r.scenario}' at {r.connections} conns: {kinds}")
        lines += [f"    e.g. {s}" for s in res["error_samples"]]
    return lines


# --- speech jobs (tts_jobs.py) ----------------------------------------------------------------------

TTS_HEADERS = (
    "jobs", "clusters", "n", "distinct", "provider calls", "calls saved", "429s", "wall s", "ideal s", "wall/ideal",
    "vs distinct", "max in flight", "succeeded", "ok calls per text", "charged ok",
    "slots busy", "to 1st call s", "after last s", "machine CPU", "cluster CPU ms/job", "driver CPU ms/job",
)
TTS_RIGHT = set(range(1, len(TTS_HEADERS)))
FAIR_HEADERS = (
    "clusters", "book lines", "book queued at submit", "clip wait s", "one job s", "wait / job",
    "FIFO wait s", "clip done s", "all succeeded",
)
FAIR_RIGHT = set(range(len(FAIR_HEADERS)))


def tts_cells(result: dict) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(batch rows, fairness rows) of a tts_jobs result."""
    batches = [r for r in result["rows"] if r["name"] not in ("fairness", "book")]
    distinct_wall = {r["clusters"]: r["wall_s"] for r in batches if r["name"] == "distinct"}
    rows = []
    for r in batches:
        base = distinct_wall.get(r["clusters"])
        rows.append((
            r["name"], str(r["clusters"]), str(r["jobs"]), str(r["distinct_texts"]), str(r["provider_calls"]),
            str(r["jobs"] - r["provider_calls"]) if r["distinct_texts"] < r["jobs"] else "-",
            str(r["injected_429"]), f"{r['wall_s']:.2f}", f"{r['ideal_s']:.2f}", f"{r['ratio']:.2f}",
            "-" if r["name"] == "distinct" or base is None else f"{r['wall_s'] - base:+.2f} s",
            str(r["max_in_flight"]), f"{r['succeeded']}/{r['jobs']}",
            "-".join(str(n) for n in (r["ok_calls_per_text"][0], r["ok_calls_per_text"][-1]))
            if len(r["ok_calls_per_text"]) > 1 else str(r["ok_calls_per_text"][0]),
            "yes" if r["charged"] == r["charged_expected"] else f"NO ({r['charged']} of {r['charged_expected']})",
            f"{r['slot_busy'] * 100:.0f}%", f"{r['first_call_s']:.2f}", f"{r['after_last_s']:.2f}", f"{r['cpu_pct']:.0f}%",
            f"{r['cluster_cpu_ms_per_job']:.0f}", f"{r['driver_cpu_ms_per_job']:.0f}",
        ))
    fair = [(
        str(r["clusters"]), str(r["book_lines"]), str(r["book_queued_at_submit"]), f"{r['wait_s']:.2f}",
        f"{r['job_s']:.2f}", f"{r['wait_s'] / r['job_s']:.2f}x", f"{r['fifo_wait_s']:.2f}", f"{r['done_s']:.2f}",
        "yes" if r["all_succeeded"] else "NO",
    ) for r in result["rows"] if r["name"] == "fairness"]
    return rows, fair


BOOK_HEADERS = ("clusters", "lines", "status", "create -> ready s", "ideal s", "ratio", "target", "max in flight",
                "provider calls")
BOOK_RIGHT = set(range(len(BOOK_HEADERS))) - {2, 6}
BOOK_TARGET = 1.3


def book_cells(result: dict) -> list[tuple[str, ...]]:
    return [(str(r["clusters"]), str(r["lines"]), r["status"], f"{r['wall_s']:.2f}", f"{r['ideal_s']:.2f}",
             f"{r['ratio']:.2f}", "met" if r["ratio"] <= BOOK_TARGET else f"MISSED (<= {BOOK_TARGET})",
             str(r["max_in_flight"]), str(r["provider_calls"]))
            for r in result["rows"] if r["name"] == "book"]


def tts_failures(result: dict) -> list[str]:
    """What a speech-job run got wrong (the run exits 1 when any)."""
    out = []
    for r in result["rows"]:
        label = f"tts '{r['name']}' with {r['clusters']} cluster(s)"
        if r["name"] == "book":
            if r["status"] != "ready":
                out.append(f"{label}: the book ended {r['status']}")
            continue
        if r["name"] == "fairness":
            if not r["all_succeeded"]:
                out.append(f"{label}: not every job succeeded")
            continue
        if r["succeeded"] != r["jobs"]:
            out.append(f"{label}: {r['succeeded']} of {r['jobs']} succeeded ({r['statuses']})")
        if r["ok_calls_per_text"] != [1]:
            out.append(f"{label}: successful provider calls per text {r['ok_calls_per_text']} (want exactly 1)")
        if r["max_in_flight"] > result["slots"]:
            out.append(f"{label}: {r['max_in_flight']} provider calls in flight (limit {result['slots']})")
        if r["charged"] != r["charged_expected"]:
            out.append(f"{label}: charged {r['charged']} characters, expected {r['charged_expected']}")
        if r["provider_calls"] != r["provider_calls_on_jobs"]:
            out.append(f"{label}: the emulator saw {r['provider_calls']} calls, the jobs count "
                       f"{r['provider_calls_on_jobs']}")
    return out


# --- voice sync (voice_sync.py) ------------------------------------------------------------------

SYNC_HEADERS = ("tts backlog", "clones", "events", "p50 s", "p95 s", "max s", "target", "clone request p50 ms")
SYNC_RIGHT = set(range(len(SYNC_HEADERS))) - {6}
TICK_HEADERS = ("pending voices", "provider calls", "SQL queries", "wall ms")
TICK_RIGHT = set(range(len(TICK_HEADERS)))
SYNC_P50_TARGET, SYNC_P95_TARGET = 3.0, 10.0


def sync_cells(result: dict) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], list[str]]:
    """(latency rows, tick rows, failures) of a voice_sync result."""
    rows, failures = [], []
    for r in result["latency"]:
        met = r["p50_s"] is not None and r["p50_s"] <= SYNC_P50_TARGET and r["p95_s"] <= SYNC_P95_TARGET
        backlog = f"{r['backlog']} jobs" + (f" ({r['backlog_still_queued']} left at the end)" if r["backlog"] else "")
        rows.append((backlog, str(r["clones"]), str(r["events"]), _num(r["p50_s"], 2), _num(r["p95_s"], 2),
                     _num(r["max_s"], 2), "met" if met else "MISSED (p50 <= 3 s, p95 <= 10 s)",
                     _num(r["clone_request_ms_p50"], 0)))
        if r["missing"] or r["failures"]:
            failures.append(f"voice sync with a backlog of {r['backlog']}: {r['missing']} clone(s) never announced, "
                            f"{len(r['failures'])} clone request(s) failed {r['failures'][:2]}")
    ticks = [(str(t["pending"]), str(t["provider_calls"]), str(t["sql_queries"]), f"{t['wall_ms']:.1f}")
             for t in result["ticks"]]
    return rows, ticks, failures
