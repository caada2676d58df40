"""Run the alembic migrations from code (CLI, tests), and how autogenerate writes this project's
column types into a new migration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config

from chatsvc.kit.db import StrEnumType


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


def render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """migrations/env.py's `render_item`: a StrEnumType column is a plain VARCHAR in the schema,
    so a new migration says `sa.String(length=N)` instead of naming the application's type;
    everything else is rendered as alembic does by default."""
    if type_ == "type" and isinstance(obj, StrEnumType):
        autogen_context.imports.add("import sqlalchemy as sa")
        return f"sa.String(length={obj.length})"
    return False
