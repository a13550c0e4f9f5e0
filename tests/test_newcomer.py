"""What a new user meets first: the API root, the reset page a mail links to, `make run`'s
local defaults reaching every manage.py command."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import mail
from django.urls import URLPattern, URLResolver
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent


def _named_routes(patterns):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _named_routes(entry.url_patterns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name


@pytest.mark.django_db
def test_the_api_root_lists_every_endpoint():
    from config.urls import api_v1

    links = APIClient().get("/api/v1/", HTTP_ACCEPT="application/json").json()
    expected = {name.replace("-", "_") for name in _named_routes(api_v1)} - {"api_root"}
    assert expected <= set(links)
    assert {"voice_list", "voice_clone", "voice_detail", "auth_login", "user_me"} <= set(links)
    assert links["voice_detail"].endswith("/api/v1/tts/voices/{voice_id}")
    assert links["events"].startswith("ws://")


@pytest.mark.django_db
def test_the_default_reset_link_opens_a_page_that_sets_the_password(user, settings):
    from accounts.services import password_reset_send

    password_reset_send(user_id=user.pk)
    link = re.search(r"(http\S+reset-password\S+)", mail.outbox[-1].body).group(1)
    assert link.startswith(f"http://localhost:{settings.PORT}/reset-password?")
    from django.test import Client

    browser = Client()
    path = link.split(f":{settings.PORT}", 1)[1]
    page = browser.get(path)
    assert page.status_code == 200 and b"<form" in page.content
    uid, token = re.search(r"uid=([^&]+)&token=(\S+)", link).groups()

    mismatch = browser.post("/reset-password", {"uid": uid, "token": token, "new_password": "a-new-long-passphrase",
                                                "new_password_again": "something else"})
    assert mismatch.status_code == 400 and b"differ" in mismatch.content
    done = browser.post("/reset-password", {"uid": uid, "token": token, "new_password": "a-new-long-passphrase",
                                            "new_password_again": "a-new-long-passphrase"})
    assert done.status_code == 200 and b"password is changed" in done.content
    assert User.objects.get(pk=user.pk).check_password("a-new-long-passphrase")
    again = browser.post("/reset-password", {"uid": uid, "token": token, "new_password": "a-third-long-passphrase",
                                             "new_password_again": "a-third-long-passphrase"})
    assert again.status_code == 400  # the link is spent


def _clean_env(**extra: str) -> dict[str, str]:
    """What a new user's shell has: none of the test settings pytest puts in the environment."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return {**keep, **extra}


@pytest.mark.slow
def test_make_run_then_createsuperuser_as_printed_works_in_a_fresh_checkout(tmp_path):
    """A copy of the tracked files (what a clone has), `make run`'s command, then the
    createsuperuser line its banner prints, in a shell without any project variable."""
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    port = str(_free_port())
    run = subprocess.Popen([sys.executable, "-m", "config.run"], cwd=checkout, env=_clean_env(PORT=port),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    banner = ""
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl+C" not in banner and time.monotonic() < deadline and run.poll() is None:
            banner += run.stdout.readline()
        assert "Press Ctrl+C" in banner, banner
    finally:
        run.send_signal(2)  # Ctrl+C
        try:
            run.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, 9)
    printed = re.search(r"\(create a login: (\S+) (manage\.py createsuperuser)\)", banner)
    assert printed, banner
    assert (checkout / ".env").is_file() and "SECRET_KEY=" in (checkout / ".env").read_text()

    created = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--email", "admin@example.com"],
        cwd=checkout, env=_clean_env(DJANGO_SUPERUSER_PASSWORD="a-long-admin-passphrase"),
        capture_output=True, text=True, timeout=120,
    )
    assert created.returncode == 0, created.stderr[-2000:]
    check = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from accounts.models import User; print(User.objects.get(email='admin@example.com').is_superuser)"],
        cwd=checkout, env=_clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert check.stdout.strip().endswith("True"), check.stderr[-2000:]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
