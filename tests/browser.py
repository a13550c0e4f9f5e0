"""Headless Chromium (Debian's package, never a browser download) driven by Playwright, for the
tests that check the service in a real browser; screenshots go to `var/test-artifacts/`
(`TEST_ARTIFACTS_DIR`)."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.live import running_asgi_server

CHROMIUM = "/usr/bin/chromium"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR") or settings.VAR_DIR / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        # CI installs Debian's chromium; there a missing browser is a failure, not a skip.
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse
    # ORM calls here; nothing else runs in this thread meanwhile (Playwright's own advice for Django).
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()
    if saved is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def browser_server(django_db_setup):
    """A live server with the static files collected (the admin's CSS, the docs' scripts), as
    `make run` and a release step do; yields its port."""
    call_command("collectstatic", "--noinput", verbosity=0)
    with running_asgi_server() as port:
        yield port
