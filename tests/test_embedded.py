"""The embedded default (`make run`): SQLite, first-start bootstrap, the CLI, a real server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth import service as auth_service
from chatsvc.auth.bootstrap import bootstrap
from chatsvc.auth.models import Role
from chatsvc.cli import _print_bootstrap
from chatsvc.config import Environment, Settings

ROOT = Path(__file__).resolve().parents[1]
CHATSVC = [sys.executable, "-m", "chatsvc.cli"]


async def test_first_start_makes_a_key_and_a_demo_assistant(
    session: AsyncSession, settings: Settings
) -> None:
    result = await bootstrap(session, settings)
    assert result is not None and result.generated_key is not None
    auth = await auth_service.authenticate(session, result.generated_key)
    assert auth is not None and auth.role is Role.ADMIN
    from chatsvc.assistants import service as assistant_service

    demo = await assistant_service.get_assistant(
        session, auth.workspace_id, result.demo_assistant_id or 0
    )
    assert (demo.retrieval_faq, demo.retrieval_fixed_faq, demo.retrieval_lessons) == (2, 1, 1)
    assert await bootstrap(session, settings) is None  # a second start changes nothing


async def test_configured_bootstrap_key_is_used_and_never_printed(
    session: AsyncSession, settings: Settings
) -> None:
    configured = settings.model_copy(
        update={
            "bootstrap_api_key": SecretStr("csk_configured-key-0123456789"),
            "demo_assistant": False,
        }
    )
    result = await bootstrap(session, configured)
    assert result is not None
    assert result.generated_key is None and result.demo_assistant_id is None
    assert await auth_service.authenticate(session, "csk_configured-key-0123456789") is not None


def test_the_printed_curl_line_works_in_a_shell(capsys: pytest.CaptureFixture[str]) -> None:
    """With a configured key the banner names the variable: the line must expand it when pasted
    into a shell (double quotes), and it points at the chat page too."""
    _print_bootstrap(None, 7, "127.0.0.1", 8000)
    printed = capsys.readouterr().out
    [line] = [text for text in printed.splitlines() if text.startswith("Try:")]
    command = line.removeprefix("Try:").strip().replace("curl", "printf '%s\\n'", 1)
    env = {"PATH": os.environ["PATH"], "CHATSVC_BOOTSTRAP_API_KEY": "csk_from-the-environment"}
    shell = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
    assert "X-Api-Key: csk_from-the-environment" in shell.stdout.splitlines(), shell
    assert "http://127.0.0.1:8000/ui/" in printed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSVC_")}
    env["CHATSVC_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    env.update(extra)
    return env


def test_cli_creates_workspaces_and_keys(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run = {"env": env, "cwd": ROOT, "capture_output": True, "text": True, "timeout": 60}
    assert subprocess.run([*CHATSVC, "migrate"], check=False, **run).returncode == 0  # type: ignore[call-overload]
    made = subprocess.run([*CHATSVC, "create-workspace", "team"], check=False, **run)  # type: ignore[call-overload]
    assert made.returncode == 0 and "team" in made.stdout
    again = subprocess.run([*CHATSVC, "create-workspace", "team"], check=False, **run)  # type: ignore[call-overload]
    assert again.returncode == 1 and "already exists" in again.stderr
    key = subprocess.run(  # type: ignore[call-overload]
        [*CHATSVC, "create-api-key", "--workspace", "team", "--role", "member", "--user", "bob"],
        check=False,
        **run,
    )
    assert key.returncode == 0 and key.stdout.strip().startswith("csk_")
    orphan = subprocess.run(  # type: ignore[call-overload]
        [*CHATSVC, "create-api-key", "--workspace", "team", "--role", "member"], check=False, **run
    )
    assert orphan.returncode == 1 and "username" in orphan.stderr
    spec = subprocess.run([*CHATSVC, "openapi", "-o", str(tmp_path / "o.json")], check=False, **run)  # type: ignore[call-overload]
    assert spec.returncode == 0 and (tmp_path / "o.json").read_text().startswith("{")


def test_make_run_flow_serves_the_demo_assistant_on_sqlite(tmp_path: Path) -> None:
    """What a newcomer does: migrate, serve, copy the printed key, list assistants."""
    env = _env(tmp_path)
    subprocess.run([*CHATSVC, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen(
        [*CHATSVC, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        output = ""
        deadline = time.monotonic() + 30
        while "Uvicorn running" not in output and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            output += line
        match = re.search(r"\b(csk_[A-Za-z0-9_-]{20,})\b", output)
        assert match, output
        headers = {"X-Api-Key": match.group(1)}
        base = f"http://127.0.0.1:{port}"
        assert f'curl -H "X-Api-Key: {match.group(1)}" {base}/assistants/' in output
        listing = httpx.get(f"{base}/assistants/info/", headers=headers, timeout=10).json()
        assert listing["count"] == 1
        assert listing["results"][0]["description"] == "Demo assistant"
        created = httpx.post(
            f"{base}/assistants/", json={"description": "Mine"}, headers=headers, timeout=10
        )
        assert created.status_code == 201
        assert httpx.get(f"{base}/readyz", timeout=10).json()["checks"] == {"database": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_production_refuses_to_start_with_placeholders(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CHATSVC, "serve"],
        env=_env(tmp_path, CHATSVC_ENV="production"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "CHATSVC_SECRET_KEY" in result.stderr


SECRET_KEY = "s3cr3t-key-that-must-never-show-0123456789"
BOOTSTRAP_KEY = "csk_bootstrap-key-that-must-never-show-42"
UPSTREAM_KEY = "sk-upstream-key-that-must-never-show-7"


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        ({"CHATSVC_PAGE_SIZE_DEFAULT": "500"}, "CHATSVC_PAGE_SIZE_DEFAULT must not exceed"),
        ({"CHATSVC_ENV": "production", "CHATSVC_SECRET_KEY": "changeme"}, "CHATSVC_SECRET_KEY"),
        ({"CHATSVC_PORT": BOOTSTRAP_KEY}, "CHATSVC_PORT: Input should be a valid integer"),
        (
            {
                "CHATSVC_GENERATOR_APPS": json.dumps(
                    {"gpt": {"kind": "openai", "api_key": UPSTREAM_KEY, "base_url": "nowhere"}}
                )
            },
            "CHATSVC_GENERATOR_APPS[gpt][base_url]: Input should be a valid URL",
        ),
        ({"CHATSVC_GENERATOR_APPS": f'{{"gpt": {{"api_key": "{UPSTREAM_KEY}"'}, "generator_apps"),
    ],
    ids=["model-rule", "production-placeholder", "field-type", "nested-json", "broken-json"],
)
def test_a_settings_error_names_the_variable_and_never_a_secret(
    tmp_path: Path, broken: dict[str, str], named: str
) -> None:
    secrets = {
        "CHATSVC_SECRET_KEY": SECRET_KEY,
        "CHATSVC_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY,
        "CHATSVC_GENERATOR_APPS": json.dumps(
            {
                "offline": {"kind": "offline"},
                "gpt": {
                    "kind": "openai",
                    "api_key": UPSTREAM_KEY,
                    "base_url": "http://127.0.0.1:9/v1",
                    "model": "m",
                },
            }
        ),
    }
    result = subprocess.run(
        [*CHATSVC, "migrate"],
        env=_env(tmp_path, **{**secrets, **broken}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert named in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    for secret in (SECRET_KEY, BOOTSTRAP_KEY, UPSTREAM_KEY):
        # Not even a part of one: no 6 characters of it in a row.
        parts = {secret[i : i + 6] for i in range(len(secret) - 5)}
        shown = [part for part in parts if part in result.stderr]
        assert not shown, (shown, result.stderr)


@pytest.mark.parametrize("flag", ["--help"])
def test_cli_help_lists_the_commands(flag: str) -> None:
    out = subprocess.run([*CHATSVC, flag], capture_output=True, text=True, check=True).stdout
    for command in ("serve", "migrate", "openapi", "create-workspace", "create-api-key"):
        assert command in out


async def test_production_first_start_generates_nothing(
    session: AsyncSession, settings: Settings
) -> None:
    production = settings.model_copy(
        update={"env": Environment.PRODUCTION, "secret_key": SecretStr("s" * 40)}
    )
    assert await bootstrap(session, production) is None
    with_key = production.model_copy(
        update={"bootstrap_api_key": SecretStr("csk_production-key-0123456789")}
    )
    result = await bootstrap(session, with_key)
    assert result is not None
    assert result.generated_key is None and result.demo_assistant_id is None
