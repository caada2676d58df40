"""Database mechanics: declarative base with a naming convention, portable column types,
engine and session factories, and the unit-of-work helper used outside requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")
#: Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
IdType = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_utc(value: datetime) -> str:
    """A moment as every response writes it (`format: date-time`): ISO 8601 in UTC with `Z`,
    fractional seconds only when there are some: what pydantic writes for the response models,
    used for the moments a response puts into text by hand (messages, error details)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on both dialects (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A StrEnum kept as its value in a VARCHAR(length): the schema is a plain string column (no
    database enum, no CHECK constraint), Python sees members. Writing anything that is not a
    member's value raises ValueError before it reaches the database, and so does reading one
    (a row written outside the application with a value the code does not know): nothing
    unknown passes silently. Comparisons bind the same way, so `column == "user"` still works
    and a non-member literal raises instead of matching nothing."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int) -> None:
        super().__init__(length)
        self.enum_class = enum_class
        self.length = length
        self._members: dict[str, E] = {member.value: member for member in enum_class}

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return self._member(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        if value is None:
            return None
        return self._member(value)

    def __repr__(self) -> str:
        return f"StrEnumType({self.enum_class.__name__}, {self.length})"

    def _member(self, value: str) -> E:
        try:
            return self._members[value]
        except (KeyError, TypeError):
            allowed = ", ".join(self._members)
            raise ValueError(
                f"{value!r} is not a value of {self.enum_class.__name__} (one of {allowed})"
            ) from None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[dict[str, Any]]: JSONType,
        list[Any]: JSONType,
        list[str]: JSONType,
    }


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_savepoint(connection: Connection, _name: str | None) -> None:
    """The sqlite3 driver opens a transaction only before DML, so a SAVEPOINT that comes first
    would open one itself, and its RELEASE would commit the unit of work early (a later
    rollback would leave half of it behind). Open the transaction first. (Beginning every
    transaction at once instead would make concurrent writers fail with "database is locked"
    instead of waiting their turn.)"""
    driver = connection.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("BEGIN")
        cursor.close()


#: what a process asks its database, by kind: statements, and the BEGIN / COMMIT / ROLLBACK
#: round trips around them (the benchmark reads it to count a turn's round trips)
DB_ROUND_TRIPS = Counter("chatsvc_db_round_trips_total", "Round trips to the database", ["kind"])
_COUNTED = {
    kind: DB_ROUND_TRIPS.labels(kind) for kind in ("statement", "begin", "commit", "rollback")
}


def _count(kind: str) -> Callable[..., None]:
    counter = _COUNTED[kind]
    if kind == "statement":

        def count(*_args: Any, **_kwargs: Any) -> None:
            counter.inc()

        return count

    def count_transaction(connection: Connection, *_args: Any) -> None:
        # An autocommit connection sends no BEGIN, COMMIT or ROLLBACK.
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            counter.inc()

    return count_transaction


def _drop_closed(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: Any) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        # The pool discards this connection and checks out (or opens) another.
        raise DisconnectionError("the database closed this connection")


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """Build the async engine; nothing connects until first use."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        sync_engine: Engine = engine.sync_engine
        event.listen(sync_engine, "connect", _sqlite_pragmas)
        event.listen(sync_engine, "savepoint", _sqlite_savepoint)
    else:
        # No pre-ping: with asyncpg it costs three round trips per checkout (BEGIN, a query,
        # ROLLBACK). A connection the server closed is noticed by the driver's socket and
        # replaced at checkout instead (`_drop_closed`), at no round trip.
        engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine.sync_engine, "checkout", _drop_closed)
    for kind, name in (
        ("statement", "before_cursor_execute"),
        ("begin", "begin"),
        ("commit", "commit"),
        ("rollback", "rollback"),
    ):
        event.listen(engine.sync_engine, name, _count(kind))
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads: each statement runs on its own (autocommit), so a read costs its
    queries only, not a BEGIN and a COMMIT around them. Never write through one: two writes
    would not be atomic."""
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A short transaction: commit on success, roll back on error."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
