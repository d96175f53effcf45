"""A Server-Sent Events reader with EventSource's parsing rules, over a plain aiohttp response."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Frame:
    """One dispatched SSE message, or a comment line (`comment` set, nothing else)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    comment: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class EventStream:
    response: aiohttp.ClientResponse
    last_event_id: str = ""
    _pending: list[Frame] = field(default_factory=list)

    async def next(self, timeout: float = 10.0) -> Frame | None:
        """The next frame (messages and comments), or None at the end of the stream."""
        return await asyncio.wait_for(self._next(), timeout)

    async def events(self, count: int, timeout: float = 10.0) -> list[Frame]:
        """The next `count` messages, skipping comments."""
        frames: list[Frame] = []
        while len(frames) < count:
            frame = await self.next(timeout)
            assert frame is not None, f"the stream ended after {frames}"
            if frame.comment is None:
                frames.append(frame)
        return frames

    async def _next(self) -> Frame | None:
        current = Frame()
        data: list[str] = []
        while True:
            raw = await self.response.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                return Frame(comment=line[1:].strip())
            if not line:
                if not data:
                    continue
                current.data = "\n".join(data)
                if current.id is not None:
                    self.last_event_id = current.id
                return current
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
