"""The generations running in this process: each a task of its own, with the event that stops it,
so a cancel, a shutdown or a job's end reaches it wherever it was started."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

Body = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class _Running:
    task: asyncio.Task[None]
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class GenerationTasks:
    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}

    def start(self, generation_id: str, body: Body) -> asyncio.Task[None]:
        """Run `body(cancelled)` as a task of its own; it is forgotten when it ends."""
        cancelled = asyncio.Event()
        task = asyncio.create_task(body(cancelled), name=f"generation-{generation_id}")
        self._running[generation_id] = _Running(task, cancelled)
        task.add_done_callback(lambda _t: self._running.pop(generation_id, None))
        return task

    def running(self, generation_id: str) -> bool:
        return generation_id in self._running

    def cancel(self, generation_id: str) -> None:
        """Signal the generation's stop, if it runs here (its partial answer is kept)."""
        running = self._running.get(generation_id)
        if running is not None:
            running.cancelled.set()

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Let running generations finish for a while; then stop them as a cancel does (their
        partial answers are kept), and, as a last resort, cut them off (marked FAILED)."""
        tasks = [running.task for running in self._running.values()]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for running in list(self._running.values()):
            running.cancelled.set()
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=5)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
