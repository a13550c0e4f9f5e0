"""ASGI middleware that refuses oversized request bodies before Django reads them."""

import json

from django.conf import settings

from .errors import RequestTooLarge

_BODY = json.dumps(RequestTooLarge().body()).encode()


class BodySizeLimitMiddleware:
    """413 JSON for bodies over MAX_REQUEST_BYTES.

    A declared Content-Length over the limit is refused without reading a byte. A chunked body
    is counted as it arrives; past the limit the app is told the client left (Django then drops
    the request) and the 413 is sent instead of anything the app produced.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.MAX_REQUEST_BYTES
        length = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = limit + 1
        if length is not None:
            if length > limit:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return

        received = 0
        exceeded = False

        async def counting_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not exceeded:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)
        if exceeded:
            await self._reject(send)

    async def _reject(self, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_BODY)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})
