"""The fuzz stage of `make test` (and, longer, `make fuzz`): schemathesis generates requests for
every operation of the OpenAPI document, valid and invalid, and sends them to a live server on
each backend (embedded SQLite with the in-process queue; PostgreSQL with Redis and arq),
authenticated with a real admin key. Five checks must hold for every response:
not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance and negative_data_rejection. The few accepted exceptions are listed,
with their reasons, in tests/fuzz/suppressions.py (the one place for them).

Bounded and reproducible: a fixed seed and a fixed number of examples per operation
(CHATSVC_FUZZ_EXAMPLES, default 3 here; `make fuzz` raises it), the generated data derandomised.
The run's JSON report and the CLI's output are written to test-artifacts/fuzz/<backend>/."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from chatsvc.config import Settings
from tests.fixtures.app import live_tenant, make_settings
from tests.fixtures.chats import make_assistant, new_chat
from tests.fixtures.db import TEST_DB, migrated_database
from tests.fuzz.suppressions import config_toml

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
EXAMPLES = int(os.environ.get("CHATSVC_FUZZ_EXAMPLES", "3"))
PHASES = os.environ.get("CHATSVC_FUZZ_PHASES", "examples,coverage,fuzzing")
SEED = int(os.environ.get("CHATSVC_FUZZ_SEED", "20261208"))
ARTIFACTS = Path(os.environ.get("CHATSVC_FUZZ_ARTIFACTS", "test-artifacts/fuzz"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
#: Half the integer path ids are taken from the ids of resources that exist (`seed`, and what the
#: run itself creates first), so operations on one resource reach their logic instead of a 404.
TEST_DATA = """
[dictionaries.ids]
values = [1, 2]

[parameters]
"path.id" = { dictionary = "ids", probability = 0.5 }
"path.assistant" = { dictionary = "ids", probability = 0.5 }
"path.question" = { dictionary = "ids", probability = 0.5 }
"path.lesson" = { dictionary = "ids", probability = 0.5 }
"""


async def seed(admin: httpx.AsyncClient) -> None:
    """Resources with the ids TEST_DATA names: an assistant with a chat, and a script."""
    assistant = await make_assistant(admin)
    await new_chat(admin, assistant)
    script = await admin.post("/tools/scripts/", json={"name": "seed", "code": "1;"})
    assert script.status_code == 201, script.text


def fuzz_settings(database_url: str, **overrides: object) -> Settings:
    """The test settings, with no call out: generated requests name webhook, MCP and retrieval
    URLs on arbitrary hosts (some exist: 0.com), so the outbound policy admits one port no
    generated URL uses (such URLs are refused with 400, as any URL the policy refuses), and a
    job that still fails gives up at once instead of retrying past the run."""
    values: dict[str, object] = {
        "outbound_allowed_ports": [9],
        "webhook_attempts": 1,
        "webhook_base_delay_seconds": 0,
        "job_max_attempts": 1,
        "outbound_timeout_seconds": 2,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


async def fuzz(settings: Settings, backend: str) -> None:
    out = (ARTIFACTS / backend).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for report in (*out.glob("json-*.json"), *out.glob("junit-*.xml")):
        report.unlink()  # the reports of earlier runs
    config = out / "schemathesis.toml"
    config.write_text(config_toml() + TEST_DATA)
    async with live_tenant(settings) as live:
        # What the server logs of its errors (a 500's traceback, a failed job) goes next to the
        # report; added once uvicorn has configured logging (which closes earlier handlers).
        errors = logging.FileHandler(out / "server-errors.log", mode="w")
        errors.setLevel(logging.ERROR)
        logging.getLogger().addHandler(errors)
        await seed(live.admin)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{live.base_url}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            str(SEED),
            "--phases",
            PHASES,
            "--workers",
            "1",
            "--no-shrink",
            "--request-timeout",
            "30",
            "--header",
            f"X-Api-Key: {live.admin_key}",
            "--report",
            "json,junit",
            "--report-dir",
            str(out),
            "--suppress-health-check",
            "all",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"},
            # What schemathesis keeps between runs (.schemathesis/) stays in the artifacts.
            cwd=out,
        )
        output, _ = await process.communicate()
        elapsed = time.monotonic() - started
    logging.getLogger().removeHandler(errors)
    errors.close()
    text = output.decode(errors="replace")
    (out / "output.txt").write_text(text)
    print(f"\n[{backend}] {figures(out, elapsed)}")
    assert process.returncode == 0, f"schemathesis found failures on {backend}:\n{text[-20000:]}"


def figures(out: Path, elapsed: float) -> str:
    """One line of what the run did, from its JSON report: operations, test cases, failures."""
    reports = list(out.glob("json-*.json"))
    if not reports:
        return f"no JSON report ({elapsed:.0f} s)"
    report = json.loads(reports[0].read_text())
    failures = {f["title"]: f["count"] for f in report["failures"]} or "none"
    return (
        f"{report['operations']['tested']} operations, "
        f"{report['test_cases']['generated']} test cases, failures: {failures}, "
        f"seed {report['seed']}, {elapsed:.0f} s"
    )


pytestmark = pytest.mark.fuzz


@pytest.mark.sqlite
async def test_no_fuzz_failure_on_sqlite() -> None:
    with tempfile.TemporaryDirectory() as directory:
        from chatsvc.migrate import upgrade

        url = f"sqlite+aiosqlite:///{Path(directory) / 'fuzz.db'}"
        await asyncio.to_thread(upgrade, url)
        await fuzz(fuzz_settings(url, redis_url=None, job_queue="in-process"), "sqlite")


async def test_no_fuzz_failure_on_postgresql() -> None:
    async with migrated_database(f"{TEST_DB}_fuzz") as url:
        await fuzz(fuzz_settings(url), "postgresql")
