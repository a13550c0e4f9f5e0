"""The websocket event stream over the real channel layer (channels-redis)."""

import os
import subprocess
import sys
import textwrap

import pytest
from channels.db import database_sync_to_async as sync_to_async  # closes its DB connections
from channels.testing import WebsocketCommunicator

from accounts.events import notify_user
from accounts.services import device_token_create
from config.asgi import application
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost:8000")


@sync_to_async
def make_user_and_key(device: str = "phone"):
    user = UserFactory()
    _, key = device_token_create(user=user, device_name=device)
    return user, key


@sync_to_async
def session_cookie(user) -> bytes:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def expect_close(communicator: WebsocketCommunicator, code: int, timeout: float = 3) -> None:
    message = await communicator.receive_output(timeout)
    assert message == {"type": "websocket.close", "code": code}


async def expect_hello(communicator: WebsocketCommunicator, user) -> dict:
    hello = await communicator.receive_json_from(timeout=3)
    assert hello["type"] == "hello"
    assert hello["data"] == {"user_id": str(user.pk)}
    assert hello["id"] and hello["at"]
    return hello


@pytest.mark.smoke
async def test_token_subprotocol_is_accepted_and_echoed():
    user, key = await make_user_and_key()
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key])
    connected, subprotocol = await communicator.connect()
    assert connected and subprotocol == "token"
    await expect_hello(communicator, user)
    await communicator.disconnect()


async def test_first_message_auth():
    user, key = await make_user_and_key()
    communicator = WebsocketCommunicator(application, "/ws/events/")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "auth", "token": key})
    await expect_hello(communicator, user)
    await communicator.disconnect()


async def test_session_cookie_with_allowed_origin():
    user, _ = await make_user_and_key()
    cookie = await session_cookie(user)
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect()
    assert connected
    await expect_hello(communicator, user)
    await communicator.disconnect()


async def test_session_cookie_without_origin_is_not_enough(settings):
    settings.WS_AUTH_TIMEOUT = 0.3
    user, _ = await make_user_and_key()
    cookie = await session_cookie(user)
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=[(b"cookie", cookie)])
    assert (await communicator.connect())[0]
    await expect_close(communicator, 4401)
    await communicator.disconnect()


async def test_bad_token_subprotocol_closes_4401():
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", "bogus"])
    connected, subprotocol = await communicator.connect()
    assert connected and subprotocol == "token"  # accepted first, so clients see the code
    await expect_close(communicator, 4401)
    await communicator.disconnect()


async def test_bad_first_message_closes_4401():
    communicator = WebsocketCommunicator(application, "/ws/events/")
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "auth", "token": "bogus"})
    await expect_close(communicator, 4401)
    await communicator.disconnect()


async def test_no_credentials_in_time_closes_4401(settings):
    settings.WS_AUTH_TIMEOUT = 0.3
    communicator = WebsocketCommunicator(application, "/ws/events/")
    assert (await communicator.connect())[0]
    await expect_close(communicator, 4401)
    await communicator.disconnect()


async def test_foreign_origin_is_refused_even_with_a_valid_token():
    _, key = await make_user_and_key()
    communicator = WebsocketCommunicator(
        application, "/ws/events/", subprotocols=["token", key], headers=[(b"origin", b"https://evil.example")]
    )
    assert (await communicator.connect())[0]
    await expect_close(communicator, 4403)
    await communicator.disconnect()


async def test_token_client_with_allowed_origin_is_accepted():
    user, key = await make_user_and_key()
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key], headers=[ORIGIN])
    assert (await communicator.connect())[0]
    await expect_hello(communicator, user)
    await communicator.disconnect()


async def test_notify_user_reaches_only_that_users_sockets():
    alice, alice_key = await make_user_and_key("alice phone")
    _, alice_key2 = await sync_to_async(device_token_create)(user=alice, device_name="alice tablet")
    bob, bob_key = await make_user_and_key("bob phone")
    sockets = {}
    for name, key in (("alice1", alice_key), ("alice2", alice_key2), ("bob", bob_key)):
        sockets[name] = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key])
        assert (await sockets[name].connect())[0]
        await sockets[name].receive_json_from(timeout=3)  # hello

    sent = await sync_to_async(notify_user)(alice.pk, "voice.completed", {"voice_id": "v1"})
    for name in ("alice1", "alice2"):
        event = await sockets[name].receive_json_from(timeout=3)
        assert event == sent
        assert event["type"] == "voice.completed" and event["data"] == {"voice_id": "v1"}
    assert await sockets["bob"].receive_nothing(timeout=0.3)
    for communicator in sockets.values():
        await communicator.disconnect()


async def test_notify_user_from_a_separate_process():
    user, key = await make_user_and_key()
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key])
    assert (await communicator.connect())[0]
    await communicator.receive_json_from(timeout=3)

    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from accounts.events import notify_user
        notify_user("{user.pk}", "tts.job.succeeded", {{"job_id": "j1"}})
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    proc = await sync_to_async(subprocess.run)([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    event = await communicator.receive_json_from(timeout=5)
    assert event["type"] == "tts.job.succeeded" and event["data"] == {"job_id": "j1"}
    await communicator.disconnect()


async def test_session_cookie_with_a_foreign_origin_is_refused():
    user, _ = await make_user_and_key()
    cookie = await session_cookie(user)
    communicator = WebsocketCommunicator(
        application, "/ws/events/", headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)]
    )
    assert (await communicator.connect())[0]
    await expect_close(communicator, 4403)
    await communicator.disconnect()


@sync_to_async
def revoke(user, key: str) -> None:
    from accounts.models import DeviceToken
    from accounts.services import device_token_revoke

    token = DeviceToken.objects.get(token_key=key[:15])
    device_token_revoke(user=user, token_id=token.pk)


async def test_revoking_a_token_closes_its_sockets_only():
    user, phone_key = await make_user_and_key("phone")
    _, tablet_key = await sync_to_async(device_token_create)(user=user, device_name="tablet")
    phone = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", phone_key])
    tablet = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", tablet_key])
    for socket in (phone, tablet):
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=3)
    await revoke(user, phone_key)
    await expect_close(phone, 4401)
    assert await tablet.receive_nothing(timeout=0.3)
    sent = await sync_to_async(notify_user)(user.pk, "voice.completed", {"voice_id": "v"})
    assert await tablet.receive_json_from(timeout=3) == sent
    for socket in (phone, tablet):
        await socket.disconnect()


async def test_deleting_the_account_closes_every_socket():
    from accounts.services import user_deactivate

    user, key = await make_user_and_key()
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key])
    assert (await communicator.connect())[0]
    await communicator.receive_json_from(timeout=3)
    await sync_to_async(user_deactivate)(user=user)
    await expect_close(communicator, 4401)
    await communicator.disconnect()
