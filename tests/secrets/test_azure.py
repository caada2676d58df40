"""The Azure backend on the wire: the real azure-keyvault-secrets SDK against the fake vault
(tests/fakes/keyvault.py), checking what reaches Key Vault and what the store makes of Key Vault's
answers: the bearer challenge, the workspace prefix, paging, soft delete and its 409s, failures."""

from __future__ import annotations

import logging

import pytest
from pydantic import AnyHttpUrl

from chatsvc.kit.errors import Conflict, Invalid, NotFound, Unavailable, UpstreamError
from chatsvc.secrets.azure import AzureSecretStore, max_name_length, workspace_prefix
from chatsvc.secrets.store import build_secret_store
from tests.fakes.keyvault import FakeKeyVault
from tests.fixtures.app import make_settings
from tests.fixtures.secrets import azure_store

VALUE = "azure-value-91b2c3d4-not-for-logs"
WS = 7


@pytest.fixture
async def store(vault: FakeKeyVault) -> AzureSecretStore:
    return azure_store(vault)


async def test_the_first_request_meets_the_bearer_challenge(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    credential = store._credential
    await store.create(WS, "api-key", VALUE)
    first, second = vault.requests[:2]
    # The SDK elicits the challenge with a bodiless request, then sends the real one.
    assert (first.authorized, first.has_body) == (False, False)
    assert (second.method, second.path, second.authorized) == ("GET", "/secrets/ws7-api-key/", True)
    assert credential.requests == [(("https://vault.azure.net/.default",), vault.tenant_id)]  # type: ignore[attr-defined]
    assert all(r.authorized for r in vault.requests[1:])
    assert vault.api_versions == {"2026-04-01"}
    await store.close()
    assert credential.closed  # type: ignore[attr-defined]


async def test_a_workspace_secret_is_a_prefixed_vault_secret(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    await store.create(WS, "OpenAI-Key", VALUE)
    assert vault.names() == ["ws7-OpenAI-Key"]
    assert vault.value("ws7-openai-key") == VALUE
    assert vault.active["ws7-openai-key"].versions[-1].tags == {"chatsvc-workspace": "7"}
    put = [r for r in vault.requests if r.method == "PUT" and r.authorized]
    assert [r.path for r in put] == ["/secrets/ws7-OpenAI-Key"]


async def test_list_reads_every_page_and_only_the_workspace_prefix() -> None:
    vault = FakeKeyVault(page_size=2)
    store = azure_store(vault)
    ours = ["a", "B", "c", "d-1", "e"]
    for name in ours:
        vault.seed(f"ws7-{name}", f"value of {name}")
    for foreign in ("ws70-a", "ws17-b", "ws7x-c", "ws7-", "other-app-secret", "ws8-a"):
        vault.seed(foreign, "not ours")
    assert [item.name for item in await store.list(WS)] == ours
    assert all(item.value == "" for item in await store.list(WS))
    pages = [r for r in vault.requests if r.path == "/secrets" and r.authorized]
    assert len(pages) == 2 * 6  # two listings of 11 secrets, 2 per page
    assert sum("$skiptoken" in r.query for r in pages) == 2 * 5
    await store.close()


async def test_create_after_delete_recovers_the_soft_deleted_secret(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    await store.create(WS, "rotating", "first value")
    await store.delete(WS, "rotating")
    # Soft delete: the vault keeps it; the delete waited until Key Vault listed it as deleted.
    assert vault.deleted_names() == ["ws7-rotating"]
    assert any(r.path == "/deletedsecrets/ws7-rotating" for r in vault.requests)
    requests_before = len(vault.requests)
    await store.create(WS, "rotating", "second value")
    paths = [(r.method, r.path) for r in vault.requests[requests_before:]]
    assert paths == [
        ("GET", "/secrets/ws7-rotating/"),  # not there (404)
        ("PUT", "/secrets/ws7-rotating"),  # 409 ObjectIsDeletedButRecoverable
        ("POST", "/deletedsecrets/ws7-rotating/recover"),
        ("GET", "/secrets/ws7-rotating/"),  # recovery in progress (404)
        ("GET", "/secrets/ws7-rotating/"),  # recovered
        ("PUT", "/secrets/ws7-rotating"),  # the new value
    ]
    assert vault.versions("ws7-rotating") == ["first value", "second value"]
    assert vault.deleted_names() == []
    assert await store.get(WS, "rotating") == "second value"


async def test_recover_refused_is_a_409_telling_the_operator_to_purge(
    vault: FakeKeyVault, store: AzureSecretStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatsvc.secrets")
    await store.create(WS, "stuck", "first value")
    await store.delete(WS, "stuck")
    vault.allow_recover = False
    with pytest.raises(Conflict) as conflict:
        await store.create(WS, "stuck", "second value")
    assert conflict.value.code == "secret_deleted_in_vault"
    assert "az keyvault secret purge --name ws7-stuck" in conflict.value.message
    assert "HTTP 403" in conflict.value.message
    assert "does not have secrets recover permission" in caplog.text  # Key Vault's reason, logged
    # The operator purges it: the name is free again.
    vault.purge("ws7-stuck")
    await store.create(WS, "stuck", "second value")
    assert vault.versions("ws7-stuck") == ["second value"]


async def test_a_name_still_being_deleted_is_a_409_to_retry(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    vault.seed("ws7-busy", "old")
    vault.begin_delete("ws7-busy", polls=3)  # another replica deleted it a moment ago
    with pytest.raises(Conflict) as conflict:
        await store.create(WS, "busy", "new")
    assert conflict.value.code == "secret_being_deleted"
    assert "try again in a few seconds" in conflict.value.message


async def test_without_soft_delete_the_name_is_free_at_once() -> None:
    vault = FakeKeyVault(soft_delete=False)
    store = azure_store(vault)
    await store.create(WS, "plain", "first")
    await store.delete(WS, "plain")
    assert vault.deleted_names() == []
    assert not any(r.path.startswith("/deletedsecrets") for r in vault.requests)
    await store.create(WS, "plain", "second")
    assert vault.versions("ws7-plain") == ["second"]
    await store.close()


async def test_update_of_a_soft_deleted_secret_is_not_found(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    await store.create(WS, "gone", VALUE)
    await store.delete(WS, "gone")
    with pytest.raises(NotFound):
        await store.update(WS, "gone", "new")
    assert vault.deleted_names() == ["ws7-gone"]  # not recovered by an update


def test_the_prefix_counts_against_key_vaults_127_characters() -> None:
    assert workspace_prefix(7) == "ws7-"
    assert max_name_length(7) == 123
    assert max_name_length(123_456) == 127 - len("ws123456-")
    assert max_name_length(2**63 - 1) == 127 - 22  # the largest workspace id


async def test_long_names_in_a_large_workspace(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    workspace = 123_456
    await store.create(workspace, "x" * 118, VALUE)
    with pytest.raises(Invalid) as invalid:
        await store.create(workspace, "x" * 119, VALUE)
    assert invalid.value.errors[0].message == (
        "is 119 characters long; the limit is 118 here (Key Vault's 127 include this "
        "workspace's prefix of 9 characters)"
    )
    assert vault.names() == ["ws123456-" + "x" * 118]


async def test_key_vault_errors_become_clear_upstream_errors(
    vault: FakeKeyVault, store: AzureSecretStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.create(WS, "api-key", VALUE)
    caplog.set_level(logging.DEBUG)
    vault.fail_next.append((403, "Forbidden", "Operation get is not allowed on a disabled secret."))
    with pytest.raises(UpstreamError) as refused:
        await store.get(WS, "api-key")
    assert refused.value.code == "secret_store_error"
    assert refused.value.message == (
        "Key Vault could not read secret 'api-key': HTTP 403 Forbidden."
    )
    assert "not allowed on a disabled secret" in caplog.text  # for the operator
    assert VALUE not in caplog.text


async def test_a_failing_vault_is_retried_then_reported(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    await store.create(WS, "api-key", VALUE)
    before = len(vault.requests)
    vault.fail_next.extend([(503, "ServiceUnavailable", "Try later.")] * 2)
    assert await store.get(WS, "api-key") == VALUE  # the SDK retried twice
    assert [r.path for r in vault.requests[before:]] == ["/secrets/ws7-api-key/"] * 3
    assert vault.sleeps  # with back-off, through the transport
    vault.fail_next.extend([(503, "ServiceUnavailable", "Try later.")] * 10)
    with pytest.raises(UpstreamError) as failed:
        await store.get(WS, "api-key")
    assert "HTTP 503 ServiceUnavailable" in failed.value.message


async def test_an_unreachable_vault_is_unavailable(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    vault.unreachable = True
    with pytest.raises(Unavailable) as unreachable:
        await store.list(WS)
    assert unreachable.value.code == "secret_store_unavailable"


async def test_a_credential_that_cannot_get_a_token_is_reported(
    vault: FakeKeyVault, store: AzureSecretStore
) -> None:
    store._credential.fail = True  # type: ignore[attr-defined]
    with pytest.raises(UpstreamError) as denied:
        await store.get(WS, "api-key")
    assert denied.value.code == "secret_store_denied"
    assert "credentials" in denied.value.message


async def test_build_secret_store_makes_the_configured_backend(pg_url: str) -> None:
    sdk_http = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    level = sdk_http.level
    sdk_http.setLevel(logging.NOTSET)
    try:
        await _build_azure(pg_url)
        assert sdk_http.level == logging.WARNING  # the SDK's per-request INFO lines are quieted
        sdk_http.setLevel(logging.INFO)
        await _build_azure(pg_url)
        assert sdk_http.level == logging.INFO  # an operator's choice is kept
    finally:
        sdk_http.setLevel(level)


async def _build_azure(pg_url: str) -> None:
    settings = make_settings(
        pg_url,
        secret_backend="azure",
        azure_key_vault_url=AnyHttpUrl("https://contoso.vault.azure.net/"),
    )
    store = build_secret_store(settings, None)  # type: ignore[arg-type]
    assert isinstance(store, AzureSecretStore)
    assert store.vault_url == "https://contoso.vault.azure.net"
    await store.close()
    with pytest.raises(ValueError, match="CHATSVC_AZURE_KEY_VAULT_URL is required"):
        build_secret_store(make_settings(pg_url, secret_backend="azure"), None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be an https:// URL"):
        build_secret_store(
            make_settings(
                pg_url,
                secret_backend="azure",
                azure_key_vault_url=AnyHttpUrl("http://contoso.vault.azure.net/"),
            ),
            None,  # type: ignore[arg-type]
        )
