"""The SecretStore interface, Key Vault's naming rules, `{{secret:NAME}}` references and the
choice of backend.

CONTRACT (the tool runtime uses `get` and `resolve_references`, the /secrets/ endpoints the rest):

- every method is scoped by workspace (per-workspace namespaces);
- names follow Key Vault's rules (`validate_name`, Invalid) and are case-insensitive: `API-KEY`
  and `api-key` are one secret, shown with the case it was created with;
- `get` / `update` / `delete` of a missing name raise NotFound; `create` of an existing name
  raises Conflict;
- `list` and `delete` return names only (`SecretItem.value` is ""): listing never reads values;
  `create` and `update` return the value just written;
- values never appear in logs or in error messages.
- `resolve_references(store, workspace_id, text)` replaces every `{{secret:NAME}}` in text.
- `build_secret_store(settings, sessionmaker)` picks the backend from `settings.secret_backend`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.config import Settings
from chatsvc.kit.errors import FieldError, Invalid

#: Key Vault's limits: a name of 1-127 letters, digits and dashes; a value of at most 25 KiB.
MAX_NAME_LENGTH = 127
MAX_VALUE_BYTES = 25 * 1024
_NAME = re.compile(r"[0-9A-Za-z-]+")
#: `{{secret:NAME}}`, written exactly so; what stands for NAME is checked when it is resolved, so
#: that a malformed name (`{{secret:my_key}}`) is reported instead of being sent on as text.
REFERENCE = re.compile(r"\{\{secret:([^{}]*)\}\}")


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


def validate_name(name: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """Return `name` if Key Vault accepts it: 1 to `max_length` letters, digits and dashes.

    The local backend allows Key Vault's 127 characters; the Azure backend passes 127 minus the
    length of the workspace's prefix (`ws<ID>-`), which is part of the name in the vault."""
    reason: str | None = None
    if not name:
        reason = "must not be empty"
    elif not _NAME.fullmatch(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
        shown = " ".join(repr(c) for c in bad[:5])
        reason = f"may contain only letters A-Z a-z, digits 0-9 and dashes (found {shown})"
    elif len(name) > max_length:
        reason = f"is {len(name)} characters long; the limit is {max_length}"
        if max_length < MAX_NAME_LENGTH:
            reason += (
                f" here (Key Vault's {MAX_NAME_LENGTH} include this workspace's prefix of "
                f"{MAX_NAME_LENGTH - max_length} characters)"
            )
    if reason is None:
        return name
    raise Invalid(
        f"Secret name {reason}.", code="invalid_name", errors=[FieldError("name", reason)]
    )


def validate_value(value: str) -> str:
    """Return `value` if both backends can hold it (Key Vault's 25 KiB). The message tells sizes,
    never content."""
    size = len(value.encode("utf-8", "surrogatepass"))
    reason: str | None = None
    if not value:
        reason = "must not be empty"
    elif size > MAX_VALUE_BYTES:
        reason = f"is {size} bytes long (UTF-8); the limit is {MAX_VALUE_BYTES}"
    if reason is None:
        return value
    raise Invalid(
        f"Secret value {reason}.", code="invalid_value", errors=[FieldError("value", reason)]
    )


async def resolve_references(store: SecretStore, workspace_id: int, text: str) -> str:
    """Replace every `{{secret:NAME}}` in `text` with the workspace's secret NAME, read now.

    Each name is read once; substituted values are not scanned again. A malformed name raises
    Invalid and a missing one NotFound, both naming the reference and never showing a value."""
    names: dict[str, str] = {}
    for match in REFERENCE.finditer(text):
        name = match.group(1)
        if name not in names:
            try:
                validate_name(name)
            except Invalid as exc:
                raise Invalid(
                    f"Secret reference {match.group(0)!r} is not usable: {exc.message}",
                    code="invalid_secret_reference",
                ) from None
            names[name] = await store.get(workspace_id, name)
    if not names:
        return text
    return REFERENCE.sub(lambda match: names[match.group(1)], text)


def build_secret_store(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> SecretStore:
    """The store `settings.secret_backend` names: `local` (encrypted in the database, the
    embedded default) or `azure` (Key Vault at `settings.azure_key_vault_url`)."""
    if settings.secret_backend == "azure":  # noqa: S105 - a backend name
        from chatsvc.secrets.azure import AzureSecretStore

        return AzureSecretStore.from_settings(settings)
    from chatsvc.secrets.local import LocalSecretStore

    return LocalSecretStore.from_settings(settings, sessionmaker)
