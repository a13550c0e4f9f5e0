"""ASGI middleware that refuses oversized request bodies before Django reads them."""

import json
import tempfile

from django.conf import settings

from .errors import RequestTooLarge

_BODY = json.dumps(RequestTooLarge().body()).encode()
_REPLAY_CHUNK = 256 * 1024


class BodySizeLimitMiddleware:
    """413 JSON for bodies over MAX_REQUEST_BYTES, before the app sees the request.

    A declared Content-Length over the limit is refused without reading a byte. A chunked body
    (no Content-Length) is read here, counted as it arrives and refused past the limit, then
    handed on with its length declared: Django's WSGI handler reads exactly CONTENT_LENGTH bytes,
    so without one it would see an empty body. Up to FILE_UPLOAD_MAX_MEMORY_SIZE it is held in
    memory, beyond that in a temporary file.
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

        with tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE) as body:
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left before its body ended
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await self._reject(send)
                    return
                body.write(chunk)
                if not message.get("more_body", False):
                    break
            body.seek(0)
            headers = [(n, v) for n, v in scope.get("headers", []) if n != b"transfer-encoding"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(size).encode())]}
            done = False

            async def replay():
                nonlocal done
                if done:
                    return await receive()  # the body is out: what follows is the client leaving
                data = body.read(_REPLAY_CHUNK)
                done = body.tell() >= size
                return {"type": "http.request", "body": data, "more_body": not done}

            await self.app(scope, replay, send)

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
