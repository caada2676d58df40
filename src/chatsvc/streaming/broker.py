"""The stream broker contract: generations publish events, SSE responses read them, by id, from
any process. Implementations: Redis Streams (production) and in-process (embedded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class BrokerEntry:
    id: str  # increasing within a stream; what SSE sends as `id:` and gets back in Last-Event-ID
    event: str  # e.g. message.created, delta, message.completed, error
    data: dict[str, Any]
    #: `data` as compact JSON, when the broker made it already (encoded once for every reader)
    encoded: str | None = field(default=None, compare=False, repr=False)


class StreamBroker(Protocol):
    def open(self, stream: str) -> None:
        """This process is about to publish to `stream` (its readers here may read it from
        memory from now on)."""
        ...

    async def publish(self, stream: str, event: str, data: dict[str, Any]) -> str:
        """Append an event; returns its id. O(1)."""
        ...

    async def append(self, stream: str, event: str, data: dict[str, Any]) -> str:
        """Append an event to a stream another process may have produced (the end of a dead
        generation's stream, written by whichever process recovers it): it sorts after every
        event of the stream, wherever they were published. Returns its id."""
        ...

    async def read(
        self, stream: str, after: str | None, *, block_seconds: float, count: int = 512
    ) -> list[BrokerEntry]:
        """Entries after `after` (None: from the start), waiting up to `block_seconds` for at
        least one; [] on timeout."""
        ...

    async def finish(self, stream: str, ttl_seconds: int) -> None:
        """The stream is complete: keep it replayable for `ttl_seconds`, then drop it."""
        ...

    async def request_cancel(self, generation_id: str, ttl_seconds: int) -> None:
        """Ask the generation (in whatever process it runs) to stop."""
        ...

    async def cancel_requested(self, generation_id: str) -> bool: ...

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Call `callback(generation_id)` when a cancel is asked, wherever it is asked."""
        ...

    async def start(self) -> None:
        """Start what the broker runs in the background (e.g. its cancel listener)."""
        ...

    async def close(self) -> None: ...
