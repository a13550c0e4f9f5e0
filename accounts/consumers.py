"""The user's event stream: `/ws/events/`.

Accept first (echoing the `token` subprotocol when offered), then authenticate, so a client sees
the close code 4401 instead of a failed handshake. Credentials: the subprotocols
["token", "<key>"], a first message {"type": "auth", "token": "<key>"} within WS_AUTH_TIMEOUT
seconds, or a session cookie (which needs an allowed Origin). Never a query-string token.
"""

import asyncio
import json
import logging
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.utils.crypto import constant_time_compare

from config.api.errors import NotFound

from .authentication import user_for_token_key
from .events import build_event, sessions_group, token_group, user_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_INTERNAL_ERROR = 1011  # e.g. the channel layer (Redis) is unreachable: retry later
CLOSE_POLICY_VIOLATION = 1008  # a client flooding the server with messages


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str, scope: dict | None = None) -> bool:
    """Same-origin (the request's own scheme and host, as Django's CSRF check treats it), or an
    exact scheme://host[:port] match of WS_ALLOWED_ORIGINS; `https://*.example.com` allows
    subdomains (the CSRF_TRUSTED_ORIGINS syntax)."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if scope is not None:
        host = _header(scope, b"host")
        own_scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
        if host and parts.scheme == own_scheme and parts.netloc.lower() == host.lower():
            return True
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


@database_sync_to_async
def _still_signed_in(user_id, token_id, session) -> bool:
    """Checked again once the socket is in its revocation group: a revocation that landed
    between the first check and joining the group would otherwise miss this socket."""
    from .models import DeviceToken, User

    if token_id is not None:
        return DeviceToken.objects.filter(pk=token_id, user_id=user_id, user__is_active=True).exists()
    session_hash = session.get(HASH_SESSION_KEY) if session is not None else None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return user is not None and bool(session_hash) and constant_time_compare(session_hash,
                                                                             user.get_session_auth_hash())


class EventStreamConsumer(AsyncWebsocketConsumer):
    user = None
    groups: tuple[str, ...] = ()
    _auth_timer: asyncio.Task | None = None
    _accepted = False
    _closed = False
    _window_start = 0.0
    _window_messages = 0

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            # Typically the channel layer (Redis) failing. Without this the connection would just
            # drop; a 1011 close tells the client to reconnect later.
            logger.warning("event stream failed; closing with %s", CLOSE_INTERNAL_ERROR, exc_info=True)
            await self._close_after_failure(receive, send)

    async def _close_after_failure(self, receive, send) -> None:
        if self._closed:
            return
        try:
            if not self._accepted:
                # The failure came before the handshake was answered: answer it, so the client
                # sees a close code rather than a refused handshake.
                message = await asyncio.wait_for(receive(), timeout=5)
                if message.get("type") != "websocket.connect":
                    return
                subprotocols = self.scope.get("subprotocols") or []
                await send({"type": "websocket.accept", "subprotocol": "token" if "token" in subprotocols else None})
            await send({"type": "websocket.close", "code": CLOSE_INTERNAL_ERROR})
        except Exception:  # the client is gone already
            pass

    async def accept(self, subprotocol=None, headers=None) -> None:
        await super().accept(subprotocol, headers)
        self._accepted = True

    async def close(self, code=None, reason=None) -> None:
        self._closed = True
        await super().close(code, reason)

    async def connect(self) -> None:
        subprotocols = self.scope.get("subprotocols") or []
        await self.accept(subprotocol="token" if "token" in subprotocols else None)

        origin = _header(self.scope, b"origin")
        if origin is not None and not origin_allowed(origin, self.scope):
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
            await self._authenticated(session_user, None, session=True)
            return

        # Wait for {"type": "auth", "token": ...}; closed with 4401 if it does not come in time.
        self._auth_timer = asyncio.ensure_future(self._auth_deadline())

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.WS_AUTH_TIMEOUT)
        if self.user is None:
            await self.close(code=CLOSE_UNAUTHORIZED)

    async def _authenticated(self, user, token, session: bool = False) -> None:
        self.user = user
        # The user's group carries events; the token's (or the user's sessions') group lets a
        # revocation close this socket.
        credential_group = token_group(token.pk) if token is not None else sessions_group(user.pk) if session else None
        self.groups = (user_group(user.pk),) + ((credential_group,) if credential_group else ())
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        session_store = self.scope.get("session") if session else None
        if not await _still_signed_in(user.pk, token.pk if token is not None else None, session_store):
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await self.send(text_data=json.dumps(build_event("hello", {"user_id": str(user.pk)})))

    def _flooding(self) -> bool:
        """More than WS_CLIENT_MESSAGES_MAX messages in WS_CLIENT_MESSAGES_WINDOW seconds: the
        stream is server -> client, so a client that keeps sending is closed, not served."""
        now = asyncio.get_running_loop().time()
        if now - self._window_start > settings.WS_CLIENT_MESSAGES_WINDOW:
            self._window_start, self._window_messages = now, 0
        self._window_messages += 1
        return self._window_messages > settings.WS_CLIENT_MESSAGES_MAX

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._flooding():
            if not self._closed:
                logger.warning("event stream client flooding; closing with %s", CLOSE_POLICY_VIOLATION)
                await self.close(code=CLOSE_POLICY_VIOLATION)
            return
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


async def websocket_not_found(scope, receive, send) -> None:
    """Any other websocket path: a clean refusal instead of a router error (HTTP 500)."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        # The server can send a real HTTP answer to the handshake: 404 with the API's error shape.
        body = json.dumps(NotFound("No such websocket endpoint.").body()).encode()
        await send({"type": "websocket.http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close"})  # before accept: the server refuses the handshake (403)
