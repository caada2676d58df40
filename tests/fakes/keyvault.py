"""A fake Azure Key Vault behind the real azure-keyvault-secrets SDK: an azure-core async transport
that answers the vault's REST API from memory, and an async credential with a fixed token.

What it does like Key Vault (data plane, api-version 7.x and 2025+):

- a request without the expected bearer token gets 401 with a `WWW-Authenticate: Bearer
  authorization=..., resource="https://vault.azure.net"` challenge (the SDK first sends a
  bodiless request to elicit it, then asks the credential for a token with the challenge's
  tenant and scope);
- `PUT /secrets/{name}` sets a new version; `GET /secrets/{name}/{version}` (empty version: the
  latest); `GET /secrets` lists properties without values, paged (`maxresults`, at most 25) with
  an absolute `nextLink` carrying `$skiptoken`;
- names are case-insensitive and keep the case they were created with; a bad name is 400;
- soft delete: `DELETE /secrets/{name}` answers the deleted secret; it shows under
  `GET /deletedsecrets/{name}` once deletion "completes" (after `delete_polls` status checks),
  until then a set of that name is 409 `ObjectIsBeingDeleted`, afterwards 409
  `ObjectIsDeletedButRecoverable` (code `Conflict`) until it is recovered
  (`POST /deletedsecrets/{name}/recover`) or purged (`DELETE /deletedsecrets/{name}`);
- missing secrets are 404 `SecretNotFound`; errors have Key Vault's body
  `{"error": {"code", "message", "innererror": {"code"}}}`.

Knobs: `soft_delete`, `delete_polls`, `recover_polls`, `allow_recover` (False: recover is 403,
as for an identity without that permission), `page_size`, `fail_next` (answers queued before
routing, e.g. `(503, "ServiceUnavailable", "...")`), `unreachable` (every request raises a
connection error). Recorded: `requests` (method, path, query, whether authorised, whether a
body was sent), `sleeps` (what the SDK asked the transport to sleep)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl
from azure.core.utils import case_insensitive_dict

RESOURCE = "https://vault.azure.net"
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_MAX_PAGE = 25
_RETENTION_SECONDS = 90 * 24 * 3600


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    authorized: bool
    has_body: bool


@dataclass
class _Version:
    version: str
    value: str
    created: int
    tags: dict[str, str]
    content_type: str | None


@dataclass
class _Secret:
    name: str  # as created
    versions: list[_Version] = field(default_factory=list)
    deleted_date: int | None = None
    #: status checks still answered 404 before a delete (or a recover) completes
    pending_polls: int = 0


class _Answer(AsyncHttpResponseImpl):
    """A complete in-memory response."""

    def __init__(
        self,
        request: HttpRequest,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        content = b"" if body is None else json.dumps(body).encode()
        all_headers = {
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": "1.9.0.0",
            "Content-Length": str(len(content)),
            **(headers or {}),
        }
        if body is not None:
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        super().__init__(
            request=request,
            internal_response=None,
            status_code=status,
            reason=_REASONS.get(status, "Unknown"),
            content_type=all_headers.get("Content-Type"),
            headers=case_insensitive_dict(all_headers),
            stream_download_generator=None,
        )
        self._content = content

    async def close(self) -> None:
        self._is_closed = True


_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    503: "Service Unavailable",
}


def _error(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


class FakeKeyVault:
    """The vault's state and behaviour; `transport()` and `credential()` connect an SDK client."""

    def __init__(
        self,
        *,
        tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
        soft_delete: bool = True,
        delete_polls: int = 1,
        recover_polls: int = 1,
        page_size: int = _MAX_PAGE,
    ) -> None:
        # A host of its own: the SDK caches challenges per host for the whole process.
        self.host = f"kv{uuid.uuid4().hex[:16]}.vault.azure.net"
        self.vault_url = f"https://{self.host}"
        self.tenant_id = tenant_id
        self.token = f"fake-token-{uuid.uuid4().hex}"
        self.soft_delete = soft_delete
        self.delete_polls = delete_polls
        self.recover_polls = recover_polls
        self.allow_recover = True
        self.page_size = page_size
        self.fail_next: list[tuple[int, str, str]] = []
        self.unreachable = False
        self.active: dict[str, _Secret] = {}
        self.deleted: dict[str, _Secret] = {}
        self.requests: list[Recorded] = []
        self.sleeps: list[float] = []
        self.api_versions: set[str] = set()

    def transport(self) -> FakeKeyVaultTransport:
        return FakeKeyVaultTransport(self)

    def credential(self) -> FakeCredential:
        return FakeCredential(self.token)

    # --- what an operator sees and does (tests' side door) -----------------------------------

    def names(self) -> list[str]:
        return sorted(secret.name for secret in self.active.values())

    def deleted_names(self) -> list[str]:
        return sorted(secret.name for secret in self.deleted.values())

    def value(self, name: str) -> str:
        return self.active[name.lower()].versions[-1].value

    def versions(self, name: str) -> list[str]:
        secret = self.active.get(name.lower()) or self.deleted[name.lower()]
        return [version.value for version in secret.versions]

    def seed(self, name: str, value: str) -> None:
        self._set(name, value, {}, None)

    def purge(self, name: str) -> None:
        del self.deleted[name.lower()]

    def begin_delete(self, name: str, polls: int = 3) -> None:
        """Another client deleted the secret just now: Key Vault is still deleting it (for the
        next `polls` status checks)."""
        secret = self.active.pop(name.lower())
        secret.deleted_date = int(time.time())
        secret.pending_polls = polls
        self.deleted[name.lower()] = secret

    # --- the REST API ----------------------------------------------------------------------------

    def answer(self, request: HttpRequest) -> _Answer:
        parts = urlsplit(request.url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
        self.requests.append(
            Recorded(request.method, parts.path, query, authorized, bool(request.content))
        )
        if not authorized:
            return _Answer(
                request,
                401,
                _error("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
                {
                    "WWW-Authenticate": (
                        f'Bearer authorization="https://login.microsoftonline.com/'
                        f'{self.tenant_id}", resource="{RESOURCE}"'
                    )
                },
            )
        version = query.get("api-version")
        if not version:
            return _Answer(
                request, 400, _error("BadParameter", "The api-version query parameter is missing.")
            )
        self.api_versions.add(version)
        if self.fail_next:
            status, code, message = self.fail_next.pop(0)
            return _Answer(request, status, _error(code, message))
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        method = request.method.upper()
        body = _json(request)
        match segments:
            case ["secrets"] if method == "GET":
                return self._list(request, query, deleted=False)
            case ["deletedsecrets"] if method == "GET":
                return self._list(request, query, deleted=True)
            case ["secrets", name] if method == "PUT":
                return self._put(request, name, body)
            case ["secrets", name] | ["secrets", name, ""] if method == "GET":
                return self._get(request, name)
            case ["secrets", name, version_id] if method == "GET":
                return self._get(request, name, version_id)
            case ["secrets", name] if method == "DELETE":
                return self._delete(request, name)
            case ["deletedsecrets", name] if method == "GET":
                return self._get_deleted(request, name)
            case ["deletedsecrets", name] if method == "DELETE":
                return self._purge(request, name)
            case ["deletedsecrets", name, "recover"] if method == "POST":
                return self._recover(request, name)
        return _Answer(request, 404, _error("NotFound", f"No route {method} {parts.path}."))

    def _bad_name(self, request: HttpRequest, name: str) -> _Answer | None:
        if _NAME.fullmatch(name):
            return None
        return _Answer(
            request,
            400,
            _error(
                "BadParameter",
                f"The request URI contains an invalid name: {name}. Names may contain only "
                "alphanumeric characters and dashes.",
            ),
        )

    def _not_found(self, request: HttpRequest, name: str, *, deleted: bool = False) -> _Answer:
        what = "Deleted Secret" if deleted else "A secret with (name/id)"
        return _Answer(
            request,
            404,
            _error("SecretNotFound", f"{what} {name} was not found in this key vault."),
        )

    def _attributes(self, secret: _Secret, version: _Version) -> dict[str, Any]:
        return {
            "enabled": True,
            "created": version.created,
            "updated": version.created,
            "recoveryLevel": "Recoverable+Purgeable" if self.soft_delete else "Purgeable",
            "recoverableDays": 90 if self.soft_delete else 0,
        }

    def _bundle(self, secret: _Secret, *, value: bool = True) -> dict[str, Any]:
        latest = secret.versions[-1]
        bundle: dict[str, Any] = {
            "id": f"{self.vault_url}/secrets/{secret.name}/{latest.version}",
            "attributes": self._attributes(secret, latest),
            "tags": latest.tags,
        }
        if value:
            bundle["value"] = latest.value
        if latest.content_type:
            bundle["contentType"] = latest.content_type
        return bundle

    def _deleted_bundle(self, secret: _Secret) -> dict[str, Any]:
        bundle = self._bundle(secret, value=False)
        deleted = secret.deleted_date or int(time.time())
        bundle["deletedDate"] = deleted
        if self.soft_delete:
            bundle["recoveryId"] = f"{self.vault_url}/deletedsecrets/{secret.name}"
            bundle["scheduledPurgeDate"] = deleted + _RETENTION_SECONDS
        return bundle

    def _set(
        self, name: str, value: str, tags: dict[str, str], content_type: str | None
    ) -> _Secret:
        secret = self.active.setdefault(name.lower(), _Secret(name))
        secret.versions.append(
            _Version(uuid.uuid4().hex, value, int(time.time()), tags, content_type)
        )
        return secret

    def _put(self, request: HttpRequest, name: str, body: Any) -> _Answer:
        bad = self._bad_name(request, name)
        if bad is not None:
            return bad
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            return _Answer(request, 400, _error("BadParameter", "Property value is required."))
        gone = self.deleted.get(name.lower())
        if gone is not None:
            if gone.pending_polls > 0:
                return _Answer(
                    request,
                    409,
                    _error(
                        "Conflict",
                        f"Secret {gone.name} is currently being deleted.",
                        "ObjectIsBeingDeleted",
                    ),
                )
            return _Answer(
                request,
                409,
                _error(
                    "Conflict",
                    f"Secret {gone.name} is currently in a deleted but recoverable state, and "
                    "its name cannot be reused; in this state, the secret can only be recovered "
                    "or purged.",
                    "ObjectIsDeletedButRecoverable",
                ),
            )
        current = self.active.get(name.lower())
        if current is not None and current.pending_polls > 0:
            return _Answer(
                request,
                409,
                _error(
                    "Conflict",
                    f"Secret {current.name} is currently being recovered.",
                    "ObjectIsBeingRecovered",
                ),
            )
        secret = self._set(name, body["value"], body.get("tags") or {}, body.get("contentType"))
        return _Answer(request, 200, self._bundle(secret))

    def _get(self, request: HttpRequest, name: str, version_id: str = "") -> _Answer:
        secret = self.active.get(name.lower())
        if secret is None:
            return self._not_found(request, name)
        if secret.pending_polls > 0:  # a recover still in progress
            secret.pending_polls -= 1
            return self._not_found(request, name)
        if version_id:
            matching = [v for v in secret.versions if v.version == version_id]
            if not matching:
                return self._not_found(request, f"{name}/{version_id}")
            pinned = _Secret(secret.name, matching)
            return _Answer(request, 200, self._bundle(pinned))
        return _Answer(request, 200, self._bundle(secret))

    def _list(self, request: HttpRequest, query: dict[str, str], *, deleted: bool) -> _Answer:
        source = self.deleted if deleted else self.active
        size = min(int(query.get("maxresults") or self.page_size), self.page_size, _MAX_PAGE)
        after = _unskip(query.get("$skiptoken"))
        keys = sorted(k for k, s in source.items() if k > after and s.pending_polls == 0)
        page = keys[:size]
        collection = "deletedsecrets" if deleted else "secrets"
        items = []
        for key in page:
            secret = source[key]
            latest = secret.versions[-1]
            item: dict[str, Any] = {
                "id": f"{self.vault_url}/secrets/{secret.name}",
                "attributes": self._attributes(secret, latest),
                "tags": latest.tags,
            }
            if deleted:
                item.update(
                    recoveryId=f"{self.vault_url}/deletedsecrets/{secret.name}",
                    deletedDate=secret.deleted_date,
                    scheduledPurgeDate=(secret.deleted_date or 0) + _RETENTION_SECONDS,
                )
            items.append(item)
        next_link = None
        if len(keys) > size:
            next_link = (
                f"{self.vault_url}/{collection}?api-version={query['api-version']}"
                f"&$skiptoken={_skip(page[-1])}&maxresults={size}"
            )
        return _Answer(request, 200, {"value": items, "nextLink": next_link})

    def _delete(self, request: HttpRequest, name: str) -> _Answer:
        secret = self.active.get(name.lower())
        if secret is None or secret.pending_polls > 0:
            return self._not_found(request, name)
        del self.active[name.lower()]
        secret.deleted_date = int(time.time())
        answer = self._deleted_bundle(secret)
        if self.soft_delete:
            secret.pending_polls = self.delete_polls
            self.deleted[name.lower()] = secret
        return _Answer(request, 200, answer)

    def _get_deleted(self, request: HttpRequest, name: str) -> _Answer:
        secret = self.deleted.get(name.lower())
        if secret is None:
            return self._not_found(request, name, deleted=True)
        if secret.pending_polls > 0:  # deletion still in progress
            secret.pending_polls -= 1
            return self._not_found(request, name, deleted=True)
        return _Answer(request, 200, self._deleted_bundle(secret))

    def _purge(self, request: HttpRequest, name: str) -> _Answer:
        secret = self.deleted.get(name.lower())
        if secret is None or secret.pending_polls > 0:
            return self._not_found(request, name, deleted=True)
        del self.deleted[name.lower()]
        return _Answer(request, 204)

    def _recover(self, request: HttpRequest, name: str) -> _Answer:
        if not self.allow_recover:
            return _Answer(
                request,
                403,
                _error(
                    "Forbidden",
                    "The user, group or application 'appid=fake' does not have secrets recover "
                    f"permission on key vault '{self.host}'.",
                    "AccessDenied",
                ),
            )
        secret = self.deleted.get(name.lower())
        if secret is None or secret.pending_polls > 0:
            return self._not_found(request, name, deleted=True)
        del self.deleted[name.lower()]
        secret.deleted_date = None
        secret.pending_polls = self.recover_polls
        self.active[name.lower()] = secret
        return _Answer(request, 200, self._bundle(secret, value=False))


def _json(request: HttpRequest) -> Any:
    content = request.content
    if not content:
        return None
    if isinstance(content, bytes | bytearray):
        content = content.decode()
    try:
        return json.loads(content)
    except (TypeError, ValueError):
        return None


def _skip(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _unskip(token: str | None) -> str:
    if not token:
        return ""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


class FakeKeyVaultTransport(AsyncHttpTransport[HttpRequest, AsyncHttpResponse]):
    """The SDK's last hop: requests are answered by the FakeKeyVault, nothing leaves the
    process."""

    def __init__(self, vault: FakeKeyVault) -> None:
        self.vault = vault
        self.closed = False

    async def send(self, request: HttpRequest, **kwargs: Any) -> AsyncHttpResponse:
        await asyncio.sleep(0)  # a real transport yields to the loop too
        if self.vault.unreachable or urlsplit(request.url).hostname != self.vault.host:
            raise ServiceRequestError(f"Cannot connect to host {urlsplit(request.url).hostname}")
        return self.vault.answer(request)

    async def open(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeKeyVaultTransport:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()

    async def sleep(self, duration: float) -> None:
        # Retries and delete/recover polling ask the transport to wait: recorded, not waited.
        self.vault.sleeps.append(duration)
        await asyncio.sleep(0)


class FakeCredential:
    """An async TokenCredential that hands out the vault's token, recording what was asked."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.requests: list[tuple[tuple[str, ...], str | None]] = []
        self.fail = False
        self.closed = False

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.requests.append((scopes, tenant_id))
        if self.fail:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.")
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
