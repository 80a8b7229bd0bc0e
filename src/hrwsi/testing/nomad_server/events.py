"""The event stream: ndjson frames, ``{}`` heartbeats, topic filters, cuts and silences."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hrwsi.testing.nomad_server.common import (
    _HttpError,
)
from hrwsi.testing.nomad_server.core import ClusterCore


class EventStream(ClusterCore):
    """``GET /v1/event/stream``."""

    def cut_streams(self) -> None:
        """End every open event stream now (clients see the body end)."""
        self._stream_generation += 1

    def silence_streams(self) -> None:
        """Open event streams send nothing more, not even heartbeats, but stay open."""
        self._silenced_generation = self._stream_generation

    def _stream_route(self, request: Request, ns: str) -> Response | None:
        if request.url.path == "/v1/event/stream" and request.method == "GET":
            return self._stream(request, ns)
        return None

    @staticmethod
    def _wanted(topics: list[tuple[str, str]], event: Mapping[str, Any]) -> bool:
        for topic, key in topics:
            if topic not in ("*", event["Topic"]):
                continue
            if key == "*" or key == event["Key"] or key in event.get("FilterKeys", []):
                return True
        return False

    def _stream(self, request: Request, ns: str) -> Response:
        try:
            start = int(request.query_params.get("index", "0"))
        except ValueError:
            raise _HttpError(400, "Invalid index") from None
        topics = []
        for raw in request.query_params.getlist("topic"):
            topic, _, key = raw.partition(":")
            topics.append((topic, key or "*"))
        if not topics:
            topics = [("*", "*")]
        generation = self._stream_generation
        stopping = self._stopping

        async def body() -> AsyncIterator[bytes]:
            sent = start - 1
            yield b"{}\n"
            last_beat = time.monotonic()
            while True:
                if stopping.is_set() or self._stream_generation != generation:
                    return
                silenced = self._silenced_generation == generation
                tick = self._tick
                if not silenced:
                    for frame in list(self._frames):
                        if frame["Index"] <= sent:
                            continue
                        sent = frame["Index"]
                        events = [
                            e
                            for e in frame["Events"]
                            if self._wanted(topics, e) and e.get("Namespace", ns) == ns
                        ]
                        if events:
                            yield (
                                json.dumps({"Index": frame["Index"], "Events": events}) + "\n"
                            ).encode()
                    if time.monotonic() - last_beat >= self.heartbeat_s:
                        yield b"{}\n"
                        last_beat = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), min(self.heartbeat_s, 0.2))

        return StreamingResponse(body(), media_type="application/json")
