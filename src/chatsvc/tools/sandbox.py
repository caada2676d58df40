"""Script tools: JavaScript in QuickJS (quickjs-ng) inside separate worker processes.

CONTRACT (filled in by the sandbox work; the tool runtime and the script endpoints use only
this surface):

- `ScriptPool.from_settings(settings)` builds a pool; workers start lazily on first use.
- `await pool.check(code)` compiles the code (without running it) and raises
  `ScriptSyntaxError` (an `Invalid`, so a 400) naming the line on a syntax error.
- `await pool.run(code, arguments)` runs the code with `arguments` (a JSON object) and returns
  a `ScriptOutcome`; it never raises for what the script does (loops, memory, crashes): those
  come back as `ok=False` with a clear `error`.
- `await pool.close()` stops the workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatsvc.config import Settings
from chatsvc.kit.errors import Invalid


class ScriptSyntaxError(Invalid):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, code="script_syntax_error")
        self.line = line


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    ok: bool
    #: the JSON result (when ok)
    value: Any = None
    #: console.log lines, capped
    logs: list[str] = field(default_factory=list)
    #: why it failed, in words (when not ok)
    error: str | None = None


class ScriptPool:
    def __init__(
        self,
        *,
        workers: int = 2,
        memory_mb: int = 64,
        timeout_seconds: float = 2.0,
        stack_kb: int = 256,
        queue_wait_seconds: float = 2.0,
        max_output_bytes: int = 64 * 1024,
    ) -> None:
        self.workers = workers
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.stack_kb = stack_kb
        self.queue_wait_seconds = queue_wait_seconds
        self.max_output_bytes = max_output_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> ScriptPool:
        return cls(
            workers=settings.script_workers,
            memory_mb=settings.script_memory_mb,
            timeout_seconds=settings.script_timeout_seconds,
            stack_kb=settings.script_stack_kb,
            queue_wait_seconds=settings.script_queue_wait_seconds,
            max_output_bytes=settings.script_max_output_bytes,
        )

    async def check(self, code: str) -> None:
        raise NotImplementedError

    async def run(self, code: str, arguments: dict[str, Any]) -> ScriptOutcome:
        raise NotImplementedError

    async def close(self) -> None:
        return None
