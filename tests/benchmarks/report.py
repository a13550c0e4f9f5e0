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


def text_table(rows: list[Row]) -> str:
    body = cells(rows)
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(HEADERS)]

    def line(values) -> str:
        return "  ".join(v.rjust(w) if i in RIGHT else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    out = [line(HEADERS), "  ".join("-" * w for w in widths)]
    last_conns = None
    for row, c in zip(rows, body):
        if last_conns is not None and row.connections != last_conns:
            out.append("")
        last_conns = row.connections
        out.append(line(c))
    return "\n".join(out)


def markdown_table(rows: list[Row]) -> str:
    body = cells(rows)
    out = ["| " + " | ".join(HEADERS) + " |"]
    out.append("|" + "|".join("---:" if i in RIGHT else "---" for i in range(len(HEADERS))) + "|")
    out += ["| " + " | ".join(c) + " |" for c in body]
    return "\n".join(out)


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
