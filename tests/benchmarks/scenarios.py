"""What the benchmark runs: the servers and the scenarios (add entries to SCENARIOS).

A scenario is one request shape sent to one server. Requests rotate over the loaded users'
tokens (request i uses token i mod n) unless `auth` is False. Ratios in the table are taken
against BASELINE at the same concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASELINE = "ping (ASGI)"
SERVE_PROCESSES = 2
FLOOR = f"ping (gunicorn -w {SERVE_PROCESSES}, floor)"
SERVED = ("user/me cached (make serve)", "voices cached (make serve)")
# The same reads on the design make serve replaced (Django's ASGI handler), side by side.
REPLACED = tuple(f"{name} [asgi handler]" for name in SERVED)


@dataclass(frozen=True)
class Server:
    name: str
    # {python}, {port} are filled in; the command runs from the project root.
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict, hash=False)  # on top of the bench env
    display: str = ""  # the command as it would be typed, for the report


SERVERS: dict[str, Server] = {
    "asgi": Server(
        name="asgi",
        argv=(
            "{python}", "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
            "--workers", "1", "--no-access-log", "--no-proxy-headers", "--loop", "uvloop", "--http", "httptools",
        ),
        env={"DB_POOL": "true"},
        display="uvicorn config.asgi:application --host 127.0.0.1 --port {port} --workers 1 --no-access-log --no-proxy-headers "
        "--loop uvloop --http httptools",
    ),
    # uvicorn's pure-Python stack, for comparison (optional scenario below).
    "asgi-std": Server(
        name="asgi-std",
        argv=(
            "{python}", "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
            "--workers", "1", "--no-access-log", "--no-proxy-headers", "--loop", "asyncio", "--http", "h11",
        ),
        env={"DB_POOL": "true"},
        display="uvicorn config.asgi:application --host 127.0.0.1 --port {port} --workers 1 --no-access-log --no-proxy-headers "
        "--loop asyncio --http h11",
    ),
    "wsgi": Server(
        name="wsgi",
        argv=(
            "{python}", "-m", "gunicorn", "config.wsgi:application", "-b", "127.0.0.1:{port}",
            "-w", "1", "--threads", "1",
        ),
        env={"DB_POOL": "false"},
        display="gunicorn config.wsgi:application -b 127.0.0.1:{port} -w 1 --threads 1  (sync worker)",
    ),
    # The serving table: `make serve` against the WSGI floor with the same number of processes.
    "serve": Server(
        name="serve",
        # The bench env turns pooling off for the other servers; make serve picks its own default.
        argv=("env", "-u", "DB_POOL", "HOST=127.0.0.1", "PORT={port}", f"WEB_CONCURRENCY={SERVE_PROCESSES}",
              "{python}", "-m", "config.serve"),
        display=f"make serve  (HOST=127.0.0.1 PORT={{port}} WEB_CONCURRENCY={SERVE_PROCESSES})",
    ),
    # The design make serve replaced: the same uvicorn processes with Django's own ASGI handler.
    "serve-asgi-handler": Server(
        name="serve-asgi-handler",
        argv=("{python}", "-m", "uvicorn", "config.asgi:django_handler_application", "--host", "127.0.0.1",
              "--port", "{port}", "--workers", str(SERVE_PROCESSES), "--no-access-log", "--loop", "uvloop",
              "--http", "httptools", "--no-proxy-headers"),
        env={"DB_POOL": "true"},
        display=f"uvicorn config.asgi:django_handler_application --workers {SERVE_PROCESSES} (make serve's flags, "
        "Django's ASGI handler)",
    ),
    # A sync worker keeps its connection (CONN_MAX_AGE), as a gunicorn deployment would: a new
    # Postgres backend per request would make the floor slower than WSGI is.
    "wsgi-floor": Server(
        name="wsgi-floor",
        argv=("{python}", "-m", "gunicorn", "config.wsgi:application", "-b", "127.0.0.1:{port}",
              "-w", str(SERVE_PROCESSES), "--threads", "1"),
        env={"DB_POOL": "false", "CONN_MAX_AGE": "60"},
        display=f"gunicorn config.wsgi:application -b 127.0.0.1:{{port}} -w {SERVE_PROCESSES} --threads 1, "
        "CONN_MAX_AGE=60  (the floor)",
    ),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str  # a key of SERVERS
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    body: bytes = b""
    auth: bool = True  # send `Authorization: Token <key>`, rotating over the users
    prime: bool = False  # warm-up sends at least one request per token first (fills per-user caches)
    expect_status: int = 200
    default: bool = True  # False: runs only when picked with --only or --all


SCENARIOS: list[Scenario] = [
    Scenario("ping (ASGI)", "asgi", "/api/v1/ping"),
    Scenario("user/me cached (ASGI)", "asgi", "/api/v1/user/me", prime=True),
    Scenario("user/me uncached (ASGI)", "asgi", "/api/v1/user/me", headers={"X-Cache-Bypass": "1"}),
    Scenario("voices cached (ASGI)", "asgi", "/api/v1/tts/voices?page_size=100", prime=True),
    Scenario("voices uncached (ASGI)", "asgi", "/api/v1/tts/voices?page_size=100", headers={"X-Cache-Bypass": "1"}),
    Scenario("books cached (ASGI)", "asgi", "/api/v1/storybook/books?page_size=50", prime=True),
    Scenario("books uncached (ASGI)", "asgi", "/api/v1/storybook/books?page_size=50", headers={"X-Cache-Bypass": "1"}),
    Scenario("book detail cached (ASGI)", "asgi", "/api/v1/storybook/books/{detail_book}", prime=True),
    Scenario("book detail uncached (ASGI)", "asgi", "/api/v1/storybook/books/{detail_book}",
             headers={"X-Cache-Bypass": "1"}),
    Scenario("ping (WSGI gunicorn)", "wsgi", "/api/v1/ping"),
    Scenario("ping (ASGI asyncio+h11)", "asgi-std", "/api/v1/ping", default=False),
    Scenario(FLOOR, "wsgi-floor", "/api/v1/ping"),
    Scenario("ping (make serve)", "serve", "/api/v1/ping"),
    Scenario(SERVED[0], "serve", "/api/v1/user/me", prime=True),
    Scenario(SERVED[1], "serve", "/api/v1/tts/voices?page_size=100", prime=True),
    Scenario(REPLACED[0], "serve-asgi-handler", "/api/v1/user/me", prime=True),
    Scenario(REPLACED[1], "serve-asgi-handler", "/api/v1/tts/voices?page_size=100", prime=True),
    # The same cached reads on the floor's server: how far the app itself is from the trivial endpoint.
    Scenario("user/me cached (gunicorn floor server)", "wsgi-floor", "/api/v1/user/me", prime=True, default=False),
    Scenario("voices cached (gunicorn floor server)", "wsgi-floor", "/api/v1/tts/voices?page_size=100", prime=True,
             default=False),
]
