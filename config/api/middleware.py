"""ASGI middleware that reads request bodies before Django sees them and refuses oversized ones."""

import json
import tempfile

from django.conf import settings

from .errors import RequestTooLarge

_BODY = json.dumps(RequestTooLarge().body()).encode()
_REPLAY_CHUNK = 256 * 1024


class BodySizeLimitMiddleware:
    """Reads every request body on the event loop before the app sees the request, and answers
    413 JSON to one over MAX_REQUEST_BYTES.

    A declared Content-Length over the limit is refused without reading a byte; a chunked body
    is counted as it arrives and refused once past the limit. Whole bodies are then handed on
    with their length declared, from memory up to FILE_UPLOAD_MAX_MEMORY_SIZE and from a
    temporary file beyond (as Django's ASGI handler keeps them). Reading here means a slow
    uploader costs a socket, never one of the WSGI handler's threads; a client that leaves
    mid-body never reaches a view (which would otherwise run on the part that arrived); and a
    chunked body reaches the WSGI handler, which reads exactly CONTENT_LENGTH bytes.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.MAX_REQUEST_BYTES
        length, chunked = None, False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = limit + 1
            elif name == b"transfer-encoding":
                chunked = True
        if length is not None and length > limit:
            await self._reject(send)
            return
        if not chunked and not length:
            await self.app(scope, receive, send)  # no body to read
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
            headers = [(n, v) for n, v in scope.get("headers", []) if n not in (b"transfer-encoding", b"content-length")]
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
