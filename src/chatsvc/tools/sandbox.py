"""Script tools: JavaScript in QuickJS (quickjs-ng) inside separate worker processes.

CONTRACT (the tool runtime and the script endpoints use only this surface):

- `ScriptPool.from_settings(settings)` builds a pool; workers start lazily on first use.
- `await pool.check(code)` compiles the code (without running it) and raises
  `ScriptSyntaxError` (an `Invalid`, so a 400) naming the line on a syntax error.
- `await pool.run(code, arguments)` runs the code with `arguments` (a JSON object) and returns
  a `ScriptOutcome`; it never raises for what the script does (loops, memory, crashes): those
  come back as `ok=False` with a clear `error`.
- `await pool.close()` stops the workers.

The pool owns up to `workers` processes of `sandbox_worker.py`, each answering one JSON line
per request. A worker that overruns its run's wall clock, dies or answers nonsense is killed and
replaced on the next call; docs/script-tools.md describes the script convention and the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatsvc.config import Settings
from chatsvc.kit.errors import Invalid, Unavailable

logger = logging.getLogger(__name__)

#: the largest script source accepted (UTF-8 bytes)
MAX_CODE_BYTES = 100 * 1024
#: the largest JSON text of one call's arguments
MAX_ARGUMENTS_BYTES = 256 * 1024

BUSY_ERROR = "all script workers are busy; try again"
DIED_ERROR = "the script worker died"
TIME_LIMIT_ERROR = "the script ran longer than its time limit ({seconds:g} s) and was stopped"

WORKER_PATH = Path(__file__).with_name("sandbox_worker.py")
#: QuickJS stops a run at its CPU time limit. The parent looks again at a worker whose reply has
#: not come after twice that limit plus this margin of wall-clock time, and kills it once it has
#: used the limit plus this margin of CPU time (QuickJS did not stop it), or when it has been
#: silent for the hang limit (a starved worker on a busy machine is not killed for being slow)
KILL_MARGIN_SECONDS = 1.0
START_TIMEOUT_SECONDS = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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


@dataclass(frozen=True, slots=True)
class _Deadlines:
    #: wall-clock seconds after which a silent worker is first looked at (then every 0.25 s)
    look: float
    #: CPU seconds of one request that get a silent worker killed
    cpu: float
    #: wall-clock seconds after which a silent worker is killed whatever its CPU time
    hang: float


class _NoAnswer(Exception):
    """The worker gave no usable reply; the message says why, in a user's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Worker:
    """One worker process and its pipes. Used by one call at a time (the pool sees to it)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def alive(self) -> bool:
        """Whether the process still runs: asyncio learns of an exit a few loop turns after
        the kernel does, so /proc is asked too (a zombie or a reaped process is gone)."""
        if self.process.returncode is not None:
            return False
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return not os.path.isdir("/proc/self")  # no /proc here: returncode decides alone
        return state not in (b"Z", b"X")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far (Linux /proc), None if unknown."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return None

    async def ask(self, request: dict[str, Any], limits: _Deadlines) -> dict[str, Any]:
        process = self.process
        assert process.stdin is not None and process.stdout is not None
        payload = json.dumps(request).encode() + b"\n"
        cpu_before = self.cpu_seconds()
        reading: asyncio.Task[bytes] | None = None
        try:
            async with asyncio.timeout(limits.hang):
                process.stdin.write(payload)
                await process.stdin.drain()
                reading = asyncio.ensure_future(process.stdout.readline())
                wait = limits.look
                while not (await asyncio.wait({reading}, timeout=wait))[0]:
                    cpu_now = self.cpu_seconds()
                    if cpu_before is None or cpu_now is None:
                        raise TimeoutError  # no CPU figure: the wall clock decides alone
                    if cpu_now - cpu_before >= limits.cpu:
                        raise TimeoutError
                    wait = 0.25
                line = reading.result()
        except TimeoutError:
            raise _NoAnswer("") from None  # the caller words it: it knows what was asked
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        except ValueError:  # a line over the reader's limit
            raise _NoAnswer("the script worker sent a reply that is too large") from None
        finally:
            if reading is not None and not reading.done():
                reading.cancel()
        if not line:
            raise _NoAnswer(await self._death())
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise _NoAnswer("the script worker sent an unreadable reply")
        return reply

    async def _death(self) -> str:
        try:
            async with asyncio.timeout(2.0):
                code = await self.process.wait()
        except TimeoutError:
            return DIED_ERROR
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"{DIED_ERROR} (killed by {name})"
        return f"{DIED_ERROR} (exit status {code})"


@dataclass(eq=False, kw_only=True)
class ScriptPool:
    workers: int = 2
    memory_mb: int = 64
    timeout_seconds: float = 2.0
    stack_kb: int = 256
    queue_wait_seconds: float = 2.0
    max_output_bytes: int = 64 * 1024
    _slots: asyncio.Semaphore = field(init=False, repr=False)
    _idle: list[_Worker] = field(init=False, repr=False, default_factory=list)
    _busy: set[_Worker] = field(init=False, repr=False, default_factory=set)
    #: every process started and not yet reaped, so close() can wait for all of them
    _processes: set[asyncio.subprocess.Process] = field(init=False, repr=False, default_factory=set)
    _reapers: set[asyncio.Task[None]] = field(init=False, repr=False, default_factory=set)
    _workdir: str | None = field(init=False, repr=False, default=None)
    _closed: bool = field(init=False, repr=False, default=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.workers)

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

    @property
    def deadlines(self) -> _Deadlines:
        """When the parent looks at a silent worker, and what gets it killed."""
        return _Deadlines(
            look=2 * self.timeout_seconds + KILL_MARGIN_SECONDS,
            cpu=self.timeout_seconds + KILL_MARGIN_SECONDS,
            hang=10 * self.timeout_seconds + 10.0,
        )

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (idle or busy), for operators and tests."""
        return sorted(worker.pid for worker in [*self._idle, *self._busy])

    async def check(self, code: str) -> None:
        problem = _code_problem(code)
        if problem is not None:
            raise Invalid(problem, code="invalid_script")
        try:
            reply = await self._exchange({"op": "check", "code": code})
        except _NoAnswer as exc:
            raise Unavailable(f"the script could not be checked: {exc.message}") from None
        if reply["ok"]:
            return
        error = str(reply.get("error") or "the script does not compile")
        if "line" in reply:
            line = reply["line"]
            raise ScriptSyntaxError(error, line if isinstance(line, int) else None)
        raise Invalid(error, code="invalid_script")

    async def run(self, code: str, arguments: dict[str, Any]) -> ScriptOutcome:
        problem = _code_problem(code)
        if problem is not None:
            return ScriptOutcome(ok=False, error=problem)
        try:
            args_json = json.dumps(arguments, allow_nan=False)
        except (TypeError, ValueError) as exc:
            return ScriptOutcome(ok=False, error=f"the arguments are not JSON: {exc}")
        if len(args_json) > MAX_ARGUMENTS_BYTES:
            return ScriptOutcome(
                ok=False, error=f"the arguments are larger than {MAX_ARGUMENTS_BYTES} bytes of JSON"
            )
        try:
            reply = await self._exchange({"op": "run", "code": code, "args": args_json})
        except _NoAnswer as exc:
            return ScriptOutcome(ok=False, error=exc.message)
        return self._outcome(reply)

    async def close(self) -> None:
        """Kills every worker and waits until each has exited; later calls are refused."""
        self._closed = True
        for process in self._processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        for process in list(self._processes):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await process.wait()
        if self._reapers:
            await asyncio.gather(*self._reapers, return_exceptions=True)
        self._processes.clear()
        self._idle.clear()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # -- internals ----------------------------------------------------------------------------

    def _outcome(self, reply: dict[str, Any]) -> ScriptOutcome:
        logs = reply.get("logs")
        lines = [_well_formed(str(line)) for line in logs] if isinstance(logs, list) else []
        if not reply["ok"]:
            error = str(reply.get("error") or "the script failed")
            return ScriptOutcome(ok=False, logs=lines, error=_well_formed(error))
        try:
            value = json.loads(str(reply.get("result")))
        except ValueError:
            return ScriptOutcome(ok=False, logs=lines, error="the result is not JSON")
        return ScriptOutcome(ok=True, value=_well_formed_json(value), logs=lines)

    async def _exchange(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request to one worker; raises `_NoAnswer` when the pool is busy or the worker
        fails it (the worker is then killed: a stuck or half-read worker is never reused)."""
        if self._closed:
            raise Unavailable("the script pool is shut down")
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self.queue_wait_seconds):
                    await slots.acquire()
            except TimeoutError:
                raise _NoAnswer(BUSY_ERROR) from None
        else:
            await slots.acquire()
        worker: _Worker | None = None
        reusable = False
        try:
            worker = self._take_idle()
            # A worker that waited idle may have been killed since (by an operator, the OOM
            # killer) in a way /proc did not show yet: if it dies on the request, the request
            # runs once more on a fresh worker. A fresh worker's death is the script's doing.
            second_chance = worker is not None
            if worker is None:
                worker = await self._spawn()
            self._busy.add(worker)
            try:
                reply = await worker.ask(request, self.deadlines)
            except _NoAnswer as exc:
                if not (second_chance and exc.message.startswith(DIED_ERROR)):
                    raise
                logger.warning(
                    "idle script worker %s had died; the run goes to a new one", worker.pid
                )
                self._busy.discard(worker)
                self._retire(worker)
                worker = None  # retired: if no new one starts, `finally` has nothing to do
                worker = await self._spawn()
                self._busy.add(worker)
                reply = await worker.ask(request, self.deadlines)
            reusable = True
            return reply
        except _NoAnswer as exc:
            if worker is not None:
                if exc.message and "SIGXCPU" not in exc.message:
                    logger.warning("script worker %s: %s", worker.pid, exc.message)
                    raise
                logger.warning("script worker %s overran its run and is replaced", worker.pid)
                raise _NoAnswer(TIME_LIMIT_ERROR.format(seconds=self.timeout_seconds)) from None
            raise
        finally:
            if worker is not None:
                self._busy.discard(worker)
                if reusable and not self._closed:
                    self._idle.append(worker)
                else:
                    self._retire(worker)
            slots.release()

    def _take_idle(self) -> _Worker | None:
        """An idle worker still alive (one killed while idle is retired, not handed out)."""
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                return worker
            logger.warning("idle script worker %s had exited and is replaced", worker.pid)
            self._retire(worker)
        return None

    async def _spawn(self) -> _Worker:
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="chatsvc-scripts-")
        limits = json.dumps(
            {
                "memory_mb": self.memory_mb,
                "stack_kb": self.stack_kb,
                "timeout_seconds": self.timeout_seconds,
                "max_output_bytes": self.max_output_bytes,
            }
        )
        # Isolated mode and an empty environment: the worker sees no setting and no secret
        # of the service; its own session keeps a terminal's Ctrl-C for the parent.
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                str(WORKER_PATH),
                limits,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=self._workdir,
                env={},
                start_new_session=True,
                # a reply holds at most the result and the logs, each capped, JSON-escaped
                limit=10 * self.max_output_bytes + 1024 * 1024,
            )
        except OSError as exc:
            logger.error("a script worker could not be started: %s", exc)
            raise _NoAnswer("the script worker could not start") from None
        self._processes.add(process)
        worker = _Worker(process)
        ready = False
        try:
            assert process.stdout is not None
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                line = await process.stdout.readline()
            ready = line.startswith(b'{"ready"')
        except TimeoutError:
            pass
        finally:
            if not ready:
                self._retire(worker)
        if not ready:
            logger.error("a script worker did not start (%s)", sys.executable)
            raise _NoAnswer("the script worker could not start")
        return worker

    def _retire(self, worker: _Worker) -> None:
        """Kills the worker now and reaps it in the background."""
        worker.kill()
        task = asyncio.get_running_loop().create_task(self._reap(worker.process))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        try:
            await process.wait()
        finally:
            self._processes.discard(process)


def _code_problem(code: str) -> str | None:
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError:
        return "the code is not valid text (it contains a lone surrogate)"
    if size > MAX_CODE_BYTES:
        return f"the code is larger than {MAX_CODE_BYTES // 1024} KB"
    return None


def _well_formed(text: str) -> str:
    """Replaces lone surrogates (legal in JavaScript strings, not in UTF-8) with U+FFFD."""
    if not _LONE_SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _well_formed_json(value: Any) -> Any:
    if isinstance(value, str):
        return _well_formed(value)
    if isinstance(value, list):
        return [_well_formed_json(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(key): _well_formed_json(item) for key, item in value.items()}
    return value
