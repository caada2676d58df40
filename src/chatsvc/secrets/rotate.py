"""`python -m chatsvc.secrets.rotate`: re-encrypt the local secret store under a new key.

CHATSVC_SECRET_KEY (and CHATSVC_DATABASE_URL, as for the service) name the new key and the
database; CHATSVC_PREVIOUS_SECRET_KEY holds the key the rows are encrypted with now (several keys
may be given, one per line, when an earlier rotation was left half done). One transaction: every
row is re-encrypted or none is. Prints how many rows it re-encrypted."""

from __future__ import annotations

import asyncio
import os
import sys

from chatsvc.config import get_settings
from chatsvc.kit.db import create_engine, create_sessionmaker
from chatsvc.secrets.local import reencrypt_all

PREVIOUS_KEY_VARIABLE = "CHATSVC_PREVIOUS_SECRET_KEY"


async def _run(database_url: str, new_key: str, previous_keys: list[str]) -> int:
    engine = create_engine(database_url)
    try:
        return await reencrypt_all(create_sessionmaker(engine), new_key, previous_keys)
    finally:
        await engine.dispose()


def main() -> int:
    settings = get_settings()
    previous = [k.strip() for k in os.environ.get(PREVIOUS_KEY_VARIABLE, "").splitlines()]
    previous = [k for k in previous if k]
    if not previous:
        print(
            f"{PREVIOUS_KEY_VARIABLE} is not set: give the key the secrets are encrypted with now "
            "(CHATSVC_SECRET_KEY names the new one).",
            file=sys.stderr,
        )
        return 2
    if settings.secret_backend != "local":  # noqa: S105 - a backend name
        print("CHATSVC_SECRET_BACKEND is not 'local': nothing to re-encrypt.", file=sys.stderr)
        return 2
    try:
        count = asyncio.run(
            _run(settings.database_url, settings.secret_key.get_secret_value(), previous)
        )
    except ValueError as exc:
        print(f"Rotation stopped: {exc}", file=sys.stderr)
        return 1
    print(f"Re-encrypted {count} secret(s) under the new CHATSVC_SECRET_KEY.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
