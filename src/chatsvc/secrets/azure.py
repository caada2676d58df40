"""The Azure Key Vault secret backend: one vault for every workspace, a workspace's secrets under
the name prefix `ws<ID>-`, reached through azure-keyvault-secrets' async SecretClient."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any, Literal

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.keyvault.secrets.aio import SecretClient

from chatsvc.config import Settings
from chatsvc.kit.errors import (
    Conflict,
    FieldError,
    Invalid,
    NotFound,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from chatsvc.secrets.store import (
    KEEP,
    MAX_NAME_LENGTH,
    Keep,
    Origins,
    SecretItem,
    validate_name,
    validate_origins,
    validate_value,
)

logger = logging.getLogger("chatsvc.secrets")

#: Key Vault's inner error codes of a 409 on set: the name belongs to a soft-deleted secret
DELETED_BUT_RECOVERABLE = "ObjectIsDeletedButRecoverable"
BEING_DELETED = "ObjectIsBeingDeleted"
#: the SDK's request logging names every URL and header at INFO; it never logs bodies
_SDK_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def workspace_prefix(workspace_id: int) -> str:
    """The prefix of a workspace's secrets in the vault: workspace 12's `api-key` is
    `ws12-api-key`. The dash ends the number, so no workspace's prefix starts another's."""
    return f"ws{workspace_id}-"


def max_name_length(workspace_id: int) -> int:
    """Key Vault's 127 characters less the workspace's prefix."""
    return MAX_NAME_LENGTH - len(workspace_prefix(workspace_id))


def _error_codes(exc: HttpResponseError) -> tuple[str, str]:
    """Key Vault's error code and inner error code (`Conflict`, `ObjectIsDeletedButRecoverable`)."""
    code = inner = ""
    with contextlib.suppress(Exception):
        body = json.loads(exc.response.text()) if exc.response is not None else {}
        error = body.get("error") or {}
        code = str(error.get("code") or "")
        inner = str((error.get("innererror") or {}).get("code") or "")
    return code, inner


def _log(exc: AzureError, what: str) -> None:
    # Key Vault's messages name vaults, identities and secrets, never values; they are for the
    # operator's log, not for API callers.
    logger.warning("Key Vault %s failed: %s: %s", what, type(exc).__name__, exc.message)


@contextlib.contextmanager
def _translated(what: str, name: str | None = None) -> Iterator[None]:
    """Azure SDK errors as domain errors, for doing `what` ("read", ...) to secret `name` (None:
    the workspace's list); the bodies say what happened, not Key Vault's text."""
    target = f"{what} secret '{name}'" if name is not None else f"{what} the secrets"
    try:
        yield
    except ResourceNotFoundError as exc:
        if name is None:  # the vault's list itself is missing: a wrong vault URL
            _log(exc, target)
            raise UpstreamError(
                f"Key Vault could not {target}: HTTP 404.", code="secret_store_error"
            ) from None
        raise NotFound(
            f"No secret named '{name}' in this workspace.", code="secret_not_found"
        ) from None
    except ClientAuthenticationError as exc:
        _log(exc, target)
        raise UpstreamError(
            "Key Vault refused the service's credentials; an operator should check its identity "
            "and access to the vault (the service log has Key Vault's answer).",
            code="secret_store_denied",
        ) from None
    except HttpResponseError as exc:
        _log(exc, target)
        code, inner = _error_codes(exc)
        detail = f"HTTP {exc.status_code}" + (f" {code}" if code else "")
        detail += f" ({inner})" if inner else ""
        raise UpstreamError(
            f"Key Vault could not {target}: {detail}.", code="secret_store_error"
        ) from None
    except (ServiceRequestTimeoutError, ServiceResponseTimeoutError) as exc:
        _log(exc, target)
        raise UpstreamTimeout(
            "Key Vault did not answer in time.", code="secret_store_timeout"
        ) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        _log(exc, target)
        raise Unavailable("Key Vault cannot be reached.", code="secret_store_unavailable") from None
    except AzureError as exc:
        _log(exc, target)
        raise UpstreamError(f"Key Vault could not {target}.", code="secret_store_error") from None


#: the tag that holds a secret's allowed origins, separated by spaces (none: any origin)
ORIGINS_TAG = "chatsvc-origins"
#: Key Vault's limit on a tag's value
MAX_TAG_LENGTH = 256


def _origins_of(tags: dict[str, str] | None) -> Origins:
    text = (tags or {}).get(ORIGINS_TAG)
    return None if text is None else tuple(text.split())


def _checked_tag(origins: Origins) -> Origins:
    """The origins when they fit one Key Vault tag (256 characters, separated by spaces)."""
    if origins is not None and len(" ".join(origins)) > MAX_TAG_LENGTH:
        reason = (
            f"take {len(' '.join(origins))} characters separated by spaces; Key Vault keeps at "
            f"most {MAX_TAG_LENGTH} in the tag that holds them"
        )
        raise Invalid(
            f"Allowed origins {reason}.",
            code="invalid_origins",
            errors=[FieldError("allowed_origins", reason)],
        )
    return origins


class AzureSecretStore:
    """SecretStore on Azure Key Vault (soft delete on, as Azure enforces for new vaults).

    A name deleted here stays in the vault as a soft-deleted secret until it is purged; creating
    it again recovers it and sets the new value, so DELETE then POST works as on the local
    backend."""

    def __init__(
        self,
        vault_url: str,
        credential: AsyncTokenCredential,
        *,
        polling_interval: float = 1.0,
        wait_seconds: float = 60.0,
        **client_kwargs: Any,
    ) -> None:
        self._credential = credential
        self._client = SecretClient(vault_url, credential, **client_kwargs)
        #: how often (seconds) a delete or a recover asks whether Key Vault has finished it,
        #: and how long it waits at most
        self._polling_interval = polling_interval
        self._wait_seconds = wait_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureSecretStore:
        url = settings.azure_key_vault_url
        if url is None:
            raise ValueError(
                "CHATSVC_AZURE_KEY_VAULT_URL is required with CHATSVC_SECRET_BACKEND=azure"
            )
        if url.scheme != "https":
            raise ValueError("CHATSVC_AZURE_KEY_VAULT_URL must be an https:// URL")
        from azure.identity.aio import DefaultAzureCredential

        sdk_http = logging.getLogger(_SDK_HTTP_LOGGER)
        if sdk_http.level == logging.NOTSET:
            # One INFO record per request and response header set is noise in the service log;
            # an operator who sets this logger's level keeps it.
            sdk_http.setLevel(logging.WARNING)
        return cls(str(url), DefaultAzureCredential())

    @property
    def vault_url(self) -> str:
        return self._client.vault_url

    def _vault_name(self, workspace_id: int, name: str) -> str:
        validate_name(name, max_length=max_name_length(workspace_id))
        return workspace_prefix(workspace_id) + name

    @staticmethod
    def _own_name(workspace_id: int, vault_name: str | None, fallback: str) -> str:
        prefix = workspace_prefix(workspace_id)
        if vault_name and vault_name.lower().startswith(prefix.lower()):
            return vault_name[len(prefix) :]
        return fallback

    async def list(self, workspace_id: int) -> list[SecretItem]:
        prefix = workspace_prefix(workspace_id).lower()
        items: list[SecretItem] = []
        with _translated("list"):
            async for properties in self._client.list_properties_of_secrets():
                vault_name = properties.name or ""
                if vault_name.lower().startswith(prefix) and len(vault_name) > len(prefix):
                    origins = _origins_of(properties.tags)
                    items.append(SecretItem(vault_name[len(prefix) :], "", origins))
        return sorted(items, key=lambda item: item.name.lower())

    async def get(self, workspace_id: int, name: str) -> str:
        return (await self.read(workspace_id, name)).value

    async def read(self, workspace_id: int, name: str) -> SecretItem:
        vault_name = self._vault_name(workspace_id, name)
        with _translated("read", name):
            secret = await self._client.get_secret(vault_name)
        own = self._own_name(workspace_id, secret.name, name)
        return SecretItem(own, secret.value or "", _origins_of(secret.properties.tags))

    async def create(
        self, workspace_id: int, name: str, value: str, allowed_origins: Origins = None
    ) -> SecretItem:
        vault_name = self._vault_name(workspace_id, name)
        validate_value(value)
        origins = _checked_tag(validate_origins(allowed_origins))
        with _translated("read", name):
            try:
                existing = await self._client.get_secret(vault_name)
            except ResourceNotFoundError:
                existing = None
        if existing is not None:
            stored = self._own_name(workspace_id, existing.name, name)
            raise Conflict(
                f"A secret named '{stored}' already exists in this workspace (names are "
                "case-insensitive); PUT /secrets/ changes its value.",
                code="secret_exists",
            )
        try:
            with _translated("create", name):
                try:
                    secret = await self._set(workspace_id, vault_name, value, origins)
                except ResourceExistsError as exc:
                    await self._recover(exc, vault_name, name)
                    secret = await self._set(workspace_id, vault_name, value, origins)
        except TimeoutError:
            raise UpstreamTimeout(
                f"Key Vault did not finish recovering the deleted secret '{name}' in time; "
                "try again shortly.",
                code="secret_store_timeout",
            ) from None
        return SecretItem(self._own_name(workspace_id, secret.name, name), value, origins)

    async def update(
        self,
        workspace_id: int,
        name: str,
        value: str,
        allowed_origins: Origins | Literal[Keep.KEEP] = KEEP,
    ) -> SecretItem:
        vault_name = self._vault_name(workspace_id, name)
        validate_value(value)
        given = None if allowed_origins is KEEP else _checked_tag(validate_origins(allowed_origins))
        with _translated("update", name):
            existing = await self._client.get_secret(vault_name)
            origins = _origins_of(existing.properties.tags) if allowed_origins is KEEP else given
            try:
                secret = await self._set(workspace_id, vault_name, value, origins)
            except ResourceExistsError:
                # Deleted between the read and the write.
                raise ResourceNotFoundError("deleted meanwhile") from None
        own = self._own_name(workspace_id, existing.name or secret.name, name)
        return SecretItem(own, value, origins)

    async def delete(self, workspace_id: int, name: str) -> SecretItem:
        vault_name = self._vault_name(workspace_id, name)
        try:
            with _translated("delete", name):
                async with asyncio.timeout(self._wait_seconds):
                    # Returns once Key Vault lists the secret as deleted, so that a create of the
                    # same name right after finds it recoverable, not "being deleted".
                    deleted = await self._client.delete_secret(
                        vault_name, _polling_interval=self._polling_interval
                    )
        except TimeoutError:
            raise UpstreamTimeout(
                f"Key Vault did not confirm the deletion of secret '{name}' in time; it may "
                "still complete.",
                code="secret_store_timeout",
            ) from None
        return SecretItem(self._own_name(workspace_id, deleted.name, name), "")

    async def close(self) -> None:
        await self._client.close()
        await self._credential.close()

    async def _set(
        self, workspace_id: int, vault_name: str, value: str, origins: Origins = None
    ) -> Any:
        tags = {"chatsvc-workspace": str(workspace_id)}
        if origins is not None:
            tags[ORIGINS_TAG] = " ".join(origins)
        return await self._client.set_secret(vault_name, value, tags=tags)

    async def _recover(self, conflict: ResourceExistsError, vault_name: str, name: str) -> None:
        """A 409 on set: recover a soft-deleted secret of that name (its old versions come back
        as history; the caller then sets the new value), or say why the name is taken."""
        _code, inner = _error_codes(conflict)
        if inner == BEING_DELETED:
            raise Conflict(
                f"Secret '{name}' is still being deleted in Key Vault; try again in a few seconds.",
                code="secret_being_deleted",
            )
        if inner != DELETED_BUT_RECOVERABLE:
            raise conflict
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._client.recover_deleted_secret(
                    vault_name, _polling_interval=self._polling_interval
                )
        except HttpResponseError as exc:
            _log(exc, f"recover secret '{vault_name}'")
            raise Conflict(
                f"Secret name '{name}' belongs to a deleted secret that Key Vault keeps for "
                f"recovery, and the service could not recover it (HTTP {exc.status_code}). An "
                f"operator can purge it (az keyvault secret purge --name {vault_name}) or grant "
                "the service the 'recover' permission; then create it again.",
                code="secret_deleted_in_vault",
            ) from None
