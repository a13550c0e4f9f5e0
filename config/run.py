"""The run command (`make run`): the whole service in one terminal.

Starts the embedded Redis when REDIS_URL is unset, migrates, then the ASGI server (HTTP +
websockets) and both django-q2 clusters (main and tts), prints the URLs and waits. Ctrl+C (or
any child dying) stops everything: each child gets SIGTERM on its main pid only (a signal to a
qcluster's whole process group can hang it), then SIGKILL after a grace period.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from config.serving import uvicorn_proxy_args, uvicorn_ws_args

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 15
# Management commands run after migrate on every start (idempotent).
STARTUP_COMMANDS: list[tuple[str, ...]] = [("sync_default_voices",), ("reconcile_pending_voices",)]


ENV_FILE = ROOT / ".env"


def ensure_env_file(path: Path = ENV_FILE) -> bool:
    """Write the local defaults once (DEBUG on, a random SECRET_KEY). Settings read this file, so
    every `manage.py` command in the checkout (createsuperuser, shell, ...) runs like `make run`.
    Returns True when it wrote the file; an existing file is never touched."""
    text = (
        "# Local defaults for this checkout, written once by `make run` and read by config/settings.py.\n"
        "# Environment variables override them (a deployment sets DEBUG=false). Never commit this file.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    )
    try:
        # Created readable by its owner only, and never over an existing file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return True


def _env() -> dict[str, str]:
    import environ

    if ensure_env_file():
        print(f"wrote local defaults to {ENV_FILE} (DEBUG=true, a random SECRET_KEY)", flush=True)
    environ.Env.read_env(str(ENV_FILE))  # as the settings do: real environment variables win
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def _spawn(name: str, args: list[str], env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    # Own session: the terminal's Ctrl+C reaches only this script, which then stops children in order.
    return name, subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)


def _stop(procs: list[tuple[str, subprocess.Popen]]) -> None:
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the main pid only
    deadline = time.monotonic() + GRACE_SECONDS
    for name, proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {GRACE_SECONDS}s; killing it", flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def spawn_clusters(env: dict[str, str]) -> list[tuple[str, subprocess.Popen]]:
    """Both django-q2 clusters: main, and tts (Q_CLUSTER_NAME picks its settings)."""
    env = {k: v for k, v in env.items() if k != "Q_CLUSTER_NAME"}
    return [
        _spawn("worker-main", [sys.executable, "manage.py", "qcluster"], env),
        _spawn("worker-tts", [sys.executable, "manage.py", "qcluster"], {**env, "Q_CLUSTER_NAME": "tts"}),
    ]


def supervise(children: list[tuple[str, subprocess.Popen]]) -> int:
    """Wait until a child exits (1) or SIGTERM/SIGINT arrives (KeyboardInterrupt for the caller).
    Also SIGINT: a parent shell may have started us with it ignored."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    while True:
        for name, proc in children:
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping", flush=True)
                return 1
        time.sleep(0.5)


def main() -> int:
    env = _env()
    host = env.get("HOST", "127.0.0.1")
    port = env.get("PORT", "8000")
    var_dir = Path(env.get("VAR_DIR", ROOT / "var"))
    children: list[tuple[str, subprocess.Popen]] = []
    services: list[tuple[str, subprocess.Popen]] = []  # stopped after the children that use them

    if not env.get("REDIS_URL"):
        from config import embedded_redis

        redis_proc = embedded_redis.start(var_dir)
        env["REDIS_URL"] = embedded_redis.url_for(var_dir)
        if redis_proc is not None:
            services.append(("redis", redis_proc))
        print(f"embedded Redis on {env['REDIS_URL']}", flush=True)

    try:
        _manage(env, "migrate", "--noinput")
        _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        for command in STARTUP_COMMANDS:
            _manage(env, *command)

        web_env = dict(env)
        if env.get("DATABASE_URL", "").startswith(("postgres", "pgsql")):
            web_env.setdefault("DB_POOL", "true")  # pooled connections in the web process only
        children += [
            _spawn("web", [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host,
                           "--port", port, "--no-access-log", *uvicorn_proxy_args(env), *uvicorn_ws_args()],
                   web_env),
            *spawn_clusters(env),
        ]
        base = f"http://{host}:{port}"
        print(
            "\nStorybook voice service is starting:\n"
            f"  API root   {base}/api/v1/\n"
            f"  API docs   {base}/api/docs/\n"
            f"  Admin      {base}/admin/   (create a login: .venv/bin/python manage.py createsuperuser)\n"
            f"  Websocket  ws://{host}:{port}/ws/events/\n"
            "Press Ctrl+C to stop.\n",
            flush=True,
        )
        return supervise(children)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        _stop(children)
        _stop(services)


if __name__ == "__main__":
    sys.exit(main())
