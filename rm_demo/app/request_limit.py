"""A cap on request bodies, checked before gradio reads them.

Gradio parses a whole request body (JSON) before any handler can refuse its content, and what it parsed
stays referenced by the session for a while: twenty raw requests of 20 MB each (an id, a Compare text)
held 16-19 MB apiece. Every value the app takes fits in far less (public: 10,000 characters a text, 50
answers to rank), so a larger body is answered 413 before it is read. Uploads have their own cap
(gradio's `max_file_size`) and are not counted here.
"""

from __future__ import annotations

import json

UPLOAD_PATH_SUFFIX = "/upload"


class BodyTooLarge(Exception):
    pass


class RequestBodyLimit:
    """ASGI middleware: a body over `max_bytes` (by Content-Length, or counted as it streams) gets 413."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.max_bytes or scope.get("path", "").endswith(UPLOAD_PATH_SUFFIX):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps(
            {"error": f"request body over {self.max_bytes / 1e6:g} MB: this app takes no value that large"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def middleware(max_mb: float) -> list:
    """What `launch(app_kwargs={"middleware": ...})` takes: the cap, or nothing when it is 0."""
    from starlette.middleware import Middleware

    return [Middleware(RequestBodyLimit, max_bytes=int(max_mb * 1e6))] if max_mb > 0 else []
