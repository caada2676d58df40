"""The stream broker contract: generations publish events, SSE responses read them, by id, from
any process. Implementations: Redis Streams (production) and in-process (embedded)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class BrokerEntry:
    id: str  # increasing within a stream; what SSE sends as `id:` and gets back in Last-Event-ID
    event: str  # e.g. message.created, delta, message.completed, error
    data: dict[str, Any]


class StreamBroker(Protocol):
    async def publish(self, stream: str, event: str, data: dict[str, Any]) -> str:
        """Append an event; returns its id. O(1)."""
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

    async def close(self) -> None: ...
