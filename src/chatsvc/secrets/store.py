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
- a secret may carry the origins it may be sent to (`allowed_origins`, normalized by
  `normalize_origin`; None: any origin). `read` returns the value with them; `create` takes
  them, `update` keeps them unless given (`KEEP`);
- `resolve_references(store, workspace_id, text, destination=url)` replaces every
  `{{secret:NAME}}` in text, and refuses (Invalid, secret_origin_not_allowed) a secret whose
  allowed origins do not include the destination's origin: the value is never sent there.
- `build_secret_store(settings, sessionmaker)` picks the backend from `settings.secret_backend`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal, Protocol
from urllib.parse import urlsplit

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


#: at most this many allowed origins per secret
MAX_ORIGINS = 20
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Keep(Enum):
    KEEP = "keep"


#: `update(..., allowed_origins=KEEP)`: the secret keeps the origins it has
KEEP: Final = Keep.KEEP
Origins = tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class SecretItem:
    name: str
    value: str
    #: the origins (`https://host[:port]`) the value may be sent to; None: any origin
    allowed_origins: Origins = None


class SecretStore(Protocol):
    async def list(self, workspace_id: int) -> list[SecretItem]: ...
    async def get(self, workspace_id: int, name: str) -> str: ...
    async def read(self, workspace_id: int, name: str) -> SecretItem: ...
    async def create(
        self, workspace_id: int, name: str, value: str, allowed_origins: Origins = None
    ) -> SecretItem: ...
    async def update(
        self,
        workspace_id: int,
        name: str,
        value: str,
        allowed_origins: Origins | Literal[Keep.KEEP] = KEEP,
    ) -> SecretItem: ...
    async def delete(self, workspace_id: int, name: str) -> SecretItem: ...
    async def close(self) -> None: ...


def origin_of(url: str) -> str:
    """The origin of `url` as `scheme://host[:port]`: scheme and host lower-cased, the host in
    its ASCII (IDNA) form, the scheme's default port left out. ValueError says why there is
    none (not http or https, no host, a bad port or host)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("must be an http:// or https:// origin")
    host = parts.hostname
    if not host:
        raise ValueError("has no host")
    port = parts.port  # ValueError for a port out of range or not a number
    if ":" in host:  # an IPv6 address
        shown = f"[{host}]"
    else:
        labels = host.rstrip(".").split(".")
        if any(not label for label in labels) or "%" in host:
            raise ValueError(f"host {host!r} is not a valid host name")
        try:
            shown = host.rstrip(".").encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise ValueError(f"host {host!r} is not a valid host name") from None
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


def normalize_origin(text: str) -> str:
    """An allowed origin as stored: `origin_of(text)` when `text` is only an origin (a path of
    "/" at most; no credentials, query or fragment). ValueError says what is wrong."""
    parts = urlsplit(text.strip())
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be an origin only (scheme://host[:port]), without a path or query")
    return origin_of(text)


def validate_origins(origins: list[str] | tuple[str, ...] | None) -> Origins:
    """The allowed origins to store (normalized, duplicates dropped, in the order given), or
    None for "any origin". Invalid names each wrong entry (field `allowed_origins[i]`)."""
    if origins is None:
        return None
    errors: list[FieldError] = []
    found: dict[str, None] = {}
    for index, text in enumerate(origins):
        try:
            found.setdefault(normalize_origin(text), None)
        except ValueError as exc:
            errors.append(FieldError(f"allowed_origins[{index}]", f"{text!r} {exc}"))
    if not errors and not found:
        reason = "must list at least one origin (null allows every origin)"
        errors.append(FieldError("allowed_origins", reason))
    if not errors and len(found) > MAX_ORIGINS:
        errors.append(FieldError("allowed_origins", f"at most {MAX_ORIGINS} origins"))
    if errors:
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        raise Invalid(f"Invalid allowed origins: {summary}", code="invalid_origins", errors=errors)
    return tuple(found)


def origin_problem(item: SecretItem, destination: str) -> str | None:
    """Why `item` may not be sent to `destination` (a URL), or None when it may."""
    if item.allowed_origins is None:
        return None
    try:
        origin = origin_of(destination)
    except ValueError:
        origin = None
    if origin is not None and origin in item.allowed_origins:
        return None
    where = origin or "that URL"
    allowed = ", ".join(item.allowed_origins)
    return f"secret '{item.name}' may not be sent to {where} (its allowed origins: {allowed})"


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


def reference_names(text: str) -> list[str]:
    """The well-formed secret names `text` references, each once, in order."""
    found: dict[str, None] = {}
    for match in REFERENCE.finditer(text):
        if _NAME.fullmatch(match.group(1)):
            found.setdefault(match.group(1), None)
    return list(found)


async def resolve_references(
    store: SecretStore, workspace_id: int, text: str, *, destination: str
) -> str:
    """Replace every `{{secret:NAME}}` in `text` with the workspace's secret NAME, read now, for
    a request to `destination` (a URL).

    Each name is read once; substituted values are not scanned again. A malformed name raises
    Invalid and a missing one NotFound, both naming the reference and never showing a value. A
    secret whose allowed origins do not include `destination`'s raises Invalid
    (`secret_origin_not_allowed`): nothing is resolved, so the value is never sent there."""
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
            item = await store.read(workspace_id, name)
            problem = origin_problem(item, destination)
            if problem is not None:
                raise Invalid(
                    f"{problem[0].upper()}{problem[1:]}; it was not sent. An admin allows an "
                    "origin by adding it to the secret's allowed_origins (PUT /secrets/).",
                    code="secret_origin_not_allowed",
                )
            names[name] = item.value
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
