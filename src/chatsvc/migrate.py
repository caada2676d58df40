"""Run the alembic migrations from code (CLI, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    """The project's alembic.ini (from CHATSVC_ALEMBIC_INI, the working directory or the source
    checkout) pointed at `database_url`."""
    candidates = [
        Path(os.environ["CHATSVC_ALEMBIC_INI"]) if "CHATSVC_ALEMBIC_INI" in os.environ else None,
        Path.cwd() / "alembic.ini",
        Path(__file__).resolve().parents[2] / "alembic.ini",
    ]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            config = Config(str(candidate))
            config.attributes["url"] = database_url
            return config
    raise FileNotFoundError(
        "alembic.ini not found: run from the project directory or set CHATSVC_ALEMBIC_INI"
    )


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
