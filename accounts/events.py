"""Push events to a user's websocket connections (one channel-layer group per user).

Events are hints: channels-redis drops messages past a channel's capacity, so clients re-read
over REST after a reconnect. Services call `notify_user` from `transaction.on_commit`.
"""

import logging
import uuid
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

logger = logging.getLogger(__name__)


def user_group(user_id: UUID | str) -> str:
    return f"user.{user_id}"


def token_group(token_id: UUID | str) -> str:
    """The sockets opened with one device token (closed when it is revoked)."""
    return f"token.{token_id}"


def sessions_group(user_id: UUID | str) -> str:
    """The user's sockets opened with a browser session (closed when their sessions end)."""
    return f"sessions.{user_id}"


def build_event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "id": str(uuid.uuid4()), "data": data, "at": timezone.now().isoformat()}


async def anotify_user(user_id: UUID | str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    event = build_event(event_type, data)
    layer = get_channel_layer()
    try:
        await layer.group_send(user_group(user_id), {"type": "user.event", "event": event})
    except Exception:  # a push is a hint; losing it must not fail the write that caused it
        logger.warning("could not push %s to user %s", event_type, user_id, exc_info=True)
    return event


def notify_user(user_id: UUID | str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return async_to_sync(anotify_user)(user_id, event_type, data)


async def aclose_sockets(groups: list[str]) -> None:
    layer = get_channel_layer()
    for group in groups:
        try:
            await layer.group_send(group, {"type": "session.revoked"})
        except Exception:
            logger.warning("could not close sockets of %s", group, exc_info=True)


def close_sockets(groups: list[str]) -> None:
    """Close (4401) every socket in these groups: their credentials were revoked."""
    async_to_sync(aclose_sockets)(groups)
