"""The local backend: what is stored at rest, the wrong key, tokens moved between rows, concurrent
creates, and re-encryption under a new key (the function and the command)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, select, update

from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Workspace
from chatsvc.kit.db import create_engine, create_sessionmaker, unit_of_work
from chatsvc.kit.errors import Conflict, Unavailable
from chatsvc.migrate import upgrade
from chatsvc.secrets.local import (
    LocalSecretStore,
    SecretCipher,
    derive_fernet_key,
    reencrypt_all,
)
from chatsvc.secrets.models import StoredSecret
from tests.fixtures.secrets import TEST_KEY, Backend

VALUE = "pg-password-4c1d8e27-not-for-logs"
NEW_KEY = "a-new-secret-key-fedcba9876543210fedcba98765"


async def stored_rows(backend: Backend) -> dict[tuple[int, str], str]:
    assert backend.sessionmaker is not None
    async with unit_of_work(backend.sessionmaker) as db:
        rows = await db.execute(
            select(StoredSecret.workspace_id, StoredSecret.name, StoredSecret.ciphertext)
        )
        return {(row.workspace_id, row.name): row.ciphertext for row in rows}


def store_with(backend: Backend, *keys: str) -> LocalSecretStore:
    assert backend.sessionmaker is not None
    return LocalSecretStore(SecretCipher(list(keys)), backend.sessionmaker)


async def test_values_are_encrypted_at_rest_and_bound_to_their_row(local: Backend) -> None:
    await local.store.create(local.workspace_a, "Db-Password", VALUE)
    token = (await stored_rows(local))[(local.workspace_a, "Db-Password")]
    assert VALUE not in token
    assert "Db-Password" not in token
    # A Fernet token under the key HKDF derives from the secret key, holding workspace and name.
    plain = json.loads(Fernet(derive_fernet_key(TEST_KEY)).decrypt(token.encode()))
    assert plain == {"w": local.workspace_a, "n": "db-password", "v": VALUE}


def test_key_derivation() -> None:
    key = derive_fernet_key(TEST_KEY)
    assert key == derive_fernet_key(TEST_KEY)
    assert key != derive_fernet_key(TEST_KEY + "x")
    Fernet(key)  # a valid Fernet key (32 bytes, urlsafe base64)


async def test_another_key_cannot_read_and_says_why(
    local: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    await local.store.create(local.workspace_a, "api-key", VALUE)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Unavailable) as unreadable:
        await store_with(local, "some-other-key").get(local.workspace_a, "api-key")
    assert unreadable.value.code == "secret_undecryptable"
    assert "'api-key' cannot be decrypted with the configured CHATSVC_SECRET_KEY" in (
        unreadable.value.message
    )
    assert any("cannot be decrypted" in r.getMessage() for r in caplog.records)
    assert not any(VALUE in r.getMessage() for r in caplog.records)


async def test_a_token_copied_into_another_row_does_not_decrypt(local: Backend) -> None:
    """Someone with write access to the database copies workspace A's token into workspace B's
    row: B does not get A's value (which a tool header could send anywhere)."""
    await local.store.create(local.workspace_a, "openai", VALUE)
    await local.store.create(local.workspace_b, "mine", "b's own value")
    await local.store.create(local.workspace_a, "other-name", "a's other value")
    rows = await stored_rows(local)
    assert local.sessionmaker is not None
    async with unit_of_work(local.sessionmaker) as db:
        for workspace_id, name in ((local.workspace_b, "mine"), (local.workspace_a, "other-name")):
            await db.execute(
                update(StoredSecret)
                .where(StoredSecret.workspace_id == workspace_id, StoredSecret.name == name)
                .values(ciphertext=rows[(local.workspace_a, "openai")])
            )
    with pytest.raises(Unavailable):
        await local.store.get(local.workspace_b, "mine")
    with pytest.raises(Unavailable):
        await local.store.get(local.workspace_a, "other-name")
    assert await local.store.get(local.workspace_a, "openai") == VALUE


async def test_updates_leave_no_old_token_behind(local: Backend) -> None:
    await local.store.create(local.workspace_a, "token", "first")
    before = await stored_rows(local)
    await local.store.update(local.workspace_a, "token", "second")
    after = await stored_rows(local)
    assert before.keys() == after.keys()
    assert before != after
    assert await local.store.get(local.workspace_a, "token") == "second"


async def test_reencrypt_all_moves_every_row_to_the_new_key(local: Backend) -> None:
    values = {
        (local.workspace_a, "one"): "value one",
        (local.workspace_a, "Two"): "value two",
        (local.workspace_b, "one"): "b's value one",
    }
    for (workspace_id, name), value in values.items():
        await local.store.create(workspace_id, name, value)
    assert local.sessionmaker is not None
    assert await reencrypt_all(local.sessionmaker, NEW_KEY, [TEST_KEY]) == 3

    rotated = store_with(local, NEW_KEY)
    for (workspace_id, name), value in values.items():
        assert await rotated.get(workspace_id, name) == value
    with pytest.raises(Unavailable):
        await local.store.get(local.workspace_a, "one")  # the old key alone no longer opens them
    # Running it again (say, after a crash between the run and the restart) is harmless.
    assert await reencrypt_all(local.sessionmaker, NEW_KEY, [TEST_KEY]) == 3
    assert await rotated.get(local.workspace_b, "one") == "b's value one"


async def test_reencrypt_all_changes_nothing_when_a_row_cannot_be_opened(local: Backend) -> None:
    await local.store.create(local.workspace_a, "good", "good value")
    await store_with(local, "a-key-nobody-remembers").create(local.workspace_b, "lost", "lost")
    before = await stored_rows(local)
    assert local.sessionmaker is not None
    with pytest.raises(ValueError, match=r"secret 'lost' of workspace \d+ opens with none"):
        await reencrypt_all(local.sessionmaker, NEW_KEY, [TEST_KEY])
    assert await stored_rows(local) == before
    assert await local.store.get(local.workspace_a, "good") == "good value"


async def test_concurrent_creates_of_one_name(live_pg_url: str) -> None:
    """Two requests create the same name (in two cases) at once, on real transactions: one
    wins, the other is a clean 409, and one row exists."""
    engine = create_engine(live_pg_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with unit_of_work(sessionmaker) as db:
            workspace = await auth_service.create_workspace(db, f"race-{uuid.uuid4().hex[:12]}")
        store = LocalSecretStore(SecretCipher([TEST_KEY]), sessionmaker)
        for attempt in range(5):
            name = f"race-{attempt}"
            results = await asyncio.gather(
                store.create(workspace.id, name, "first"),
                store.create(workspace.id, name.upper(), "second"),
                return_exceptions=True,
            )
            conflicts = [r for r in results if isinstance(r, Conflict)]
            created = [r for r in results if not isinstance(r, BaseException)]
            assert len(conflicts) == 1, results
            assert len(created) == 1, results
            assert await store.get(workspace.id, name) == created[0].value
        assert len(await store.list(workspace.id)) == 5
    finally:
        async with unit_of_work(sessionmaker) as db:
            await db.execute(delete(Workspace).where(Workspace.id == workspace.id))
        await engine.dispose()


async def test_the_rotate_command(tmp_path: Path) -> None:
    """`python -m chatsvc.secrets.rotate` on an embedded database: the operator's procedure."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'chatsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with unit_of_work(sessionmaker) as db:
            workspace = await auth_service.create_workspace(db, "rotation")
        old = LocalSecretStore(SecretCipher([TEST_KEY]), sessionmaker)
        await old.create(workspace.id, "api-key", VALUE)

        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSVC_")}
        env.update(CHATSVC_DATABASE_URL=url, CHATSVC_SECRET_KEY=NEW_KEY)
        command = [sys.executable, "-m", "chatsvc.secrets.rotate"]
        missing = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
        )
        assert missing.returncode == 2
        assert "CHATSVC_PREVIOUS_SECRET_KEY is not set" in missing.stderr

        env["CHATSVC_PREVIOUS_SECRET_KEY"] = TEST_KEY
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Re-encrypted 1 secret(s) under the new CHATSVC_SECRET_KEY."
        assert VALUE not in done.stdout + done.stderr
        new = LocalSecretStore(SecretCipher([NEW_KEY]), sessionmaker)
        assert await new.get(workspace.id, "api-key") == VALUE

        env["CHATSVC_PREVIOUS_SECRET_KEY"] = "wrong-key"
        env["CHATSVC_SECRET_KEY"] = "yet-another-key-000000000000000000000"
        refused = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 1
        assert "secret 'api-key' of workspace" in refused.stderr
        assert "nothing was changed" in refused.stderr
        assert await new.get(workspace.id, "api-key") == VALUE
    finally:
        await engine.dispose()
