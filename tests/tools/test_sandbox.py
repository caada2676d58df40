"""The script sandbox with real worker processes: the script convention, JSON in and out, compile
checks, and what hostile or broken scripts get (loops, memory, recursion, forbidden names,
floods, a worker killed from outside, a full pool)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatsvc.kit.errors import Invalid, Unavailable
from chatsvc.main import create_app
from chatsvc.tools.sandbox import (
    BUSY_ERROR,
    DIED_ERROR,
    MAX_CODE_BYTES,
    ScriptOutcome,
    ScriptPool,
    ScriptSyntaxError,
)
from tests.fixtures.app import make_settings, services_of

OUTPUT_CAP = 4096
MARKER = f"[console output truncated: more than {OUTPUT_CAP} bytes]"


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def busy_pids(pool: ScriptPool, count: int = 1) -> list[int]:
    """Waits (a bounded number of loop turns, no clock) until `count` workers are running."""
    for _ in range(10_000):
        if len(pool.pids) >= count:
            return pool.pids
        await asyncio.sleep(0.001)
    raise AssertionError("the pool started no worker")


@pytest.fixture
async def pool() -> AsyncIterator[ScriptPool]:
    pool = ScriptPool(
        workers=2,
        memory_mb=32,
        timeout_seconds=1.0,
        stack_kb=256,
        queue_wait_seconds=5.0,
        max_output_bytes=OUTPUT_CAP,
    )
    yield pool
    pids = pool.pids
    await pool.close()
    assert not [pid for pid in pids if alive(pid)]


# -- the convention ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("console.log('Hello World');", "Hello World"),
        ("console.log('Updated');", "Updated"),
        ("function main(args) {\n  return { sum: args.a + args.b };\n}", {"sum": 5}),
        ("const main = ({ a }) => a - 1;", 1),
        ("let main = async (args) => args.b;\n'not this'", 3),
        ("class Tool {}\nfunction main() {\n  return typeof Tool;\n}", "function"),
        ("const x = args.a * 10;\nx + 1", 21),
        ("'use strict';\nconst main = () => 'strict';", "strict"),
        ("console.log('ignored when there is a value');\n[args.a, 'two']", [2, "two"]),
        ("async function main(args) {\n  await null;\n  return args.b * 2;\n}", 6),
        ("Promise.resolve(args.a).then((v) => ({ doubled: v * 2 }))", {"doubled": 4}),
        ("(async () => { console.log('inside'); })()", "inside"),
        ("null", None),
        ("let quiet = 1;", ""),
        (
            "console.log('a');\nconsole.info('b');\nconsole.warn('c');\nconsole.error('d')",
            "a\nb\nc\nd",
        ),
        (
            "console.log('n', 1, { a: [1] }, null, undefined, true);\n"
            "console.error(new TypeError('bad'))",
            'n 1 {"a":[1]} null undefined true\nTypeError: bad',
        ),
    ],
)
async def test_the_result_follows_the_convention(
    pool: ScriptPool, code: str, expected: object
) -> None:
    outcome = await pool.run(code, {"a": 2, "b": 3})
    assert outcome == ScriptOutcome(ok=True, value=expected, logs=outcome.logs)


async def test_logs_are_returned_next_to_a_value(pool: ScriptPool) -> None:
    outcome = await pool.run("console.log('step', 1);\nconsole.log({ done: true });\n7", {})
    assert outcome == ScriptOutcome(ok=True, value=7, logs=["step 1", '{"done":true}'])


async def test_json_goes_in_and_comes_out_unchanged(pool: ScriptPool) -> None:
    arguments: dict[str, Any] = {
        "text": 'naïve café ✓ 𝄞 "quoted" \\ \n tab\t',
        "numbers": [0, -1, 2.5, 1e21],
        "flags": [True, False, None],
        "nested": {"deep": {"er": [{"a": []}, {}]}},
    }
    outcome = await pool.run("function main(args) { return args; }", arguments)
    assert outcome.ok, outcome.error
    assert outcome.value == arguments


async def test_args_are_frozen(pool: ScriptPool) -> None:
    sloppy = await pool.run("args.a = 99;\nargs.list.push(1);", {"a": 1, "list": []})
    assert not sloppy.ok
    assert sloppy.error == "TypeError: object is not extensible (line 2)"

    ignored = await pool.run("args.a = 99;\nargs.a", {"a": 1})
    assert ignored.value == 1

    strict = await pool.run("'use strict';\nargs.a = 99;", {"a": 1})
    assert not strict.ok
    assert strict.error is not None and strict.error.startswith("TypeError")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("(function () {})", "the result is not JSON-serialisable (a function)"),
        ("10n", "the result is not JSON-serialisable: TypeError: BigInt are forbidden"),
        ("const o = {};\no.self = o;\no", "the result is not JSON-serialisable: TypeError"),
        (f"'x'.repeat({OUTPUT_CAP})", f"the result is larger than {OUTPUT_CAP} bytes of JSON"),
        ("new Promise(() => {})", "the script's Promise never settled"),
        ("throw new Error('boom')", "Error: boom (line 1)"),
        ("const a = 1;\nnull.x", "TypeError: cannot read property 'x' of null (line 2)"),
        ("throw { code: 7 }", 'the script threw {"code":7}'),
        ("function main( {", "SyntaxError: invalid property name (line 1)"),
        ("const a = 1;\nlet b = ;", "SyntaxError: unexpected token in expression: ';' (line 2)"),
        (
            "async function main() {\n  throw new RangeError('late');\n}",
            "RangeError: late (line 2)",
        ),
    ],
)
async def test_a_failing_script_gets_a_clear_error(pool: ScriptPool, code: str, error: str) -> None:
    outcome = await pool.run(code, {})
    assert not outcome.ok
    assert outcome.value is None
    assert outcome.error is not None and outcome.error.startswith(error), outcome.error


async def test_logs_written_before_a_failure_are_kept(pool: ScriptPool) -> None:
    outcome = await pool.run("console.log('got this far');\nundefinedThing()", {})
    assert outcome == ScriptOutcome(
        ok=False,
        logs=["got this far"],
        error="ReferenceError: undefinedThing is not defined (line 2)",
    )


async def test_lone_surrogates_become_replacement_characters(pool: ScriptPool) -> None:
    outcome = await pool.run("console.log('a\\ud800b');\n['\\udc00', { k: 'x\\ud83d' }]", {})
    assert outcome == ScriptOutcome(ok=True, value=["\ufffd", {"k": "x\ufffd"}], logs=["a\ufffdb"])


async def test_oversized_input_is_refused_before_any_worker_starts(pool: ScriptPool) -> None:
    big_code = await pool.run("1;" * (MAX_CODE_BYTES // 2 + 1), {})
    assert big_code.error == "the code is larger than 100 KB"
    big_args = await pool.run("1", {"blob": "x" * 300_000})
    assert big_args.error == "the arguments are larger than 262144 bytes of JSON"
    not_json = await pool.run("1", {"n": float("nan")})
    assert not_json.error is not None and not_json.error.startswith("the arguments are not JSON")
    assert pool.pids == []


# -- compile checks -----------------------------------------------------------------------------


async def test_a_syntax_error_names_its_line(pool: ScriptPool) -> None:
    with pytest.raises(ScriptSyntaxError) as caught:
        await pool.check("const a = 1;\nconst b = 2;\nconst c = ;\n")
    assert caught.value.line == 3
    assert caught.value.message == "SyntaxError at line 3: unexpected token in expression: ';'"
    assert caught.value.code == "script_syntax_error"
    assert isinstance(caught.value, Invalid)  # the faces answer 400


async def test_strict_mode_code_is_checked_as_strict(pool: ScriptPool) -> None:
    await pool.check("with (Math) { max(1, 2); }")
    with pytest.raises(ScriptSyntaxError) as caught:
        await pool.check("// a tool\n'use strict';\nwith (Math) { max(1, 2); }")
    assert caught.value.line == 3


@pytest.mark.parametrize(
    "code",
    [
        "console.log('Hello World');",
        "function main(args) { return args; }",
        "#!/usr/bin/env qjs\nconsole.log(1)",
        # compiling does not run: these would fail or never end if they did
        "while (true) {}",
        "throw new Error('never thrown')",
        "let a = [];\nwhile (true) a.push(new Array(1e6));",
    ],
)
async def test_valid_code_compiles_without_running(pool: ScriptPool, code: str) -> None:
    await pool.check(code)


async def test_check_refuses_code_that_can_never_run(pool: ScriptPool) -> None:
    with pytest.raises(ScriptSyntaxError, match="return not in a function"):
        await pool.check("return 1")
    with pytest.raises(Invalid, match="larger than 100 KB") as caught:
        await pool.check("x" * (MAX_CODE_BYTES + 1))
    assert not isinstance(caught.value, ScriptSyntaxError)


# -- adversarial ------------------------------------------------------------------------------


async def test_an_endless_loop_is_stopped_and_the_worker_serves_again(pool: ScriptPool) -> None:
    outcome = await pool.run("console.log('start');\nwhile (true) {}", {})
    assert outcome == ScriptOutcome(
        ok=False,
        logs=["start"],
        error="the script ran longer than its time limit (1 s) and was stopped",
    )
    pids = pool.pids
    again = await pool.run("'fine'", {})
    assert again.value == "fine"
    assert pool.pids == pids  # QuickJS stopped the loop: the worker lives on


async def test_an_endless_async_loop_is_stopped(pool: ScriptPool) -> None:
    outcome = await pool.run("async function main() {\n  while (true) await null;\n}", {})
    assert outcome.error == "the script ran longer than its time limit (1 s) and was stopped"


@pytest.mark.parametrize(
    "code",
    [
        "let a = [];\nwhile (true) a.push(new Array(1e6));",
        "var a = [];\nwhile (true) a.push({ n: a.length, s: 'item ' + a.length });",
        "const o = {};\nfor (let i = 0; ; i++) o['k' + i] = i;",
        "function grow() {\n  const a = [];\n  while (true) a.push([a.length]);\n}\ngrow();",
        "async function main() {\n  const a = [];\n  while (true) a.push(new ArrayBuffer(1e6));\n}",
    ],
)
async def test_a_memory_bomb_hits_the_memory_limit(pool: ScriptPool, code: str) -> None:
    outcome = await pool.run(code, {})
    assert outcome.error == "the script used more than its memory limit (32 MB)"
    assert (await pool.run("[1, 2].length", {})).value == 2


async def test_a_string_bomb_hits_the_memory_limit(pool: ScriptPool) -> None:
    outcome = await pool.run("let s = 'x';\nwhile (true) s += s;", {})
    assert not outcome.ok
    assert outcome.error is not None
    assert "memory limit" in outcome.error or "string too long" in outcome.error


async def test_deep_recursion_hits_the_stack_limit(pool: ScriptPool) -> None:
    outcome = await pool.run("function dive(n) {\n  return dive(n + 1) + 1;\n}\ndive(0)", {})
    assert outcome.error == (
        "the script exceeded its stack limit (256 KB): "
        "RangeError: Maximum call stack size exceeded (line 2)"
    )
    assert (await pool.run("'still here'", {})).value == "still here"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("const fs = require('fs');\nfs.readFileSync('/etc/passwd')", "require"),
        ("fetch('http://127.0.0.1:5432/')", "fetch"),
        ("process.env", "process"),
        ("std.loadFile('/etc/passwd')", "std"),
        ("os.exec(['id'])", "os"),
        ("Deno.readTextFile('/etc/passwd')", "Deno"),
    ],
)
async def test_host_access_names_are_undefined(pool: ScriptPool, code: str, name: str) -> None:
    outcome = await pool.run(code, {})
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith(f"ReferenceError: {name} is not defined"), outcome.error


async def test_no_host_object_is_reachable(pool: ScriptPool) -> None:
    names = ["require", "fetch", "process", "std", "os", "print", "scriptArgs", "XMLHttpRequest"]
    code = f"{names!r}.filter((name) => typeof globalThis[name] !== 'undefined')"
    assert (await pool.run(code, {})).value == []


async def test_an_output_flood_is_cut_with_a_marker(pool: ScriptPool) -> None:
    outcome = await pool.run("for (let i = 0; i < 100000; i++) console.log('line ' + i);", {})
    assert outcome.ok
    assert outcome.logs[-1] == MARKER
    assert outcome.logs[0] == "line 0"
    kept = outcome.logs[:-1]
    assert sum(len(line.encode()) + 1 for line in kept) <= OUTPUT_CAP
    assert outcome.value == "\n".join(outcome.logs)


async def test_an_endless_flood_of_empty_lines_is_cut_too(pool: ScriptPool) -> None:
    outcome = await pool.run("while (true) console.log();", {})
    assert outcome.error == "the script ran longer than its time limit (1 s) and was stopped"
    assert outcome.logs[-1] == MARKER
    assert len(outcome.logs) == OUTPUT_CAP + 1


async def test_one_huge_line_is_cut_at_the_cap(pool: ScriptPool) -> None:
    outcome = await pool.run("console.log('é'.repeat(10000))", {})
    assert outcome.logs[1:] == [MARKER]
    assert set(outcome.logs[0]) == {"é"}
    assert len(outcome.logs[0].encode()) == OUTPUT_CAP - 2  # 2 bytes per é, 1 for the newline


async def test_a_builtin_that_ignores_the_interrupt_is_killed(pool: ScriptPool) -> None:
    # Array.prototype.join runs in C and never polls QuickJS's interrupt: the parent's
    # wall clock (or the kernel's CPU limit) stops it, and the worker is replaced.
    first = await pool.run("1", {})
    assert first.ok
    pids = pool.pids
    outcome = await pool.run("new Array(1e9).join('')", {})
    assert outcome.error == "the script ran longer than its time limit (1 s) and was stopped"
    assert pids[0] not in pool.pids
    assert (await pool.run("'replaced'", {})).value == "replaced"


async def test_a_starved_worker_is_not_killed_for_being_slow() -> None:
    # A stopped worker uses no CPU, as one starved on a busy machine: past the parent's
    # wall-clock look it is left alone, and its answer counts when it comes.
    pool = ScriptPool(workers=1, timeout_seconds=0.5)
    try:
        running = asyncio.create_task(
            pool.run("function main(args) { return args.n * 2; }", {"n": 21})
        )
        [pid] = await busy_pids(pool)
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(pool.deadlines.look + 0.5)
        os.kill(pid, signal.SIGCONT)
        assert await running == ScriptOutcome(ok=True, value=42)
        assert pool.pids == [pid]
    finally:
        await pool.close()


async def test_a_worker_killed_mid_run_is_replaced(pool: ScriptPool) -> None:
    running = asyncio.create_task(pool.run("while (true) {}", {}))
    [pid] = await busy_pids(pool)
    os.kill(pid, signal.SIGKILL)
    outcome = await running
    assert outcome == ScriptOutcome(ok=False, error=f"{DIED_ERROR} (killed by SIGKILL)")
    after = await pool.run("console.log('Hello World');", {})
    assert after.value == "Hello World"
    assert pid not in pool.pids


async def test_a_worker_killed_while_idle_does_not_fail_the_next_call(pool: ScriptPool) -> None:
    await pool.run("1", {})
    [pid] = pool.pids
    os.kill(pid, signal.SIGKILL)
    # At once, with no wait: whether the pool sees the death before (in /proc) or on the
    # request (the worker's pipe closes), the call runs on a new worker.
    outcome = await pool.run("console.log('Hello World');", {})
    assert outcome.value == "Hello World"
    assert pid not in pool.pids


async def test_a_reused_worker_that_dies_on_the_request_hands_it_to_a_new_one(
    pool: ScriptPool,
) -> None:
    await pool.run("1", {})
    [pid] = pool.pids
    os.kill(pid, signal.SIGSTOP)  # alive in /proc, so it is handed out, but it cannot answer
    running = asyncio.create_task(pool.run("[1, 2]", {}))
    assert await busy_pids(pool) == [pid]
    os.kill(pid, signal.SIGKILL)  # dies holding the request, as a worker killed while idle would
    assert await running == ScriptOutcome(ok=True, value=[1, 2])
    assert pid not in pool.pids


async def test_a_new_worker_that_dies_on_the_script_is_not_asked_twice(pool: ScriptPool) -> None:
    running = asyncio.create_task(pool.run("while (true) {}", {}))
    [pid] = await busy_pids(pool)
    os.kill(pid, signal.SIGKILL)
    outcome = await running
    assert outcome.error == f"{DIED_ERROR} (killed by SIGKILL)"
    assert pool.pids == []  # no second worker was started for it


async def test_a_cancelled_call_does_not_leave_a_busy_worker(pool: ScriptPool) -> None:
    running = asyncio.create_task(pool.run("while (true) {}", {}))
    [pid] = await busy_pids(pool)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert pid not in pool.pids
    assert (await pool.run("40 + 2", {})).value == 42


async def test_a_full_pool_makes_callers_wait_then_fail_clearly() -> None:
    pool = ScriptPool(workers=1, timeout_seconds=1.0, queue_wait_seconds=0.05)
    try:
        running = asyncio.create_task(pool.run("while (true) {}", {}))
        await busy_pids(pool)
        turned_away = await pool.run("1", {})
        assert turned_away == ScriptOutcome(ok=False, error=BUSY_ERROR)
        with pytest.raises(Unavailable, match=BUSY_ERROR):
            await pool.check("1")
        assert (await running).error is not None
        assert (await pool.run("1", {})).value == 1
    finally:
        await pool.close()


async def test_excess_calls_wait_for_a_free_worker(pool: ScriptPool) -> None:
    codes = [f"function main(args) {{ return args.n * {i}; }}" for i in range(8)]
    outcomes = await asyncio.gather(*(pool.run(code, {"n": 3}) for code in codes))
    assert [outcome.value for outcome in outcomes] == [3 * i for i in range(8)]
    assert len(pool.pids) <= 2


async def test_workers_start_lazily_and_close_leaves_no_process() -> None:
    pool = ScriptPool(workers=2)
    assert pool.pids == []
    await asyncio.gather(pool.run("1", {}), pool.run("2", {}))
    pids = pool.pids
    assert len(pids) == 2
    assert all(alive(pid) for pid in pids)
    await pool.close()
    assert pool.pids == []
    assert not [pid for pid in pids if alive(pid)]
    with pytest.raises(Unavailable, match="shut down"):
        await pool.run("1", {})


def confinement(pid: int) -> dict[str, object]:
    """What the kernel says about a process: environment, limits, working directory, fds."""
    proc = Path(f"/proc/{pid}")
    limits = {
        line[:26].strip(): line[26:].split()[:2]
        for line in proc.joinpath("limits").read_text().splitlines()[1:]
    }
    workdir = Path(os.readlink(proc / "cwd"))
    return {
        "environ": proc.joinpath("environ").read_bytes(),
        "limits": limits,
        "workdir entries": list(workdir.iterdir()),
        "fds": sorted(int(fd) for fd in os.listdir(proc / "fd")),
    }


async def test_a_worker_is_confined_by_the_os(pool: ScriptPool) -> None:
    await pool.run("1", {})
    [pid] = pool.pids
    seen = confinement(pid)
    assert seen["environ"] == b""  # no CHATSVC_* setting, no secret
    assert seen["workdir entries"] == []
    assert seen["fds"] == [0, 1, 2]
    limits = seen["limits"]
    assert isinstance(limits, dict)
    assert limits["Max open files"] == ["3", "3"]
    assert limits["Max file size"] == ["0", "0"]
    assert limits["Max core file size"] == ["0", "0"]
    assert limits["Max processes"] == ["0", "0"]
    assert limits["Max address space"][0] != "unlimited"
    assert limits["Max cpu time"][0] != "unlimited"


async def test_the_service_answers_while_a_worker_is_killed(pg_url: str) -> None:
    app = create_app(make_settings(pg_url, script_workers=1, script_timeout_seconds=1.0))
    async with app.router.lifespan_context(app):
        scripts: ScriptPool = services_of(app).tools.scripts
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            running = asyncio.create_task(scripts.run("while (true) {}", {}))
            [pid] = await busy_pids(scripts)
            assert (await client.get("/healthz")).status_code == 200
            os.kill(pid, signal.SIGKILL)
            assert (await running).error == f"{DIED_ERROR} (killed by SIGKILL)"
            assert (await client.get("/healthz")).status_code == 200
            assert (await scripts.run("console.log('Hello World');", {})).value == "Hello World"
            [replacement] = scripts.pids
    assert not alive(replacement)
