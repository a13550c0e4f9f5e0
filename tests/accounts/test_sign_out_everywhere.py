"""Logout-all, a password change or reset and account deletion end every token and every browser
session of the user, and close the sockets both kinds opened."""

import re

import pytest
from channels.db import database_sync_to_async as sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import device_token_create
from config.asgi import application
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost:8000")
NEW_PASSWORD = "a-brand-new-long-passphrase"


@sync_to_async
def browser_session(user) -> Client:
    """A browser that signed in through the browsable API's login form."""
    client = Client()
    response = client.post("/api-auth/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


@sync_to_async
def status_of(client, path: str = "/api/v1/user/me") -> int:
    return client.get(path).status_code


async def open_socket(**kwargs) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/events/", **kwargs)
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
    return communicator


async def expect_closed(communicator: WebsocketCommunicator) -> None:
    assert await communicator.receive_output(3) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


def _logout_all(user, token_client):
    assert token_client.post("/api/v1/auth/logout-all").status_code == 204


def _password_change(user, token_client):
    response = token_client.post("/api/v1/auth/password/change",
                                 {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204


def _password_reset(user, token_client):
    from accounts.services import password_reset_send

    password_reset_send(user_id=user.pk)
    body = mail.outbox[-1].body
    uid, token = re.search(r"uid: (\S+)", body).group(1), re.search(r"token: (\S+)", body).group(1)
    response = APIClient().post("/api/v1/auth/password/reset/confirm",
                                {"uid": uid, "token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 204


def _delete_account(user, token_client):
    assert token_client.delete("/api/v1/user/me").status_code == 202


@pytest.mark.parametrize("action", [_logout_all, _password_change, _password_reset, _delete_account],
                         ids=["logout-all", "password-change", "password-reset", "delete-account"])
async def test_every_session_token_and_socket_ends(action):
    user = await sync_to_async(UserFactory)()
    _, acting_key = await sync_to_async(device_token_create)(user=user, device_name="acting phone")
    _, other_key = await sync_to_async(device_token_create)(user=user, device_name="tablet")
    browser = await browser_session(user)
    assert await status_of(browser) == 200

    session_socket = await open_socket(headers=[ORIGIN, (b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode())])
    token_socket = await open_socket(subprotocols=["token", other_key])

    acting = APIClient()
    acting.credentials(HTTP_AUTHORIZATION=f"Token {acting_key}")
    await sync_to_async(action)(user, acting)

    # The browser session no longer reads or writes anything.
    assert await status_of(browser) in (401, 403)
    patched = await sync_to_async(browser.patch)("/api/v1/user/me", {"display_name": "Intruder"},
                                                 content_type="application/json")
    assert patched.status_code in (401, 403)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {other_key}")
    assert await status_of(other) == 401
    await expect_closed(session_socket)
    await expect_closed(token_socket)


async def test_password_change_keeps_the_callers_own_token():
    user = await sync_to_async(UserFactory)()
    _, key = await sync_to_async(device_token_create)(user=user, device_name="phone")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    await sync_to_async(_password_change)(user, client)
    assert await status_of(client) == 200


async def test_password_change_in_the_browser_keeps_that_session_only():
    user = await sync_to_async(UserFactory)()
    this_browser = await browser_session(user)
    other_browser = await browser_session(user)
    csrf = this_browser.cookies["csrftoken"].value
    response = await sync_to_async(this_browser.post)(
        "/api/v1/auth/password/change", {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 204
    assert await status_of(this_browser) == 200
    assert await status_of(other_browser) in (401, 403)


async def test_tokens_evicted_past_the_device_limit_close_their_sockets(settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    user = await sync_to_async(UserFactory)()
    _, oldest = await sync_to_async(device_token_create)(user=user, device_name="oldest")
    _, second = await sync_to_async(device_token_create)(user=user, device_name="second")
    oldest_socket = await open_socket(subprotocols=["token", oldest])
    second_socket = await open_socket(subprotocols=["token", second])

    await sync_to_async(device_token_create)(user=user, device_name="newest")
    await expect_closed(oldest_socket)
    assert await second_socket.receive_nothing(timeout=0.3)
    await second_socket.disconnect()


async def test_a_revocation_racing_the_connect_still_closes_the_socket(monkeypatch):
    """The token is revoked after the socket's credentials were checked but before it joined
    its revocation group: the re-check after joining closes it."""
    from accounts import consumers

    user = await sync_to_async(UserFactory)()
    token, key = await sync_to_async(device_token_create)(user=user, device_name="phone")
    original = consumers._user_and_token

    async def check_then_revoke(raw_key):
        found = await original(raw_key)
        await sync_to_async(token.delete)()  # the revocation lands in the gap
        return found

    monkeypatch.setattr(consumers, "_user_and_token", check_then_revoke)
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key])
    assert (await communicator.connect())[0]
    assert await communicator.receive_output(3) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


def test_a_stale_full_save_does_not_revive_ended_sessions():
    """An admin form saves the whole user it loaded earlier; the session generation bumped by a
    logout-all in between must stay bumped."""
    from accounts.models import User
    from accounts.services import user_sign_out_everywhere

    user = UserFactory()
    stale = User.objects.get(pk=user.pk)
    user_sign_out_everywhere(user=user)
    stale.display_name = "Edited in the admin"
    stale.save()
    fresh = User.objects.get(pk=user.pk)
    assert fresh.session_generation == user.session_generation == 1
    assert fresh.display_name == "Edited in the admin"


def test_password_whitespace_is_kept_as_typed():
    from accounts.models import User

    response = APIClient().post("/api/v1/auth/signup", {"email": "space@example.com", "password": "  spaced passphrase  "})
    assert response.status_code == 201
    assert User.objects.get(email="space@example.com").check_password("  spaced passphrase  ")
