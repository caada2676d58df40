"""The SecretStore contract, on every backend: local on PostgreSQL, local on SQLite, and Azure Key
Vault (the real SDK against the fake vault). Also `{{secret:NAME}}` references."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from chatsvc.kit.errors import Conflict, Invalid, NotFound
from chatsvc.secrets.store import (
    MAX_VALUE_BYTES,
    SecretItem,
    resolve_references,
    validate_name,
)
from tests.fixtures.secrets import Backend

DESTINATION = "https://api.example.com/v1/search"
VALUE = "sk-live-7f3c9a1e-not-for-logs"


async def test_create_get_list(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    created = await store.create(ws, "OPENAI-API-KEY", VALUE)
    assert created == SecretItem("OPENAI-API-KEY", VALUE)
    assert await store.get(ws, "OPENAI-API-KEY") == VALUE
    # Listing gives names, never values.
    assert await store.list(ws) == [SecretItem("OPENAI-API-KEY", "")]


async def test_list_is_ordered_by_name_whatever_the_case(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    assert await store.list(ws) == []
    for name in ("zeta", "Alpha", "beta-2", "BETA-1"):
        await store.create(ws, name, f"value of {name}")
    assert [item.name for item in await store.list(ws)] == ["Alpha", "BETA-1", "beta-2", "zeta"]


async def test_names_are_case_insensitive_and_keep_their_case(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    await store.create(ws, "Api-Key", "first")
    assert await store.get(ws, "API-KEY") == "first"
    with pytest.raises(Conflict) as conflict:
        await store.create(ws, "api-key", "second")
    assert "'Api-Key' already exists" in conflict.value.message
    assert "second" not in conflict.value.message
    updated = await store.update(ws, "api-key", "third")
    assert updated == SecretItem("Api-Key", "third")
    assert await store.get(ws, "Api-Key") == "third"
    assert [item.name for item in await store.list(ws)] == ["Api-Key"]
    deleted = await store.delete(ws, "API-key")
    assert deleted.name == "Api-Key"
    assert await store.list(ws) == []


async def test_update_changes_the_value(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    await store.create(ws, "token", "old")
    assert await store.update(ws, "token", "new") == SecretItem("token", "new")
    assert await store.get(ws, "token") == "new"


@pytest.mark.parametrize("operation", ["get", "update", "delete"])
async def test_a_missing_name_is_not_found(backend: Backend, operation: str) -> None:
    store, ws = backend.store, backend.workspace_a
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: store.get(ws, "nothing-here"),
        "update": lambda: store.update(ws, "nothing-here", VALUE),
        "delete": lambda: store.delete(ws, "nothing-here"),
    }
    with pytest.raises(NotFound) as missing:
        await calls[operation]()
    assert missing.value.message == "No secret named 'nothing-here' in this workspace."
    assert missing.value.code == "secret_not_found"


async def test_deleted_secret_is_gone_and_its_name_can_be_used_again(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    await store.create(ws, "rotating", "first value")
    assert await store.delete(ws, "rotating") == SecretItem("rotating", "")
    with pytest.raises(NotFound):
        await store.get(ws, "rotating")
    assert await store.list(ws) == []
    with pytest.raises(NotFound):
        await store.delete(ws, "rotating")
    with pytest.raises(NotFound):
        await store.update(ws, "rotating", "a value for a deleted secret")
    # On Key Vault the name belongs to a soft-deleted secret: create recovers it, then sets.
    assert await store.create(ws, "rotating", "second value") == SecretItem(
        "rotating", "second value"
    )
    assert await store.get(ws, "rotating") == "second value"
    assert await store.list(ws) == [SecretItem("rotating", "")]


async def test_workspaces_have_their_own_namespaces(backend: Backend) -> None:
    store, a, b = backend.store, backend.workspace_a, backend.workspace_b
    await store.create(a, "db-password", "a's password")
    with pytest.raises(NotFound):
        await store.get(b, "db-password")
    with pytest.raises(NotFound):
        await store.update(b, "db-password", "b's attempt")
    with pytest.raises(NotFound):
        await store.delete(b, "db-password")
    assert await store.list(b) == []
    # The same name in another workspace is another secret.
    await store.create(b, "db-password", "b's password")
    assert await store.get(a, "db-password") == "a's password"
    assert await store.get(b, "db-password") == "b's password"
    await store.delete(a, "db-password")
    assert await store.get(b, "db-password") == "b's password"
    assert [item.name for item in await store.list(b)] == ["db-password"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "must not be empty"),
        ("my_key", "may contain only letters A-Z a-z, digits 0-9 and dashes (found '_')"),
        ("my key", "may contain only letters A-Z a-z, digits 0-9 and dashes (found ' ')"),
        ("clé", "may contain only letters A-Z a-z, digits 0-9 and dashes (found 'é')"),
        ("a/b", "may contain only letters A-Z a-z, digits 0-9 and dashes (found '/')"),
        ("x" * 128, "is 128 characters long; the limit is"),
    ],
)
async def test_names_follow_key_vault_rules(backend: Backend, name: str, reason: str) -> None:
    store, ws = backend.store, backend.workspace_a
    for call in (
        store.create(ws, name, VALUE),
        store.update(ws, name, VALUE),
        store.get(ws, name),
        store.delete(ws, name),
    ):
        with pytest.raises(Invalid) as invalid:
            await call
        assert invalid.value.code == "invalid_name"
        assert invalid.value.errors[0].field == "name"
        assert invalid.value.errors[0].message.startswith(reason)
        assert VALUE not in invalid.value.message


async def test_longest_names(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    # Local: Key Vault's 127. Azure: 127 less the prefix `ws7-` of workspace 7.
    longest = 123 if backend.kind == "azure" else 127
    await store.create(ws, "n" * longest, VALUE)
    assert await store.get(ws, "N" * longest) == VALUE
    with pytest.raises(Invalid) as invalid:
        await store.create(ws, "m" * (longest + 1), VALUE)
    message = invalid.value.errors[0].message
    assert message.startswith(f"is {longest + 1} characters long; the limit is {longest}")
    if backend.kind == "azure":
        assert "include this workspace's prefix of 4 characters" in message


async def test_values_must_be_non_empty_and_at_most_25_kib(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    with pytest.raises(Invalid) as empty:
        await store.create(ws, "empty", "")
    assert empty.value.errors[0].field == "value"
    too_long = "é" * (MAX_VALUE_BYTES // 2) + "x"  # 25 KiB + 1 byte in UTF-8
    with pytest.raises(Invalid) as big:
        await store.create(ws, "big", too_long)
    assert big.value.message == (
        f"Secret value is {MAX_VALUE_BYTES + 1} bytes long (UTF-8); the limit is {MAX_VALUE_BYTES}."
    )
    assert await store.list(ws) == []
    largest = "é" * (MAX_VALUE_BYTES // 2)
    await store.create(ws, "largest", largest)
    assert await store.get(ws, "largest") == largest
    with pytest.raises(Invalid):
        await store.update(ws, "largest", too_long)
    assert await store.get(ws, "largest") == largest


async def test_values_keep_every_character(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    value = 'line 1\nline 2\t"quoted" \\ back-slash {{secret:other}} 🔑 \u00a0end '
    await store.create(ws, "odd", value)
    assert await store.get(ws, "odd") == value


# --- references ----------------------------------------------------------------------------------


async def test_references_are_replaced(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    await store.create(ws, "user", "ada")
    await store.create(ws, "Password", r"p\1ss{{secret:user}}")
    text = "Basic {{secret:user}}:{{secret:password}} and again {{secret:user}}"
    resolved = await resolve_references(store, ws, text, destination=DESTINATION)
    # Values go in as they are (no regex escapes) and are not scanned again.
    assert resolved == r"Basic ada:p\1ss{{secret:user}} and again ada"


async def test_text_without_references_is_unchanged(backend: Backend) -> None:
    for text in ("", "Bearer abc", "{{secret}}", "{secret:x}", "{{ not a reference }}"):
        assert (
            await resolve_references(
                backend.store, backend.workspace_a, text, destination=DESTINATION
            )
            == text
        )


async def test_a_missing_reference_names_the_secret(backend: Backend) -> None:
    store, a, b = backend.store, backend.workspace_a, backend.workspace_b
    await store.create(a, "api-key", VALUE)
    assert (
        await resolve_references(store, a, "Bearer {{secret:api-key}}", destination=DESTINATION)
        == f"Bearer {VALUE}"
    )
    # Another workspace's secret does not resolve.
    with pytest.raises(NotFound) as missing:
        await resolve_references(store, b, "Bearer {{secret:api-key}}", destination=DESTINATION)
    assert "'api-key'" in missing.value.message
    assert VALUE not in missing.value.message


@pytest.mark.parametrize("reference", ["{{secret:my_key}}", "{{secret: api-key}}", "{{secret:}}"])
async def test_a_malformed_reference_is_invalid(backend: Backend, reference: str) -> None:
    await backend.store.create(backend.workspace_a, "api-key", VALUE)
    with pytest.raises(Invalid) as invalid:
        await resolve_references(
            backend.store, backend.workspace_a, f"Bearer {reference}", destination=DESTINATION
        )
    assert invalid.value.code == "invalid_secret_reference"
    assert reference in invalid.value.message


def test_validate_name_returns_the_name() -> None:
    assert validate_name("A-b-9") == "A-b-9"
    assert validate_name("x" * 120, max_length=120) == "x" * 120


# -- allowed origins ---------------------------------------------------------------------------


async def test_allowed_origins_are_normalized_and_kept(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    given = ("HTTPS://CRM.Example.com:443/", "http://127.0.0.1:8080", "https://crm.example.com")
    created = await store.create(ws, "crm-token", VALUE, given)
    expected = ("https://crm.example.com", "http://127.0.0.1:8080")
    assert created.allowed_origins == expected
    assert (await store.read(ws, "CRM-TOKEN")).allowed_origins == expected
    [listed] = await store.list(ws)
    assert (listed.name, listed.value, listed.allowed_origins) == ("crm-token", "", expected)
    # A PUT of the value alone keeps them; null lifts them; a list replaces them.
    assert (await store.update(ws, "crm-token", "v2")).allowed_origins == expected
    assert (await store.read(ws, "crm-token")).allowed_origins == expected
    assert (await store.update(ws, "crm-token", "v3", None)).allowed_origins is None
    assert (await store.read(ws, "crm-token")).allowed_origins is None
    replaced = await store.update(ws, "crm-token", "v4", ("https://bücher.example",))
    assert replaced.allowed_origins == ("https://xn--bcher-kva.example",)
    assert (await store.read(ws, "crm-token")).value == "v4"


async def test_a_secret_resolves_only_for_its_allowed_origins(backend: Backend) -> None:
    store, ws = backend.store, backend.workspace_a
    await store.create(ws, "crm-token", VALUE, ("https://crm.example.com",))
    await store.create(ws, "anywhere", "open-value")  # no allowed_origins: any origin
    text = "Bearer {{secret:crm-token}}"
    for allowed in ("https://crm.example.com/api?q=1", "https://CRM.example.com:443/x"):
        assert await resolve_references(store, ws, text, destination=allowed) == f"Bearer {VALUE}"
    for refused in (
        "https://evil.example/collect",
        "http://crm.example.com/api",  # another scheme
        "https://crm.example.com:8443/api",  # another port
        "https://crm.example.com.evil.example/",
        "not a url",
    ):
        with pytest.raises(Invalid) as caught:
            await resolve_references(
                store, ws, f"{text} {{{{secret:anywhere}}}}", destination=refused
            )
        assert caught.value.code == "secret_origin_not_allowed"
        assert "'crm-token'" in caught.value.message
        assert "https://crm.example.com" in caught.value.message
        assert VALUE not in caught.value.message
    resolved = await resolve_references(
        store, ws, "{{secret:anywhere}}", destination="https://evil.example/"
    )
    assert resolved == "open-value"


@pytest.mark.parametrize(
    "origins",
    [
        ["https://crm.example.com/api"],
        ["ftp://crm.example.com"],
        ["https://user:pw@crm.example.com"],
        ["https://a..b"],
        ["https://crm.example.com?x=1"],
        ["https://crm.example.com:99999"],
        ["crm.example.com"],
        [],
    ],
)
async def test_invalid_allowed_origins_are_refused(backend: Backend, origins: list[str]) -> None:
    with pytest.raises(Invalid) as caught:
        await backend.store.create(backend.workspace_a, "crm-token", VALUE, tuple(origins))
    assert caught.value.code == "invalid_origins"
    assert caught.value.errors[0].field.startswith("allowed_origins")
    assert await backend.store.list(backend.workspace_a) == []
