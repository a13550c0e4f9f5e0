"""Benchmark fixtures, loaded through Django with the benchmark's settings.

    python -m tests.benchmarks.load --users 50 --out fixtures.json [--count-queries]

(the runner calls it with the bench environment; run by hand, export the same DATABASE_URL and
REDIS_URL first). `load_fixtures(n_users)` creates the users, each with one knox device token,
then runs every registered hook; it returns `[(user_id, token_key), ...]` (`load_context` returns
the whole LoadContext, hooks' extras included).

Adding data for a new scenario (e.g. voices): write a hook and register it, here or in a
module listed in HOOK_MODULES (imported before loading):

    from tests.benchmarks.load import register_hook

    @register_hook
    def load_voices(ctx: LoadContext) -> None:
        Voice.objects.bulk_create(..., batch_size=5000)   # ctx.users, ctx.tokens, ctx.options
        ctx.extra["voice_ids"] = [...]                    # ends up in the fixtures JSON

Hooks run in order of registration, after the users exist; `ctx.options` holds the loader's
command-line `--opt key=value` pairs (the runner passes them through from `--load-opt`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Dotted modules whose import registers more hooks (kept empty until a scenario needs data).
HOOK_MODULES: list[str] = ["tests.benchmarks.load_voices", "tests.benchmarks.load_books"]

BENCH_PASSWORD = "bench-password-not-secret"
EMAIL_TEMPLATE = "bench-user-{:06d}@bench.invalid"


@dataclass
class LoadContext:
    n_users: int
    users: list[Any] = field(default_factory=list)  # accounts.models.User, in creation order
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (user_id, token_key)
    options: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-able, written to the fixtures file


Hook = Callable[[LoadContext], None]
_hooks: list[Hook] = []


def register_hook(hook: Hook) -> Hook:
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def _setup_django() -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()


def create_users(n_users: int) -> list[Any]:
    """n users in one bulk insert; one PBKDF2 hash is computed and shared (a hash per user would
    cost ~0.5 s each and measure nothing). Same hash format as `create_user` would store."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import User

    password = make_password(BENCH_PASSWORD)
    users = [
        User(email=EMAIL_TEMPLATE.format(i), password=password, display_name=f"Bench {i}")
        for i in range(n_users)
    ]
    return User.objects.bulk_create(users, batch_size=1000)


def create_tokens(users: list[Any]) -> list[tuple[str, str]]:
    from accounts.services import device_token_create

    tokens = []
    for user in users:
        _, key = device_token_create(user=user, device_name="bench device")
        tokens.append((str(user.pk), key))
    return tokens


def load_fixtures(n_users: int, options: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Users with tokens, then the hooks: `[(user_id, token_key), ...]`."""
    return load_context(n_users, options).tokens


def load_context(n_users: int, options: dict[str, str] | None = None) -> LoadContext:
    """`load_fixtures`, returning the whole context (hooks' `extra` included)."""
    for module in HOOK_MODULES:
        importlib.import_module(module)
    ctx = LoadContext(n_users=n_users, options=dict(options or {}))
    ctx.users = create_users(n_users)
    ctx.tokens = create_tokens(ctx.users)
    for hook in _hooks:
        started = time.perf_counter()
        hook(ctx)
        print(f"  loader hook {hook.__name__}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return ctx


CACHED_PATHS = ("/api/v1/user/me", "/api/v1/tts/voices?page_size=100", "/api/v1/storybook/books?page_size=50",
                "/api/v1/storybook/books/{detail_book}")


def count_cached_queries(token_key: str, path: str) -> list[str]:
    """SQL run by one cached GET of `path` (after a warming GET), in this process."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient(HTTP_HOST="127.0.0.1")  # ALLOWED_HOSTS has no "testserver" here
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    warm = client.get(path)
    if warm.status_code != 200:
        raise SystemExit(f"warming GET {path}: {warm.status_code} {warm.content[:200]!r}")
    with CaptureQueriesContext(connection) as captured:
        hit = client.get(path)
    if hit.status_code != 200:
        raise SystemExit(f"cached GET {path}: {hit.status_code} {hit.content[:200]!r}")
    return [q["sql"] for q in captured.captured_queries]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--out", required=True, help="where to write the fixtures JSON")
    parser.add_argument("--count-queries", action="store_true", help="also count SQL on cached hits of CACHED_PATHS")
    parser.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="passed to hooks")
    args = parser.parse_args(argv)
    options = dict(o.split("=", 1) for o in args.opt)

    _setup_django()
    started = time.perf_counter()
    ctx = load_context(args.users, options)
    result: dict[str, Any] = {
        "tokens": ctx.tokens,
        "extra": ctx.extra,
        "load_seconds": round(time.perf_counter() - started, 2),
    }
    if args.count_queries:
        user_id, key = ctx.tokens[0]
        fill = {"detail_book": ctx.extra.get("detail_books", {}).get(str(user_id), "")}
        result["cached_queries"] = {path: count_cached_queries(key, path.format(**fill)) for path in CACHED_PATHS}
    with open(args.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    # Run the importable module, not this `__main__` copy: the hook modules register with
    # `tests.benchmarks.load`, and a hook registered there is invisible to `__main__`.
    from tests.benchmarks.load import main as load_main

    sys.exit(load_main())
