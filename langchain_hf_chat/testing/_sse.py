"""The SSE response: framing, keep-alives, client-disconnect detection and the stream faults (README §6)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response

from langchain_hf_chat.testing._state import ServerState
from langchain_hf_chat.testing._wire import SSE_HEADERS, SSEItem, frame, keep_alive
from langchain_hf_chat.testing.faults import BEFORE_FINAL, Fault

__all__ = ["SSEResponse"]

_MALFORMED = '{"index":1,"token":{"id":42,"text":" broken'


class SSEResponse(Response):
    """Streams :class:`SSEItem` events as ``text/event-stream``, damaged as the fault says.

    While the stream runs, a watcher waits for the client's ``http.disconnect``: the generation is then
    cancelled (the backend stops) and the server's disconnect counter goes up.
    """

    def __init__(
        self,
        items: AsyncIterator[SSEItem],
        *,
        state: ServerState,
        fault: Fault | None,
        headers: Mapping[str, str] | None = None,
        space: bool = True,
    ) -> None:
        super().__init__(b"", headers={"content-type": "text/event-stream", **SSE_HEADERS, **(headers or {})})
        # Starlette sets a content-length for the empty body; a stream must be chunked.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.items = items
        self.state = state
        self.fault = fault or Fault()
        self.space = space and not self.fault.data_no_space
        # Set once the body is complete or closed on purpose: a later http.disconnect is no client loss.
        self._ended = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the stream until it ends or the client goes away."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        pump = asyncio.ensure_future(self._pump(scope, send))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                pump.result()
                return
            if self._ended:
                await asyncio.gather(pump, return_exceptions=True)
                return
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            self.state.count_disconnect()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _pump(self, scope: Any, send: Any) -> None:
        fault = self.fault
        crlf = fault.crlf_endings
        interval = self.state.config.keep_alive_interval
        iterator = aiter(self.items)
        count = 0

        async def write(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        next_item: asyncio.Future[SSEItem] | None = None
        try:
            while True:
                next_item = asyncio.ensure_future(anext(iterator))
                while True:
                    done, _ = await asyncio.wait({next_item}, timeout=interval)
                    if done:
                        break
                    await write(keep_alive(crlf=crlf))
                try:
                    item = next_item.result()
                except StopAsyncIteration:
                    break
                space = self.space
                if item.kind == "done":
                    if fault.omit_done:
                        continue
                    space = space and not fault.done_no_space
                if fault.eof_after == BEFORE_FINAL and item.kind in ("final", "done"):
                    break
                if fault.eof_after is not None and 0 <= fault.eof_after <= count:
                    break
                if fault.disconnect_after is not None and count >= fault.disconnect_after:
                    self._ended = True
                    await self.state.close_connection(scope.get("client"))
                    return
                extra = f"event: message\nid: {count}\nretry: 3000\n" if fault.extra_sse_fields else ""
                data = frame(
                    item.data,
                    space=space,
                    crlf=crlf,
                    extra_fields=extra,
                    split=fault.split_after == count,
                )
                if fault.partial_after is not None and count >= fault.partial_after:
                    await write(data[: max(len(data) // 2, 1)].rstrip(b"\r\n"))
                    break
                if fault.malformed_after == count:
                    await write(frame(_MALFORMED, space=space, crlf=crlf))
                for _ in range(fault.keep_alive_comments):
                    await write(keep_alive(crlf=crlf))
                await write(data)
                count += 1
            if fault.disconnect_after is not None:
                # Fewer events than ``after``: still end abruptly, without the terminating chunk.
                self._ended = True
                await self.state.close_connection(scope.get("client"))
                return
            self._ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if next_item is not None and not next_item.done():
                next_item.cancel()
                await asyncio.gather(next_item, return_exceptions=True)
            aclose = getattr(self.items, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


async def _wait_disconnect(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
