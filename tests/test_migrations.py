"""Migrations keep data: an embedded (SQLite) database made by an older version keeps its rows
through every later migration and back. SQLite rebuilds a table to alter it; with foreign keys
on, dropping the old table would cascade to the rows that reference it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import render_python_code
from alembic.operations import ops
from sqlalchemy import Column

from chatsvc.kit.db import StrEnumType
from chatsvc.migrate import alembic_config, render_item, upgrade
from chatsvc.tools.models import ToolKind


def insert(db: sqlite3.Connection, table: str, **given: Any) -> None:
    """A row with the given values, and a plain value for every other required column."""
    values = dict(given)
    for _cid, name, kind, notnull, default, pk in db.execute(f"PRAGMA table_info({table})"):
        if name in values or pk or not notnull or default is not None:
            continue
        kind = kind.upper()
        if "INT" in kind:
            values[name] = 1
        elif "BOOL" in kind:
            values[name] = 0
        elif "DATE" in kind or "TIME" in kind:
            values[name] = "2026-01-01 00:00:00"
        elif "JSON" in kind:
            values[name] = "{}"
        else:
            values[name] = "x"
    marks = ", ".join("?" * len(values))
    columns = ", ".join(f'"{name}"' for name in values)
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        (found,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found)


def test_an_embedded_database_keeps_its_rows_through_every_migration_and_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chatsvc.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0004")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        insert(db, "workspaces", id=1, slug="acme")
        insert(db, "assistants", id=1, workspace_id=1, description="Help desk")
        insert(db, "tools", id=1, workspace_id=1, kind="script", name="adder", config="{}")
        insert(db, "assistant_tools", assistant_id=1, slot="tools", position=0, tool_id=1)
        insert(db, "chats", id=1, workspace_id=1, assistant_id=1, uuid="c" * 36)
        insert(db, "messages", id=1, chat_id=1, msg_num=1, role="user", uuid="m" * 36)
    tables = ("assistants", "tools", "assistant_tools", "chats", "messages")

    upgrade(url, "head")
    assert [count(path, table) for table in tables] == [1, 1, 1, 1, 1]

    command.downgrade(alembic_config(url), "0004")
    assert [count(path, table) for table in tables] == [1, 1, 1, 1, 1]


def test_a_new_migration_writes_a_str_enum_column_as_a_plain_string() -> None:
    column: Column[ToolKind] = Column("kind", StrEnumType(ToolKind, 16), nullable=False)
    upgrade_ops = ops.UpgradeOps(ops=[ops.AddColumnOp("tools", column)])
    code = render_python_code(upgrade_ops, render_item=render_item)
    assert "sa.String(length=16)" in code
    assert "StrEnumType" not in code and "chatsvc" not in code
