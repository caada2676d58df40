"""One script worker process: it confines itself with OS limits, then answers JSON-line
requests on stdin (compile or run one JavaScript snippet in a fresh QuickJS context) on stdout.

Standard library and the `_quickjs` extension only, so it starts fast and never imports the
service (nor sees its settings: the parent starts it with an empty environment). The parent,
`chatsvc.tools.sandbox.ScriptPool`, owns the process: it kills it on a wall-clock overrun and
replaces it when it dies. Start by hand: `python -I sandbox_worker.py '{"memory_mb": 64, ...}'`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

# The C module, not the `quickjs` package: the package starts a helper thread at import.
import _quickjs  # type: ignore[import-not-found]

READY = "ready"
TIME_LIMIT_ERROR = "the script ran longer than its time limit ({seconds:g} s) and was stopped"
MEMORY_LIMIT_ERROR = "the script used more than its memory limit ({mb} MB)"
STACK_LIMIT_ERROR = "the script exceeded its stack limit ({kb} KB): {message}"
NEVER_SETTLED_ERROR = (
    "the script's Promise never settled (the sandbox has no timers or I/O to wait for)"
)
#: the stack the QuickJS parser and interpreter may use; the process's own C stack is 8 MB
MAX_STACK_KB = 4096

# The harness runs first in every fresh context. It defines the frozen `args` and a capturing
# `console`, keeps its own references to the built-ins it needs (a script may overwrite the
# global ones), and returns one function through which the worker drives the run. Every
# answer is a JSON text made by JSON.stringify, so it crosses into Python as valid UTF-8.
HARNESS = r"""
(function (argsJson, maxBytes) {
  "use strict";
  const G = globalThis;
  const evaluate = G.eval;  // called indirectly: the code runs as a global script
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const P = Promise;
  const then = P.prototype.then;
  const apply = Reflect.apply;
  const freeze = Object.freeze;
  const keys = Object.keys;
  const ErrorType = Error;
  const StringType = String;
  const marker = "[console output truncated: more than " + maxBytes + " bytes]";

  const deepFreeze = (value) => {
    if (value !== null && typeof value === "object") {
      for (const key of keys(value)) deepFreeze(value[key]);
      freeze(value);
    }
    return value;
  };

  const show = (value) => {
    if (typeof value === "string") return value;
    try {
      if (value instanceof ErrorType) {
        return StringType(value.name) + ": " + StringType(value.message);
      }
      if (value === undefined || typeof value === "function" || typeof value === "symbol"
          || typeof value === "bigint") return StringType(value);
      const text = stringify(value);
      return text === undefined ? StringType(value) : text;
    } catch (error) {
      try { return StringType(value); } catch (again) { return "[" + typeof value + "]"; }
    }
  };

  // Console output is kept up to maxBytes of UTF-8, each line counting one byte more for its
  // newline (so a flood of empty lines ends too); the line that crosses the budget is cut and a
  // marker line ends the output. Counting stops at the budget: a flood costs O(maxBytes).
  const logs = [];
  let room = maxBytes;
  let full = false;
  const fit = (line, budget) => {
    if (budget < 0) return ["", 0, false];
    let used = 0;
    for (let i = 0; i < line.length; i++) {
      const unit = line.charCodeAt(i);
      let size = unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3;
      const pair = unit >= 0xd800 && unit <= 0xdbff && i + 1 < line.length
        && (line.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      if (pair) size = 4;
      if (used + size > budget) return [line.slice(0, i), used, false];
      used += size;
      if (pair) i++;
    }
    return [line, used, true];
  };
  const write = function (...items) {
    if (full) return;
    const [kept, used, whole] = fit(items.map(show).join(" "), room - 1);
    if (whole) {
      logs.push(kept);
      room -= used + 1;
      return;
    }
    if (kept) logs.push(kept);
    logs.push(marker);
    full = true;
  };
  const console = freeze({ log: write, info: write, warn: write, error: write, debug: write });
  const args = deepFreeze(parse(argsJson));
  const fixed = { enumerable: false, writable: false, configurable: false };
  Object.defineProperty(G, "console", { ...fixed, value: console });
  Object.defineProperty(G, "args", { ...fixed, value: args });

  const lineOf = (error) => {
    try {
      const found = /<input>:(\d+)/.exec(StringType(error.stack));
      return found ? Number(found[1]) : null;
    } catch (again) {
      return null;
    }
  };
  const describe = (error) => {
    // QuickJS sometimes reports running out of memory with no error value at all
    if (error === null || typeof error === "unknown") {
      return { error: "the script threw null", line: null, bare: true };
    }
    try {
      if (error instanceof ErrorType) {
        return { error: StringType(error.name) + ": " + StringType(error.message),
                 line: lineOf(error) };
      }
      return { error: "the script threw " + show(error), line: null };
    } catch (again) {
      return { error: "the script threw a value that cannot be shown", line: null };
    }
  };

  let state = "idle";
  let value;
  let failure;
  const settle = (result) => { state = "done"; value = result; };
  const fail = (error) => { state = "failed"; failure = error; };

  // The code runs as eval code, where top-level let/const/class stay local: a trailer (after
  // the last line, so line numbers hold; a declaration, so the completion value holds) hands
  // over whatever `main` names.
  let found;
  Object.defineProperty(G, "__chatsvc_found__", {
    ...fixed, value: (main) => { found = main; },
  });
  const trailer = "\n;let __chatsvc_probe__ = __chatsvc_found__("
    + "typeof main === 'function' ? main : undefined);";

  const run = (code) => {
    let result;
    try {
      result = evaluate(code + trailer);
      if (found !== undefined) result = apply(found, undefined, [args]);
    } catch (error) {
      fail(error);
      return;
    }
    if (result instanceof P) {
      state = "pending";
      apply(then, result, [settle, fail]);
    } else {
      settle(result);
    }
  };

  const report = () => {
    if (state === "failed") return stringify({ ok: false, ...describe(failure), logs });
    if (state !== "done") return stringify({ ok: false, pending: true, logs });
    if (value === undefined) {
      return stringify({ ok: true, result: stringify(logs.join("\n")), logs });
    }
    let text;
    try {
      text = stringify(value);
    } catch (error) {
      return stringify({ ok: false, logs,
                         error: "the result is not JSON-serialisable: " + describe(error).error });
    }
    if (text === undefined) {
      return stringify({ ok: false, logs,
                         error: "the result is not JSON-serialisable (a " + typeof value + ")" });
    }
    if (text.length > maxBytes || !fit(text, maxBytes)[2]) {
      return stringify({ ok: false, logs,
                         error: "the result is larger than " + maxBytes + " bytes of JSON" });
    }
    return stringify({ ok: true, result: text, logs });
  };

  // The checked source starts with `throw null;` (on line 1, so line numbers hold): parsing
  // and declaring happen, none of the code runs.
  const check = (source) => {
    try {
      evaluate(source);
    } catch (error) {
      if (error === null) return stringify({ ok: true });
      try {
        return stringify({ ok: false, name: StringType(error.name),
                           message: StringType(error.message), line: lineOf(error) });
      } catch (again) {
        return stringify({ ok: false, name: "Error", message: show(error), line: null });
      }
    }
    return stringify({ ok: true });
  };

  return function (op, input) {
    if (op === "run") return run(input);
    if (op === "report") return report();
    if (op === "logs") return stringify(logs);
    return check(input);
  };
})
"""

_STRICT_PROLOGUE = re.compile(r"""\A(?:\s|//[^\n]*(?:\n|\Z)|/\*.*?\*/)*(['"])use strict\1""", re.S)


@dataclass(frozen=True, slots=True)
class Limits:
    memory_mb: int
    stack_kb: int
    timeout_seconds: float
    max_output_bytes: int

    @classmethod
    def parse(cls, text: str) -> Limits:
        raw = json.loads(text)
        return cls(
            memory_mb=int(raw["memory_mb"]),
            stack_kb=min(int(raw["stack_kb"]), MAX_STACK_KB),
            timeout_seconds=float(raw["timeout_seconds"]),
            max_output_bytes=int(raw["max_output_bytes"]),
        )


def confine(limits: Limits) -> None:
    """OS limits, a second line behind QuickJS's own: no core files, no file may grow past 0
    bytes, no new file descriptors, no new processes (not enforced for root), an address space
    a little above the JS heap. The CPU limit is set per run (`arm_cpu_limit`)."""
    here = _vm_size_bytes()
    heap = limits.memory_mb * 1024 * 1024
    wanted = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, 3),
        (resource.RLIMIT_NPROC, 0),
        (resource.RLIMIT_AS, here + 2 * heap + 64 * 1024 * 1024),
    ]
    for which, value in wanted:
        # ValueError: the hard limit is already lower; keep it
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))


def arm_cpu_limit(limits: Limits) -> None:
    """The kernel stops the process (SIGXCPU) a little after the run's time limit, for loops
    inside built-ins that QuickJS's interrupt check does not reach."""
    used = time.process_time()
    soft = math.ceil(used + limits.timeout_seconds) + 2
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ValueError, OSError):
        pass


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 64 * 1024 * 1024


class _Run:
    """One fresh QuickJS context with the run's limits; the time budget is shared by every
    call into JavaScript (each call restarts QuickJS's clock, so the remainder is passed)."""

    def __init__(self, limits: Limits, args_json: str) -> None:
        self.limits = limits
        self.started = time.process_time()
        self.context = _quickjs.Context()
        self.context.set_memory_limit(limits.memory_mb * 1024 * 1024)
        self.context.set_max_stack_size(limits.stack_kb * 1024)
        self._budget()
        self.step = self.context.eval(HARNESS)(args_json, limits.max_output_bytes)

    def _budget(self) -> None:
        left = self.limits.timeout_seconds - (time.process_time() - self.started)
        if left <= 0:
            raise _OutOfTime
        self.context.set_time_limit(left)

    def call(self, op: str, payload: str | None = None) -> Any:
        self._budget()
        return self.step(op, payload)

    def drain_jobs(self) -> None:
        while True:
            self._budget()
            if not self.context.execute_pending_job():
                return

    def exhausted(self, code: str) -> bool:
        """Whether a failure without an error value was QuickJS running out of memory: the
        heap is (nearly) full, or the code has no `throw`/`reject` that could produce it."""
        usage = self.context.memory()
        if usage["malloc_size"] >= 0.9 * usage["malloc_limit"]:
            return True
        return "throw" not in code and "reject" not in code

    def logs_after_failure(self) -> list[str]:
        """The console lines written before an uncatchable stop, read with a small budget."""
        try:
            self.context.set_time_limit(0.2)
            logs = json.loads(self.step("logs", None))
        except Exception:
            return []
        return [str(line) for line in logs] if isinstance(logs, list) else []


class _OutOfTime(Exception):
    pass


def _failure_text(limits: Limits, text: str) -> str:
    """The first line of QuickJS's error text, in the words of the limit it hit if any."""
    first = text.strip().splitlines()[0] if text.strip() else "the script failed"
    if first == "InternalError: interrupted":
        return TIME_LIMIT_ERROR.format(seconds=limits.timeout_seconds)
    if first in ("InternalError: out of memory", "null", "[uninitialized]"):
        return MEMORY_LIMIT_ERROR.format(mb=limits.memory_mb)
    if first in ("RangeError: Maximum call stack size exceeded", "InternalError: stack overflow"):
        return STACK_LIMIT_ERROR.format(kb=limits.stack_kb, message=first)
    return first


def run_script(limits: Limits, code: str, args_json: str) -> dict[str, Any]:
    arm_cpu_limit(limits)
    job: _Run | None = None
    try:
        job = _Run(limits, args_json)
        job.call("run", code)
        job.drain_jobs()
        report: dict[str, Any] = json.loads(job.call("report"))
    except _OutOfTime:
        logs = job.logs_after_failure() if job else []
        error = TIME_LIMIT_ERROR.format(seconds=limits.timeout_seconds)
        return {"ok": False, "error": error, "logs": logs}
    except _quickjs.JSException as exc:
        logs = job.logs_after_failure() if job else []
        return {"ok": False, "error": _failure_text(limits, str(exc)), "logs": logs}
    if report.pop("pending", False):
        report["error"] = NEVER_SETTLED_ERROR
    line = report.pop("line", None)
    if isinstance(line, int):
        # A syntax error at the end of the script is found on the trailer's line after it.
        line = min(line, code.count("\n") + 1)
    if report.pop("bare", False) and job is not None and job.exhausted(code):
        report["error"] = MEMORY_LIMIT_ERROR.format(mb=limits.memory_mb)
    if not report["ok"]:
        error = _failure_text(limits, str(report["error"]))
        if line and not error.startswith(MEMORY_LIMIT_ERROR.format(mb=limits.memory_mb)):
            error = f"{error} (line {line})"
        report["error"] = error
    return report


def check_script(limits: Limits, code: str) -> dict[str, Any]:
    """Compiles without running: the source gets `throw null;` in front, on its first line."""
    arm_cpu_limit(limits)
    if code.startswith("#!"):  # a hashbang is only legal first: keep the line, drop the bang
        code = "//" + code[2:]
    prefix = '"use strict";throw null;' if _STRICT_PROLOGUE.match(code) else "throw null;"
    try:
        job = _Run(limits, "{}")
        answer: dict[str, Any] = json.loads(job.call("check", prefix + code))
    except _OutOfTime:
        return {"ok": False, "error": TIME_LIMIT_ERROR.format(seconds=limits.timeout_seconds)}
    except _quickjs.JSException as exc:
        return {"ok": False, "error": _failure_text(limits, str(exc))}
    if answer["ok"]:
        return {"ok": True}
    name, message, line = answer["name"], answer["message"], answer.get("line")
    where = f" at line {line}" if line else ""
    return {"ok": False, "error": f"{name}{where}: {message}", "line": line}


def handle(limits: Limits, line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
        if request.get("op") == "check":
            return check_script(limits, str(request["code"]))
        return run_script(limits, str(request["code"]), str(request["args"]))
    except MemoryError:
        return {"ok": False, "error": MEMORY_LIMIT_ERROR.format(mb=limits.memory_mb), "logs": []}
    except Exception as exc:  # never a traceback: the parent only reads JSON lines
        return {"ok": False, "error": f"the script worker failed: {type(exc).__name__}", "logs": []}


def main() -> int:
    limits = Limits.parse(sys.argv[1])
    confine(limits)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(json.dumps({READY: os.getpid()}).encode() + b"\n")
    stdout.flush()
    for line in stdin:
        reply = handle(limits, line)
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
