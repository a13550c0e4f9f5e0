"""The load generator: a lean closed-loop HTTP/1.1 client, run in its own process.

    python -m tests.benchmarks.client < run.json > result.json

The runner starts one of these per (scenario, concurrency). It never imports Django: the machine
has 2 cores and every microsecond spent here is taken from the server being measured.

Design: each of `connections` workers owns one keep-alive TCP connection and sends one request,
waits for the whole response, then sends the next (closed loop, no pipelining). Requests are
pre-built bytes, one per user token, rotated by request index. Responses are framed by
Content-Length (chunked and read-until-close are handled too, for completeness). A response
with `Connection: close` (gunicorn's sync worker sends it on every response) makes the worker
reconnect; that connect is inside the next request's latency, as it would be for a real client.
The first `warmup` requests are not recorded; the measured phase ends after `requests`
requests or `max_seconds`, whichever comes first.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import sys
import time

ERROR_SAMPLES = 5


def build_request(method: str, path: str, headers: dict[str, str], body: bytes = b"", host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ProtocolError(Exception):
    pass


class _Conn(asyncio.Protocol):
    """One connection; `request()` writes pre-built bytes and resolves with (status, close, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self._head_end = -1  # index of the blank line ending the current response's head

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            parsed = self._parse(eof=True)
            if parsed is not None:
                waiter.set_result(parsed)
            else:
                waiter.set_exception(exc or ConnectionError("server closed the connection mid-response"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = self._parse(eof=False)
        except ProtocolError as exc:
            waiter.set_exception(exc)
            return
        if parsed is not None:
            waiter.set_result(parsed)

    def request(self, data: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self._head_end = -1
        self.transport.write(data)
        return self.waiter

    def _parse(self, eof: bool):
        buf = self.buf
        if self._head_end < 0:
            self._head_end = buf.find(b"\r\n\r\n")
            if self._head_end < 0:
                return None
        head_end = self._head_end
        head = bytes(buf[:head_end]).lower()
        if not head.startswith(b"http/1."):
            raise ProtocolError(f"not an HTTP/1.x response: {bytes(buf[:40])!r}")
        status = int(head[9:12])
        close = head.startswith(b"http/1.0") or b"\r\nconnection: close" in head
        start = head_end + 4
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            if len(buf) < start + length:
                return None
            body = bytes(buf[start : start + length])
            del buf[: start + length]
        elif b"\r\ntransfer-encoding: chunked" in head:
            body, end = _dechunk(buf, start)
            if body is None:
                return None
            del buf[:end]
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
            del buf[:start]
        else:  # framed by the end of the connection
            if not eof:
                return None
            body = bytes(buf[start:])
            buf.clear()
            close = True
        self._head_end = -1
        return status, close, body


def _dechunk(buf: bytearray, pos: int):
    body = bytearray()
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None, 0
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        if size == 0:  # no trailers expected
            if len(buf) < line_end + 4:
                return None, 0
            return bytes(body), line_end + 4
        if len(buf) < line_end + 2 + size + 2:
            return None, 0
        body += buf[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Run:
    def __init__(self, spec: dict) -> None:
        self.host = spec.get("host", "127.0.0.1")
        self.port = int(spec["port"])
        self.requests = [r.encode("latin-1") for r in spec["requests"]]
        self.connections = int(spec["connections"])
        self.warmup = int(spec["warmup"])
        self.measure = int(spec["measure"])
        self.max_seconds = float(spec["max_seconds"])
        self.expect_status = int(spec.get("expect_status", 200))
        self.issued = 0
        self.completed = 0
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.samples: list[str] = []
        self.measure_start: float | None = None
        self.measure_end = 0.0
        self.warmup_deadline = 0.0
        self.measure_deadline = float("inf")
        self.cpu_start = 0.0

    def take(self) -> int | None:
        i = self.issued
        now = time.perf_counter()
        if i >= self.warmup + self.measure or now > self.measure_deadline:
            return None
        if i < self.warmup and now > self.warmup_deadline:
            # Warm-up ran out of time: skip the rest of it, start measuring.
            self.issued = i = self.warmup
        if i == self.warmup and self.measure_start is None:
            self.measure_start = now
            self.measure_deadline = now + self.max_seconds
        self.issued = i + 1
        return i

    def error(self, key: str, sample: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1
        sample = sample[:300]
        if len(self.samples) < ERROR_SAMPLES and sample not in self.samples:
            self.samples.append(sample)

    async def worker(self) -> None:
        loop = asyncio.get_running_loop()
        conn: _Conn | None = None
        requests = self.requests
        n = len(requests)
        perf = time.perf_counter
        while (i := self.take()) is not None:
            measured = i >= self.warmup
            t0 = perf()
            try:
                if conn is None or conn.closed:
                    _, conn = await loop.create_connection(_Conn, self.host, self.port)
                status, close, body = await conn.request(requests[i % n])
            except Exception as exc:  # noqa: BLE001 - every failure is a counted error
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                if measured:
                    self.error(type(exc).__name__, f"{type(exc).__name__}: {exc}")
                    self.measure_end = perf()
                self.completed += 1
                await asyncio.sleep(0.01)  # a refused or reset connection must not spin
                continue
            t1 = perf()
            self.completed += 1
            if measured:
                self.measure_end = t1
                if status == self.expect_status:
                    self.latencies.append(t1 - t0)
                else:
                    self.error(str(status), f"{status}: {body[:200].decode('utf-8', 'replace')}")
            if close:
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def run(self) -> dict:
        self.cpu_start = _cpu()
        self.warmup_deadline = time.perf_counter() + self.max_seconds
        await asyncio.gather(*(self.worker() for _ in range(self.connections)))
        await asyncio.sleep(0)  # let transports close
        return self.summary()

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        n_err = sum(self.errors.values())
        measured = len(lat) + n_err
        elapsed = (self.measure_end - self.measure_start) if self.measure_start is not None else 0.0

        def pct(p: float) -> float | None:  # nearest rank
            if not lat:
                return None
            return lat[max(0, math.ceil(p / 100 * len(lat)) - 1)] * 1000

        return {
            "measured": measured,
            "ok": len(lat),
            "completed": self.completed,
            "errors": n_err,
            "error_kinds": self.errors,
            "error_samples": self.samples,
            "elapsed_s": elapsed,
            "rps": (measured / elapsed) if elapsed > 0 else 0.0,
            "p50_ms": pct(50),
            "p99_ms": pct(99),
            "max_ms": lat[-1] * 1000 if lat else None,
            "mean_ms": (sum(lat) / len(lat) * 1000) if lat else None,
            "client_cpu_s": _cpu() - self.cpu_start,  # the run only
            "client_cpu_total_s": _cpu(),  # with interpreter start-up
        }


def main() -> int:
    spec = json.load(sys.stdin)
    try:
        import uvloop  # the cheapest loop we have: less client CPU taken from the server
    except ImportError:
        result = asyncio.run(Run(spec).run())
    else:
        result = uvloop.run(Run(spec).run())
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
