"""An ASGI guard that refuses request bodies over a size cap before they are read whole."""

from __future__ import annotations

import json


class BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes the cap."""


class BodyLimit:
    """Answer 413 to bodies over `max_bytes`: at once when Content-Length says so, and as soon
    as a streamed (chunked) body passes the cap, so no request can make the worker buffer more.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                return await _error(send, 400, "Content-Length is not a number")
            if length > self.max_bytes:
                return await _error(send, 413, self._too_large(length))

        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _error(send, 413, self._too_large(seen))

    def _too_large(self, size: int) -> str:
        return (
            f"request body is {size:,} bytes or more, over the {self.max_bytes:,}-byte cap; "
            f"send a smaller image (or start the server with a larger --max-body-mb)"
        )


async def _error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
