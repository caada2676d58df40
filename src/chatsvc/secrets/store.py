"""The SecretStore interface.

CONTRACT (filled in by the secrets work; the tool runtime uses `get` and `resolve_references`,
the /secrets/ endpoints use the rest):

- every method is scoped by workspace (per-workspace namespaces);
- `get` / `update` / `delete` of a missing name raise NotFound; `create` of an existing name
  raises Conflict; names are validated against Key Vault's rules (`validate_name`, Invalid);
- values never appear in logs or in error messages.
- `resolve_references(store, workspace_id, text)` replaces every `{{secret:NAME}}` in text.
- `build_secret_store(settings, sessionmaker)` picks the backend from `settings.secret_backend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.config import Settings


@dataclass(frozen=True, slots=True)
class SecretItem:
    name: str
    value: str


class SecretStore(Protocol):
    async def list(self, workspace_id: int) -> list[SecretItem]: ...
    async def get(self, workspace_id: int, name: str) -> str: ...
    async def create(self, workspace_id: int, name: str, value: str) -> SecretItem: ...
    async def update(self, workspace_id: int, name: str, value: str) -> SecretItem: ...
    async def delete(self, workspace_id: int, name: str) -> SecretItem: ...
    async def close(self) -> None: ...


async def resolve_references(store: SecretStore, workspace_id: int, text: str) -> str:
    raise NotImplementedError


class _NotBuilt:
    """Placeholder until the backends exist."""

    async def list(self, workspace_id: int) -> list[SecretItem]:
        raise NotImplementedError

    async def get(self, workspace_id: int, name: str) -> str:
        raise NotImplementedError

    async def create(self, workspace_id: int, name: str, value: str) -> SecretItem:
        raise NotImplementedError

    async def update(self, workspace_id: int, name: str, value: str) -> SecretItem:
        raise NotImplementedError

    async def delete(self, workspace_id: int, name: str) -> SecretItem:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def build_secret_store(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> SecretStore:
    return _NotBuilt()
