"""The user's event stream: `/ws/events/`.

Accept first (echoing the `token` subprotocol when offered), then authenticate, so a client sees
the close code 4401 instead of a failed handshake. Credentials: the subprotocols
["token", "<key>"], a first message {"type": "auth", "token": "<key>"} within WS_AUTH_TIMEOUT
seconds, or a session cookie (which needs an allowed Origin). Never a query-string token.
"""

import asyncio
import json
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from .authentication import user_for_token_key
from .events import build_event, token_group, user_group


CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403


def origin_allowed(origin: str) -> bool:
    """Exact scheme://host[:port] matches of WS_ALLOWED_ORIGINS; `https://*.example.com` allows
    subdomains (the CSRF_TRUSTED_ORIGINS syntax)."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    for allowed in settings.WS_ALLOWED_ORIGINS:
        if origin == allowed:
            return True
        pattern = urlsplit(allowed)
        if pattern.scheme == parts.scheme and pattern.netloc.startswith("*."):
            suffix = pattern.netloc[1:]  # ".example.com"
            if parts.netloc.endswith(suffix) and len(parts.netloc) > len(suffix):
                return True
    return False


@database_sync_to_async
def _user_and_token(key: str):
    return user_for_token_key(key) or (None, None)


class EventStreamConsumer(AsyncWebsocketConsumer):
    user = None
    groups: tuple[str, ...] = ()
    _auth_timer: asyncio.Task | None = None

    def _origin(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name == b"origin":
                return value.decode("latin-1")
        return None

    async def connect(self) -> None:
        subprotocols = self.scope.get("subprotocols") or []
        await self.accept(subprotocol="token" if "token" in subprotocols else None)

        origin = self._origin()
        if origin is not None and not origin_allowed(origin):
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return

        if len(subprotocols) >= 2 and subprotocols[0] == "token":
            user, token = await _user_and_token(subprotocols[1])
            if user is None:
                await self.close(code=CLOSE_UNAUTHORIZED)
                return
            await self._authenticated(user, token)
            return

        session_user = self.scope.get("user")
        if origin is not None and session_user is not None and session_user.is_authenticated and session_user.is_active:
            await self._authenticated(session_user, None)
            return

        # Wait for {"type": "auth", "token": ...}; closed with 4401 if it does not come in time.
        self._auth_timer = asyncio.ensure_future(self._auth_deadline())

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.WS_AUTH_TIMEOUT)
        if self.user is None:
            await self.close(code=CLOSE_UNAUTHORIZED)

    async def _authenticated(self, user, token) -> None:
        self.user = user
        # The user's group carries events; the token's group lets a revocation close this socket.
        self.groups = (user_group(user.pk),) + ((token_group(token.pk),) if token is not None else ())
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send(text_data=json.dumps(build_event("hello", {"user_id": str(user.pk)})))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is not None:
            return  # the stream is server -> client; client messages after auth are ignored
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "auth" or not isinstance(message.get("token"), str):
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        user, token = await _user_and_token(message["token"])
        if user is None:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        if self._auth_timer:
            self._auth_timer.cancel()
        await self._authenticated(user, token)

    async def disconnect(self, code: int) -> None:
        if self._auth_timer:
            self._auth_timer.cancel()
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def user_event(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message["event"]))

    async def session_revoked(self, message: dict) -> None:
        await self.close(code=CLOSE_UNAUTHORIZED)
