"""Start, probe and stop the servers under test; never leave one running.

Each server gets its own session (process group = its pid), so stopping it signals exactly the
processes it started: SIGTERM to the group, SIGKILL after a timeout. On Linux the server is also
told to get SIGTERM if this process dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.live import stop_process_group

from .environment import PYTHON, ROOT
from .scenarios import Server

STOP_TIMEOUT = 10.0
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    ticks = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / ticks, steal / ticks


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in process group `pgid` (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # after "pid (comm)": state ppid pgrp session ... utime(14) stime(15), 1-based in proc(5)
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


class RunningServer:
    def __init__(self, server: Server, env: dict[str, str], log_path: Path) -> None:
        self.server = server
        self.port = free_port()
        self.log_path = log_path
        self.argv = [a.format(python=PYTHON, port=self.port) for a in server.argv]
        self.display = server.display.format(port=self.port)
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env={**env, **server.env}, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, path: str, headers: dict[str, str], timeout: float = READY_TIMEOUT) -> None:
        """Until `path` answers 200 (the app is imported and the database reachable)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.server.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                if response.status == 200:
                    return
                last = f"{response.status} {body[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            finally:
                conn.close()
            time.sleep(0.2)
        raise RuntimeError(f"{self.server.name} not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.pid)

    def stop(self) -> None:
        stop_process_group(self.proc, timeout=STOP_TIMEOUT)
        self._log.close()


@contextmanager
def qclusters(names: list[str], log_dir: Path, *, env: dict[str, str] | None = None,
              tag: str = "") -> Iterator[list[subprocess.Popen]]:
    """One `manage.py qcluster` process per name ("main", or an ALT_CLUSTERS name such as
    "tts"), logging to `log_dir`; each stopped with SIGTERM to its main pid (a signal to the
    whole group can hang django-q2's shutdown), then its group killed."""
    procs, logs = [], []
    try:
        for i, name in enumerate(names):
            proc_env = {**(env or os.environ), "PYTHONUNBUFFERED": "1"}
            proc_env.pop("Q_CLUSTER_NAME", None)
            if name != "main":
                proc_env["Q_CLUSTER_NAME"] = name
            log = open(log_dir / f"{name}-cluster{'-' + tag if tag else ''}-{i}.log", "wb")
            logs.append(log)
            procs.append(subprocess.Popen(
                [PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=proc_env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent))
        yield procs
    finally:
        for proc in procs:
            stop_process_group(proc, leader_only=True)
        for log in logs:
            log.close()
