import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent


_started_embedded_redis = False


def pytest_sessionstart(session) -> None:
    # Embedded default: no REDIS_URL means the run command's embedded Redis; start it for tests.
    global _started_embedded_redis
    if not os.environ.get("REDIS_URL"):
        from django.conf import settings

        from config import embedded_redis

        if not embedded_redis.is_up(Path(settings.VAR_DIR)):
            embedded_redis.start(Path(settings.VAR_DIR), daemonize=True)
            _started_embedded_redis = True


def pytest_sessionfinish(session, exitstatus) -> None:
    if _started_embedded_redis:
        from django.conf import settings

        from config import embedded_redis

        embedded_redis.stop(Path(settings.VAR_DIR))


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Each test gets an empty Redis database and its own media folder."""
    from django_redis import get_redis_connection

    settings.MEDIA_ROOT = tmp_path / "media"
    get_redis_connection("default").flushdb()
    yield


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def api_client():
    return APIClient()


def token_client(user, device_name: str = "test device") -> APIClient:
    from accounts.services import device_token_create

    _, key = device_token_create(user=user, device_name=device_name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    client.token_key = key
    return client


@pytest.fixture
def auth_client(user):
    return token_client(user)
from tests.fakes.fixtures import *  # noqa: F401,F403
from tests.browser import browser, browser_server  # noqa: F401,E402  (real-browser fixtures, for any test)
