import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session) -> None:
    # Embedded default: no REDIS_URL means the run command's embedded Redis; start it for tests.
    if not os.environ.get("REDIS_URL"):
        from django.conf import settings

        from config import embedded_redis

        embedded_redis.start(Path(settings.VAR_DIR), daemonize=True)


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
