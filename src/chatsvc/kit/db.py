"""Database mechanics: declarative base with a naming convention, portable column types,
engine and session factories, and the unit-of-work helper used outside requests."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
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
T = TypeVar("T")
logger = logging.getLogger("chatsvc.db")


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


#: how long a SQLite connection waits for another's write lock before it reports "database is
#: locked" (PRAGMA busy_timeout); writers queue behind each other within it
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: execution option naming how a SQLite transaction begins: "IMMEDIATE" (the default: a unit
#: of work that may write takes the write lock at BEGIN) or "DEFERRED" (a read-only unit: a
#: snapshot, writers go on while it reads); see `snapshot_reads`
SQLITE_BEGIN = "chatsvc_sqlite_begin"


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, ConnectionPoolEntry], None]:
    def pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    return pragmas


def _sqlite_begin(connection: Connection) -> None:
    """Begin each SQLite transaction here, IMMEDIATE unless the unit said it only reads.

    The sqlite3 driver (and aiosqlite on it) begins a transaction itself only before the
    first INSERT/UPDATE/DELETE. A unit of work that reads first (the usual case: look up the
    chat, then claim it) then holds a read snapshot and must upgrade it to write: when another
    connection wrote since the snapshot, SQLite answers "database is locked" at once, without
    waiting for the busy timeout (waiting could not help: the snapshot is stale). `BEGIN
    IMMEDIATE` takes the write lock at the start instead, so concurrent writers queue on the
    busy timeout and each sees the one before it (the loser of a race on a chat reads it
    PROCESSING and answers 409, as on PostgreSQL). It also makes a SAVEPOINT part of the
    transaction (the driver does not begin one for it) instead of committing on its RELEASE.
    Autocommit connections (`create_read_sessionmaker`) begin nothing: each statement is its
    own transaction and reads take no write lock. The driver sees the open transaction and
    neither begins another nor fails to COMMIT or ROLLBACK it."""
    driver = connection.connection.driver_connection
    if driver is None or driver.isolation_level is None or driver.in_transaction:
        return  # autocommit (reads), or a transaction the driver already has
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
    if mode != "IMMEDIATE":
        connection.exec_driver_sql(f"BEGIN {mode}")
        return
    pool = id(connection.engine.pool)
    task = _current_task()
    if task is not None and _WRITERS.get(pool) is task:
        raise RuntimeError(
            "a unit of work that may write was opened on SQLite while this task holds another "
            "one's write lock: it would wait for itself until the busy timeout. Read in an "
            "autocommit session (ReadSessionDep, create_read_sessionmaker) or a snapshot "
            "(snapshot_reads), or do the writes in the one unit of work."
        )
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    if task is not None:
        _WRITERS[pool] = task
        connection.info[_WRITER] = pool


#: per SQLite engine (its pool's id), the task whose transaction holds the write lock, so that a
#: second writing unit the same task opens fails at once instead of waiting for itself
_WRITERS: dict[int, asyncio.Task[Any]] = {}
_WRITER = "chatsvc_sqlite_writer"


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop (a synchronous engine)
        return None


def _sqlite_released(connection: Connection, *_args: Any) -> None:
    if connection.invalidated:
        # A connection invalidated mid-transaction (its task cancelled during a statement) has
        # no pool entry left to read (`info` would raise PendingRollbackError and turn the
        # rollback into a failure); its lock went with it: forget this task's hold.
        task = _current_task()
        for pool, holder in list(_WRITERS.items()):
            if holder is task:
                _WRITERS.pop(pool, None)
        return
    pool = connection.info.pop(_WRITER, None)
    if pool is not None:
        _WRITERS.pop(pool, None)


def _sqlite_checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    pool = record.info.pop(_WRITER, None)
    if pool is not None:
        _WRITERS.pop(pool, None)


def is_lock_error(exc: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY) or "database table is locked"
    (SQLITE_LOCKED): another connection held the lock past the busy timeout. Retrying the
    whole unit of work may succeed; nothing of it was kept."""
    if not isinstance(exc, OperationalError):
        return False
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "database is locked" in str(exc.orig) or "table is locked" in str(exc.orig)


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


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
) -> AsyncEngine:
    """Build the async engine; nothing connects until first use."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        sync_engine: Engine = engine.sync_engine
        event.listen(sync_engine, "connect", _sqlite_pragmas(sqlite_busy_timeout_ms))
        event.listen(sync_engine, "begin", _sqlite_begin)
        event.listen(sync_engine, "commit", _sqlite_released)
        event.listen(sync_engine, "rollback", _sqlite_released)
        event.listen(sync_engine.pool, "checkin", _sqlite_checked_in)
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


#: how often a unit of work that met a lock error is run again before the error is raised (on
#: SQLite; PostgreSQL has no such error)
LOCK_ATTEMPTS = 4


async def in_unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = LOCK_ATTEMPTS,
) -> T:
    """`work(session)` in one unit of work (`unit_of_work`), committed once. On SQLite, a unit
    that meets a lock error (another writer held the database past the busy timeout) is rolled
    back, nothing of it kept, and run again from the start, up to `attempts` times in all,
    after a short random pause; then the error is raised (`kit.web` answers it 503).
    `work` must have no effect outside the session (the unit may run more than once)."""
    for attempt in range(1, attempts + 1):
        try:
            async with unit_of_work(sessionmaker) as session:
                return await work(session)
        except OperationalError as exc:
            if attempt == attempts or not is_lock_error(exc):
                raise
            logger.warning("database locked; unit of work retried (attempt %d)", attempt + 1)
            await asyncio.sleep(random.uniform(0.05, 0.2) * attempt)  # noqa: S311 - jitter
    raise AssertionError("unreachable")


def snapshot_reads(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions for a unit of work that only reads but wants one consistent view (an export,
    a long scan): on SQLite its transaction begins DEFERRED, a snapshot that takes no write
    lock, so writers go on while it reads. Never write through one (the upgrade to a write
    lock may fail at once). Elsewhere, and on a sessionmaker bound to a connection (tests),
    the same sessionmaker."""
    bind = sessionmaker.kw.get("bind")
    if not isinstance(bind, AsyncEngine) or bind.dialect.name != "sqlite":
        return sessionmaker
    found = _SNAPSHOTS.get(sessionmaker)
    if found is None:
        found = async_sessionmaker(
            bind.execution_options(**{SQLITE_BEGIN: "DEFERRED"}),
            **{key: value for key, value in sessionmaker.kw.items() if key != "bind"},
        )
        _SNAPSHOTS[sessionmaker] = found
    return found


_SNAPSHOTS: weakref.WeakKeyDictionary[
    async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]
] = weakref.WeakKeyDictionary()
