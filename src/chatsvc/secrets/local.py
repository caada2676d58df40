"""The local secret backend (the embedded default): values encrypted at rest in the `secrets`
table with Fernet, its key derived from CHATSVC_SECRET_KEY with HKDF-SHA256, each token bound to
its workspace and name. Also the re-encryption that rotating the key needs."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.config import Settings
from chatsvc.kit.db import snapshot_reads, unit_of_work, utcnow
from chatsvc.kit.errors import Conflict, NotFound, Unavailable
from chatsvc.secrets.models import StoredSecret
from chatsvc.secrets.store import (
    KEEP,
    Keep,
    Origins,
    SecretItem,
    validate_name,
    validate_origins,
    validate_value,
)

logger = logging.getLogger("chatsvc.secrets")

#: HKDF's fixed salt and context: CHATSVC_SECRET_KEY is already random (production refuses less
#: than 32 characters), so the salt only separates this use of the key from any other.
_HKDF_SALT = b"chatsvc/secrets"
_HKDF_INFO = b"chatsvc local secret store: fernet key v1"
_ROTATE_BATCH = 500


def derive_fernet_key(secret_key: str) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) derived from a CHATSVC_SECRET_KEY."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8")))


class UndecryptableSecret(Exception):
    """A token that no configured key opens, or that belongs to another workspace or name."""


class SecretCipher:
    """Fernet under the first key; decryption also tries the others (during a rotation).

    The plaintext is `{"w": workspace_id, "n": lower-cased name, "v": value}`, checked on the way
    out: a token copied into another row (another workspace's, by someone with write access to the
    database) does not decrypt there."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        if not secret_keys:
            raise ValueError("SecretCipher needs at least one key")
        self._fernet = MultiFernet([Fernet(derive_fernet_key(key)) for key in secret_keys])

    def encrypt(
        self, workspace_id: int, name: str, value: str, allowed_origins: Origins = None
    ) -> str:
        fields: dict[str, Any] = {"w": workspace_id, "n": name.lower(), "v": value}
        if allowed_origins is not None:
            fields["o"] = list(allowed_origins)
        payload = json.dumps(fields)
        return self._fernet.encrypt(payload.encode("utf-8")).decode("ascii")

    def decrypt(self, workspace_id: int, name: str, token: str) -> str:
        return self.open(workspace_id, name, token)[0]

    def open(self, workspace_id: int, name: str, token: str) -> tuple[str, Origins]:
        """The value and the allowed origins sealed with it: the token is what counts, so a
        row whose `allowed_origins` column was widened in the database (without the key) does
        not widen where the value goes."""
        try:
            payload = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, UnicodeError, ValueError):
            raise UndecryptableSecret from None
        if (
            not isinstance(payload, dict)
            or payload.get("w") != workspace_id
            or payload.get("n") != name.lower()
            or not isinstance(payload.get("v"), str)
        ):
            raise UndecryptableSecret
        origins = payload.get("o")
        if origins is not None and (
            not isinstance(origins, list) or not all(isinstance(o, str) for o in origins)
        ):
            raise UndecryptableSecret
        value: str = payload["v"]
        return value, None if origins is None else tuple(origins)

    def rotate(self, token: str) -> str:
        """The token re-encrypted under the first key (raises UndecryptableSecret when no key
        opens it)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UndecryptableSecret from None


def _origins(column: list[str] | None) -> Origins:
    return None if column is None else tuple(column)


def _column(origins: Origins) -> list[str] | None:
    return None if origins is None else list(origins)


def _named(workspace_id: int, name: str) -> ColumnElement[bool]:
    """The workspace's secret of that name, whatever its case (served by the unique index)."""
    return and_(
        StoredSecret.workspace_id == workspace_id,
        func.lower(StoredSecret.name) == name.lower(),
    )


def _not_found(name: str) -> NotFound:
    return NotFound(f"No secret named '{name}' in this workspace.", code="secret_not_found")


def _exists(name: str) -> Conflict:
    return Conflict(
        f"A secret named '{name}' already exists in this workspace (names are case-insensitive); "
        "PUT /secrets/ changes its value.",
        code="secret_exists",
    )


class LocalSecretStore:
    """SecretStore on the service's database. Each call is one short transaction of its own."""

    def __init__(
        self, cipher: SecretCipher, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.cipher = cipher
        #: public so that tests can bind the store to their rolled-back connection
        self.sessionmaker = sessionmaker

    @classmethod
    def from_settings(
        cls, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> LocalSecretStore:
        return cls(SecretCipher([settings.secret_key.get_secret_value()]), sessionmaker)

    async def list(self, workspace_id: int) -> list[SecretItem]:
        # Reads take no write lock on SQLite (a request may hold it while it reads secrets).
        async with unit_of_work(snapshot_reads(self.sessionmaker)) as session:
            rows = await session.execute(
                select(StoredSecret.name, StoredSecret.allowed_origins)
                .where(StoredSecret.workspace_id == workspace_id)
                .order_by(func.lower(StoredSecret.name))
            )
            return [SecretItem(name, "", _origins(origins)) for name, origins in rows]

    async def get(self, workspace_id: int, name: str) -> str:
        return (await self.read(workspace_id, name)).value

    async def read(self, workspace_id: int, name: str) -> SecretItem:
        validate_name(name)
        async with unit_of_work(snapshot_reads(self.sessionmaker)) as session:
            return await self._open(session, workspace_id, name)

    async def _open(self, session: AsyncSession, workspace_id: int, name: str) -> SecretItem:
        """The stored secret `name`, decrypted (its value and the origins sealed with it)."""
        row = (
            await session.execute(
                select(StoredSecret.name, StoredSecret.ciphertext).where(_named(workspace_id, name))
            )
        ).one_or_none()
        if row is None:
            raise _not_found(name)
        try:
            value, origins = self.cipher.open(workspace_id, row.name, row.ciphertext)
        except UndecryptableSecret:
            raise self._undecryptable(workspace_id, row.name) from None
        return SecretItem(row.name, value, origins)

    @staticmethod
    def _undecryptable(workspace_id: int, name: str) -> Unavailable:
        logger.warning(
            "secret %r of workspace %s cannot be decrypted with CHATSVC_SECRET_KEY",
            name,
            workspace_id,
        )
        return Unavailable(
            f"Secret '{name}' cannot be decrypted with the configured CHATSVC_SECRET_KEY: "
            "the key was changed without re-encrypting the stored secrets (see 'Rotating the "
            "key' in docs/secrets.md), or the stored row was altered.",
            code="secret_undecryptable",
        )

    async def create(
        self, workspace_id: int, name: str, value: str, allowed_origins: Origins = None
    ) -> SecretItem:
        validate_name(name)
        validate_value(value)
        origins = validate_origins(allowed_origins)
        ciphertext = self.cipher.encrypt(workspace_id, name, value, origins)
        try:
            async with unit_of_work(self.sessionmaker) as session:
                existing = await session.scalar(
                    select(StoredSecret.name).where(_named(workspace_id, name))
                )
                if existing is not None:
                    raise _exists(existing)
                session.add(
                    StoredSecret(
                        workspace_id=workspace_id,
                        name=name,
                        ciphertext=ciphertext,
                        allowed_origins=_column(origins),
                    )
                )
                await session.flush()
        except IntegrityError:
            # A concurrent create of the same name won the race (the unique index said so).
            async with unit_of_work(self.sessionmaker) as session:
                existing = await session.scalar(
                    select(StoredSecret.name).where(_named(workspace_id, name))
                )
            if existing is None:
                raise
            raise _exists(existing) from None
        return SecretItem(name, value, origins)

    async def update(
        self,
        workspace_id: int,
        name: str,
        value: str,
        allowed_origins: Origins | Literal[Keep.KEEP] = KEEP,
    ) -> SecretItem:
        validate_name(name)
        validate_value(value)
        async with unit_of_work(self.sessionmaker) as session:
            if allowed_origins is KEEP:
                origins = (await self._open(session, workspace_id, name)).allowed_origins
            else:
                origins = validate_origins(allowed_origins)
            ciphertext = self.cipher.encrypt(workspace_id, name, value, origins)
            stored = await session.scalar(
                update(StoredSecret)
                .where(_named(workspace_id, name))
                .values(
                    ciphertext=ciphertext, allowed_origins=_column(origins), updated_at=utcnow()
                )
                .returning(StoredSecret.name)
                .execution_options(synchronize_session=False)
            )
        if stored is None:
            raise _not_found(name)
        return SecretItem(stored, value, origins)

    async def delete(self, workspace_id: int, name: str) -> SecretItem:
        validate_name(name)
        async with unit_of_work(self.sessionmaker) as session:
            stored = await session.scalar(
                delete(StoredSecret)
                .where(_named(workspace_id, name))
                .returning(StoredSecret.name)
                .execution_options(synchronize_session=False)
            )
        if stored is None:
            raise _not_found(name)
        return SecretItem(stored, "")

    async def close(self) -> None:
        return None


async def reencrypt_all(
    sessionmaker: async_sessionmaker[AsyncSession], new_key: str, previous_keys: Sequence[str]
) -> int:
    """Re-encrypt every stored secret under `new_key`, in one transaction: all rows or none.

    Rows already under `new_key` are re-encrypted too (so running it twice is harmless). A row that
    none of the keys opens stops the run with an error naming its workspace and secret, and
    nothing is changed. Returns the number of rows."""
    cipher = SecretCipher([new_key, *previous_keys])
    count = 0
    last_id = 0
    async with unit_of_work(sessionmaker) as session:
        while True:
            rows = (
                await session.execute(
                    select(
                        StoredSecret.id,
                        StoredSecret.workspace_id,
                        StoredSecret.name,
                        StoredSecret.ciphertext,
                    )
                    .where(StoredSecret.id > last_id)
                    .order_by(StoredSecret.id)
                    .limit(_ROTATE_BATCH)
                )
            ).all()
            if not rows:
                return count
            for row in rows:
                try:
                    token = cipher.rotate(row.ciphertext)
                except UndecryptableSecret:
                    raise ValueError(
                        f"secret {row.name!r} of workspace {row.workspace_id} opens with none of "
                        "the given keys; nothing was changed"
                    ) from None
                await session.execute(
                    update(StoredSecret)
                    .where(StoredSecret.id == row.id)
                    .values(ciphertext=token)
                    .execution_options(synchronize_session=False)
                )
                count += 1
            last_id = rows[-1].id
