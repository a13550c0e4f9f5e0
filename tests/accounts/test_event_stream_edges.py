"""Websocket handshakes on odd paths, with the channel layer down, and from same-origin pages."""

import asyncio
import json

import pytest
import websockets
from channels.db import database_sync_to_async as sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import device_token_create
from config.asgi import application
from tests.factories import UserFactory
from tests.live import running_asgi_server

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


@sync_to_async
def user_and_key():
    user = UserFactory()
    return user, device_token_create(user=user, device_name="phone")[1]


@pytest.mark.parametrize("path", ["/ws/events", "/ws/nope/", "/", "/api/v1/"])
async def test_unknown_websocket_paths_are_refused_cleanly(path):
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect()
    assert not connected  # refused at the handshake, not a router exception
    await communicator.disconnect()


async def test_a_layer_failure_closes_with_1011(settings):
    _, key = await user_and_key()
    settings.CHANNEL_LAYERS = {"default": {**settings.CHANNEL_LAYERS["default"],
                                           "CONFIG": {**settings.CHANNEL_LAYERS["default"]["CONFIG"],
                                                      "hosts": [DEAD_REDIS]}}}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key])
        connected, code = await communicator.connect(timeout=5)
        if connected:
            message = await communicator.receive_output(5)
            assert message == {"type": "websocket.close", "code": 1011}
        else:
            assert code == 1011
        await communicator.disconnect()
    finally:
        channel_layers.backends.clear()


@pytest.mark.parametrize("port_origin", ["same", "foreign"])
async def test_a_same_origin_page_on_any_port_is_accepted(port_origin):
    user, key = await user_and_key()
    host = b"localhost:9123"  # not in WS_ALLOWED_ORIGINS (which name :8000)
    origin = b"http://localhost:9123" if port_origin == "same" else b"http://localhost:9124"
    communicator = WebsocketCommunicator(application, "/ws/events/", subprotocols=["token", key],
                                         headers=[(b"host", host), (b"origin", origin)])
    assert (await communicator.connect())[0]
    if port_origin == "same":
        assert (await communicator.receive_json_from(timeout=3))["type"] == "hello"
    else:
        assert await communicator.receive_output(3) == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


@pytest.mark.slow
async def test_real_clients_see_clean_refusals_and_1011(django_db_setup):
    _, key = await user_and_key()
    with running_asgi_server() as port:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{port}/ws/events")
        assert refused.value.response.status_code == 404
        assert json.loads(refused.value.response.body)["error"]["code"] == "not_found"

        # Same origin on a port that is not 8000 (PORT changed): accepted without configuration.
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key],
                                      origin=f"http://127.0.0.1:{port}") as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "hello"

    with running_asgi_server(REDIS_URL=DEAD_REDIS) as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", subprotocols=["token", key]) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1011
