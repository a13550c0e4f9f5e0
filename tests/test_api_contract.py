"""The OpenAPI contract, checked the way clients meet it: schemathesis against the live schema,
and a Python client generated from it (openapi-python-client) talking to the running server."""

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from channels.db import database_sync_to_async  # noqa: F401  (closes connections in helpers)

from accounts.services import device_token_create
from tests.factories import UserFactory
from tests.live import running_asgi_server
from tests.voices.conftest import make_voice

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BIN = Path(sys.executable).parent
SEED = "20261201"
# Cases per operation and phase: the two runs over all 48 operations generate about 3000 cases.
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
# The least the non-destructive run must generate (the destructive one adds a few hundred more).
MIN_CASES = 2000
# Operations that end the caller's credentials run last, with a token of their own.
DESTRUCTIVE = ["--include-path", "/api/v1/auth/logout", "--include-path", "/api/v1/auth/logout-all",
               "--include-method", "DELETE"]
NON_DESTRUCTIVE = ["--exclude-path", "/api/v1/auth/logout", "--exclude-path", "/api/v1/auth/logout-all",
                   "--exclude-method", "DELETE"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    # Throttles stay on (their 429s are documented answers); the clone and tts (speech, books)
    # throttles are raised so the fuzzer reaches those endpoints' own validation: a throttled
    # 429 to a schema-violating request reads as "accepted".
    with running_asgi_server(THROTTLE_CLONE="100000/hour", THROTTLE_TTS="100000/min", THROTTLE_USER="100000/min",
                             THROTTLE_ANON="100000/min") as port:
        yield f"http://127.0.0.1:{port}"


def _token() -> str:
    user = UserFactory()
    make_voice(user, name="mine")
    return device_token_create(user=user, device_name="contract")[1]


def _schemathesis(base: str, key: str, selection: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{base}/api/schema/", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--seed", SEED, "--max-examples", MAX_EXAMPLES,
         "--workers", "1", "-H", f"Authorization: Token {key}", "--no-color",
         "--generation-database", "none", "--report", "json", "--report-json-path", str(tmp_path / "report.json"),
         *selection],
        capture_output=True, text=True, timeout=1200, cwd=tmp_path,
    )


@pytest.mark.parametrize("selection", [NON_DESTRUCTIVE, DESTRUCTIVE], ids=["operations", "sign-out-and-delete"])
def test_schemathesis_finds_nothing(server, selection, tmp_path):
    """All checks but positive_data_acceptance (a schema cannot say "a real audio file"):
    no server error, no undocumented status, no answer that disagrees with its schema."""
    run = _schemathesis(server, _token(), selection, tmp_path)
    summary = run.stdout[-3000:]
    print(summary)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-2000:]
    selected, total = map(int, re.search(r"Selected: (\d+)/(\d+)", summary).groups())
    tested = int(re.search(r"Tested: (\d+)", summary).group(1))
    generated = int(re.search(r"(\d+) generated", summary).group(1))
    assert tested == selected > 0, summary  # every selected operation was reached
    assert generated >= (MIN_CASES if selection is NON_DESTRUCTIVE else 1), summary
    if selection is DESTRUCTIVE:
        assert total == len(_operations(server)), summary


def _operations(base: str) -> list[tuple[str, str]]:
    paths = httpx.get(f"{base}/api/schema/?format=json").json()["paths"]
    return [(method, path) for path, item in paths.items() for method in item
            if method in ("get", "put", "post", "patch", "delete")]


def _generate_client(base: str, tmp_path: Path) -> Path:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(httpx.get(f"{base}/api/schema/?format=json").json()))
    config = tmp_path / "generator.yml"
    config.write_text("package_name_override: storybook_client\npost_hooks: []\n")
    out = tmp_path / "storybook_client"
    generated = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(schema), "--meta", "none",
         "--output-path", str(out), "--config", str(config), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return out


def test_a_generated_client_imports_whole_and_parses_real_answers(server, tmp_path, monkeypatch):
    _generate_client(server, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    package = importlib.import_module("storybook_client")
    modules = [name for _, name, _ in pkgutil.walk_packages(package.__path__, "storybook_client.")]
    for name in modules:
        importlib.import_module(name)  # every operation and model module imports
    assert sum(".api." in name for name in modules) >= 19

    from storybook_client import AuthenticatedClient
    from storybook_client.api.auth import token_list
    from storybook_client.api.user import me_get, ping
    from storybook_client.api.voices import voice_get, voice_list
    from storybook_client.models import PaginatedVoiceOutputList, UserMeOutput, VoiceDetail

    client = AuthenticatedClient(base_url=server, token=_token(), prefix="Token")
    me = me_get.sync(client=client)
    assert isinstance(me, UserMeOutput) and me.usage.voices == 1
    assert ping.sync(client=client).ok is True
    devices = token_list.sync(client=client)
    assert [d.device_name for d in devices] == ["contract"] and devices[0].current is True
    voices = voice_list.sync(client=client, page_size=100)
    assert isinstance(voices, PaginatedVoiceOutputList)
    mine = [v for v in voices.results if v.is_mine]
    assert [v.name for v in mine] == ["mine"]
    detail = voice_get.sync(client=client, voice_id=mine[0].id)
    assert isinstance(detail, VoiceDetail) and detail.samples == []

    # Errors parse too: an unknown voice is the documented 404 body.
    missing = voice_get.sync_detailed(client=client, voice_id="00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    assert missing.parsed.error.code.value == "voice_not_found"
