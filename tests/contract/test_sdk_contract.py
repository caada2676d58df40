"""The contract check: SDK generators take chatsvc's OpenAPI document as it is written
(`chatsvc openapi --output`), and what they make works.

- openapi-python-client generates a Python client without one warning or error; `mypy --strict`
  passes on the generated package together with scenario.py, which uses it;
- openapi-typescript generates TypeScript types without one warning or error; `tsc --strict`
  passes on them together with usage.ts, which uses them;
- scenario.py drives a real server (uvicorn on loopback, the test PostgreSQL) with the generated
  client: create an assistant, chat, read, like, report.

Everything generated goes to a temporary directory. The generators are pinned and installed
outside the project's virtualenv by `make sdk-tools` (openapi-python-client needs an older httpx
than chatsvc: tests/contract/generator-requirements.txt; the Node packages: package.json and
package-lock.json here, installed with `npm ci`). Generator limitations the check works around
are listed, with the reason, in tests/contract/LIMITATIONS.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import chatsvc
from tests.fixtures.app import Live

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE_BIN = HERE / "node_modules" / ".bin"
PACKAGE = "chatsvc_client"
TIMEOUT = 120.0


def generator_command() -> Path:
    found = os.environ.get("CHATSVC_OPENAPI_PYTHON_CLIENT")
    return Path(found) if found else ROOT / ".venv-sdk" / "bin" / "openapi-python-client"


def need(tool: Path) -> Path:
    if not os.access(tool, os.X_OK):
        pytest.fail(f"{tool} is not installed: run `make sdk-tools` (see DEVELOPERS.md)")
    return tool


@dataclass
class Run:
    """A finished command: its exit status and what it printed (stdout and stderr together)."""

    command: list[str]
    returncode: int
    output: str

    def report(self) -> str:
        return f"$ {' '.join(self.command)}\nexit status {self.returncode}\n{self.output}"


def run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> Run:
    args = [str(part) for part in command]
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(args, done.returncode, done.stdout)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contract")


@pytest.fixture(scope="module")
def document(workdir: Path) -> Path:
    """The OpenAPI document, written as a user writes it."""
    path = workdir / "openapi.json"
    # The chatsvc this test imports (a relative PYTHONPATH would not hold in the work directory).
    source = str(Path(chatsvc.__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    done = run([sys.executable, "-m", "chatsvc.cli", "openapi", "--output", path], workdir, env)
    assert done.returncode == 0, done.report()
    return path


@pytest.fixture(scope="module")
def python_client(workdir: Path, document: Path) -> tuple[Path, Run]:
    """openapi-python-client's run on the document, with the directory holding the package."""
    generator = need(generator_command())
    out = workdir / "python"
    out.mkdir()
    # The generator's post hooks (ruff) run from PATH: the ruff installed beside it.
    env = {**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = run(
        [
            generator,
            "generate",
            "--path",
            document,
            "--config",
            HERE / "openapi-python-client.yaml",
            "--meta",
            "none",
            "--output-path",
            out / PACKAGE,
            "--fail-on-warning",
        ],
        workdir,
        env,
    )
    return out, done


@pytest.fixture(scope="module")
def typescript_types(workdir: Path, document: Path) -> tuple[Path, Run]:
    """openapi-typescript's run on the document, with the directory holding schema.ts."""
    out = workdir / "typescript"
    out.mkdir()
    done = run(
        [
            need(NODE_BIN / "openapi-typescript"),
            document,
            "--output",
            out / "schema.ts",
            # A field is optional when its schema does not list it as required (LIMITATIONS.md).
            "--default-non-nullable",
            "false",
        ],
        workdir,
    )
    return out, done


def generated(result: tuple[Path, Run], made: str) -> Path:
    """The directory of what a generator made; a generator that warned still made it (its warnings
    fail their own test), one that stopped with an error did not."""
    out, done = result
    if not (out / made).exists():
        pytest.fail(f"the generator did not write {made}:\n{done.report()}")
    return out


def test_python_client_generates_without_warnings(python_client: tuple[Path, Run]) -> None:
    out, done = python_client
    # --fail-on-warning makes any warning an exit status of 1; the text is checked as well, so
    # a generator that stops honouring the flag cannot hide one.
    assert done.returncode == 0, done.report()
    for word in ("Warning", "Error", "Unable to"):
        assert word not in done.output, done.report()
    assert (out / PACKAGE / "client.py").is_file(), done.report()


def test_python_client_type_checks_strictly(python_client: tuple[Path, Run], workdir: Path) -> None:
    out = generated(python_client, PACKAGE)
    shutil.copy(HERE / "scenario.py", out / "scenario.py")
    config = workdir / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\npython_version = 3.11\n")
    done = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            config,
            "--cache-dir",
            workdir / "mypy-cache",
            PACKAGE,
            "scenario.py",
        ],
        out,
    )
    assert done.returncode == 0, done.report()


def test_typescript_types_generate_without_warnings(typescript_types: tuple[Path, Run]) -> None:
    out, done = typescript_types
    assert done.returncode == 0, done.report()
    # openapi-typescript prints its banner and one line per written file; anything else (its
    # warnings, the Redocly lint of the document) is a finding.
    unexpected = [
        line
        for line in done.output.splitlines()
        if line.strip() and not line.startswith(("✨ openapi-typescript", "🚀 "))
    ]
    assert not unexpected, done.report()
    assert (out / "schema.ts").is_file(), done.report()


def test_typescript_types_type_check_strictly(typescript_types: tuple[Path, Run]) -> None:
    out = generated(typescript_types, "schema.ts")
    shutil.copy(HERE / "usage.ts", out / "usage.ts")
    done = run(
        [
            need(NODE_BIN / "tsc"),
            "--strict",
            "--noEmit",
            "--noUnusedLocals",
            "--noUnusedParameters",
            "--exactOptionalPropertyTypes",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "schema.ts",
            "usage.ts",
        ],
        out,
    )
    assert done.returncode == 0, done.report()


async def test_scenario_with_the_generated_python_client(
    python_client: tuple[Path, Run], live: Live
) -> None:
    out = generated(python_client, PACKAGE)
    env = {**os.environ, "PYTHONPATH": str(out)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "scenario.py"),
        live.base_url,
        live.admin_key,
        cwd=out,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(TIMEOUT):
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert text.splitlines()[-1] == "scenario passed", text
