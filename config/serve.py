"""`make serve`: the production web tier. HTTP and websockets on one port (HOST/PORT),
WEB_CONCURRENCY uvicorn worker processes (default 2); no reload, no embedded Redis, no queue
workers, no migrations (a release step runs `manage.py migrate` and `collectstatic` once, not
every web process on every host). Meant to run under a process manager, which gets uvicorn's own
pid: SIGTERM stops it gracefully."""

import os
import sys

from config.serving import uvicorn_proxy_args, uvicorn_ws_args


def serve_argv(env: dict[str, str]) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "config.asgi:application",
        "--host", env.get("HOST", "127.0.0.1"), "--port", env.get("PORT", "8000"),
        "--workers", str(int(env.get("WEB_CONCURRENCY") or 2)),
        # The project writes its own access line (ops.logs, with the request id).
        "--no-access-log", "--loop", "uvloop", "--http", "httptools",
        *uvicorn_proxy_args(env),
        *uvicorn_ws_args(),
    ]


def main() -> None:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if not env.get("REDIS_URL"):
        sys.exit("make serve needs REDIS_URL (the embedded Redis is for `make run` only)")
    if env.get("DATABASE_URL", "").startswith(("postgres", "pgsql")):
        env.setdefault("DB_POOL", "true")  # pooled connections in web processes only
    argv = serve_argv(env)
    os.execve(argv[0], argv, env)  # uvicorn becomes this process: the manager's signals reach it


if __name__ == "__main__":
    main()
