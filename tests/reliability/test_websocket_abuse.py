"""The event stream against clients that misbehave: a token in the query string, a flood of
messages, an oversized message. (A foreign Origin and a bad token: tests/accounts/test_events.py
and test_live_server.py.)"""

import asyncio

import pytest
import websockets
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.consumers import CLOSE_POLICY_VIOLATION, CLOSE_UNAUTHORIZED
from accounts.events import notify_user
from accounts.services import device_token_create
from config.asgi import application
from config.serving import WS_MAX_MESSAGE_BYTES
from tests.factories import UserFactory
from tests.live import running_asgi_server

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def user_and_key():
    user = UserFactory()
    return user, device_token_create(user=user, device_name="phone")[1]


async def test_a_token_in_the_query_string_does_not_authenticate(settings):
    settings.WS_AUTH_TIMEOUT = 0.5
    _, key = await user_and_key()
    for query in (f"token={key}", f"access_token={key}", f"auth={key}"):
        socket = WebsocketCommunicator(application, f"/ws/events/?{query}")
        assert (await socket.connect())[0]  # accepted, then waiting for credentials that never come
        assert await socket.receive_output(3) == {"type": "websocket.close", "code": CLOSE_UNAUTHORIZED}
        await socket.disconnect()


async def test_a_flooding_client_is_closed_and_others_keep_their_events(settings):
    settings.WS_CLIENT_MESSAGES_MAX = 20
    flooder, flooder_key = await user_and_key()
    other, other_key = await user_and_key()
    noisy = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", flooder_key])
    quiet = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", other_key])
    for socket in (noisy, quiet):
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from(timeout=3))["type"] == "hello"

    for i in range(200):
        await noisy.send_to(text_data=f'{{"type": "ping", "n": {i}}}')
    assert await noisy.receive_output(3) == {"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION}

    sent = await database_sync_to_async(notify_user)(other.pk, "voice.completed", {"voice_id": "v1"})
    assert await quiet.receive_json_from(timeout=3) == sent
    await noisy.disconnect()
    await quiet.disconnect()


async def test_a_few_messages_are_not_a_flood(settings):
    settings.WS_CLIENT_MESSAGES_MAX = 20
    user, key = await user_and_key()
    socket = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key])
    assert (await socket.connect())[0]
    await socket.receive_json_from(timeout=3)
    for _ in range(20):
        await socket.send_to(text_data='{"type": "ping"}')
    sent = await database_sync_to_async(notify_user)(user.pk, "voice.completed", {"voice_id": "v2"})
    assert await socket.receive_json_from(timeout=3) == sent  # still open, still served
    await socket.disconnect()


@pytest.mark.slow
async def test_the_server_refuses_an_oversized_message(django_db_setup):
    _, key = await user_and_key()
    with running_asgi_server() as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key],
                                      max_size=None) as socket:
            assert '"hello"' in await asyncio.wait_for(socket.recv(), 10)
            await socket.send("x" * (WS_MAX_MESSAGE_BYTES + 1))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
        assert closed.value.rcvd.code == 1009  # message too big
        # A fresh connection is served as before.
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key]) as again:
            assert '"hello"' in await asyncio.wait_for(again.recv(), 10)
