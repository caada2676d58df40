"""Webhook signatures (the Standard Webhooks reference vector, round trips, tampering, the time
window) and signed delivery through the guarded client to a real receiver on loopback: retries,
backoff, Retry-After, what is final, and that a retried delivery arrives once per webhook-id."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_address

import httpx
import pytest

from chatsvc.kit import outbound
from chatsvc.kit.outbound import IPAddress, OutboundPolicy, guarded_client
from chatsvc.webhooks.delivery import (
    DeliveryFailed,
    backoff_delay,
    deliver,
    retry_after_seconds,
)
from chatsvc.webhooks.signing import (
    SignatureInvalid,
    new_secret,
    secret_key,
    sign,
    signature_headers,
    verify,
)
from tests.fakes.callback_receiver import CallbackReceiver, running_callback_receiver

# The test vector of the Standard Webhooks reference libraries
# (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function;
# the Svix libraries carry the same one).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

BODY = b'{"export_id": 7, "status": "done", "url": "https://files.example/e/7.csv"}'


# -- signing -------------------------------------------------------------------------------


def test_the_reference_vector_signs_and_verifies() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 10)
    # the prefix is optional, as in the reference libraries
    assert sign(VECTOR_SECRET.removeprefix("whsec_"), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == (
        VECTOR_SIGNATURE
    )


def test_new_secrets_are_32_random_bytes_in_the_whsec_format() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert secret_key(first) != secret_key(second)


@pytest.mark.parametrize("bad", ["whsec_", "whsec_not base64!", ""])
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        sign(bad, "id", 1, b"")


def _signed(secret: str, msg_id: str = "job-1", body: bytes = BODY) -> tuple[dict[str, str], int]:
    now = int(time.time())
    return signature_headers(secret, msg_id, now, body), now


def test_a_round_trip_verifies_with_any_header_casing() -> None:
    secret = new_secret()
    headers, _ = _signed(secret)
    verify(secret, headers, BODY)
    verify(secret, {k.title(): v for k, v in headers.items()}, BODY)
    verify(secret, httpx.Headers(headers), BODY)


def test_tampering_is_refused() -> None:
    secret = new_secret()
    headers, now = _signed(secret)
    with pytest.raises(SignatureInvalid, match="no webhook-signature matches"):
        verify(secret, headers, BODY.replace(b"done", b"fail"))
    with pytest.raises(SignatureInvalid, match="no webhook-signature matches"):
        verify(secret, {**headers, "webhook-timestamp": str(now + 1)}, BODY)
    with pytest.raises(SignatureInvalid, match="no webhook-signature matches"):
        verify(secret, {**headers, "webhook-id": "job-2"}, BODY)
    with pytest.raises(SignatureInvalid, match="no webhook-signature matches"):
        verify(new_secret(), headers, BODY)


def test_missing_or_malformed_headers_are_refused() -> None:
    secret = new_secret()
    headers, _ = _signed(secret)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(SignatureInvalid, match="missing"):
            verify(secret, partial, BODY)
    with pytest.raises(SignatureInvalid, match="not a unix time"):
        verify(secret, {**headers, "webhook-timestamp": "yesterday"}, BODY)
    for junk in ("v1,", "v1,***", "garbage", "v2," + headers["webhook-signature"][3:]):
        with pytest.raises(SignatureInvalid):
            verify(secret, {**headers, "webhook-signature": junk}, BODY)


def test_one_matching_signature_among_several_is_enough() -> None:
    secret = new_secret()
    headers, _ = _signed(secret)
    several = f"v1,bm9wZQ== v1a,c29tZXRoaW5n {headers['webhook-signature']} v1,Ceo5qEr07ixe"
    verify(secret, {**headers, "webhook-signature": several}, BODY)


def test_the_timestamp_must_be_within_the_tolerance() -> None:
    secret = new_secret()
    ts = 1_700_000_000
    headers = signature_headers(secret, "job-1", ts, BODY)
    verify(secret, headers, BODY, now=ts + 299)
    verify(secret, headers, BODY, now=ts - 299)
    with pytest.raises(SignatureInvalid, match="too old"):
        verify(secret, headers, BODY, now=ts + 301)
    with pytest.raises(SignatureInvalid, match="too far in the future"):
        verify(secret, headers, BODY, now=ts - 301)
    verify(secret, headers, BODY, now=ts + 3000, tolerance_seconds=3600)
    with pytest.raises(SignatureInvalid, match="too old"):
        verify(secret, headers, BODY, now=ts + 11, tolerance_seconds=10)


# -- backoff arithmetic --------------------------------------------------------------------


def test_the_delay_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 1.0, 30.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    for junk in (None, "", "soon", "-5", "1.5"):
        assert retry_after_seconds(junk) is None


# -- delivery against a real receiver ------------------------------------------------------


class Sleeps:
    """Records the pauses instead of taking them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def ticking_clock(start: float) -> Iterator[float]:
    while True:
        yield start
        start += 1


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[CallbackReceiver]:
    async with running_callback_receiver(secret=secret) as server:
        yield server


def _client(port: int) -> httpx.AsyncClient:
    return guarded_client(
        OutboundPolicy(
            allowed_schemes={"http", "https"}, allowed_ports={port}, allow_list=["127.0.0.1/32"]
        )
    )


async def test_two_failures_then_success_is_three_signed_attempts_of_one_webhook(
    receiver: CallbackReceiver, secret: str
) -> None:
    receiver.configure(fail_first=2)
    sleeps = Sleeps()
    clock = ticking_clock(time.time())
    async with _client(receiver.port) as client:
        result = await deliver(
            client,
            receiver.url,
            BODY,
            secret=secret,
            msg_id="export-job-41",
            base_delay=0.01,
            sleep=sleeps,
            clock=lambda: next(clock),
        )
    assert (result.attempts, result.status_code, result.msg_id) == (3, 200, "export-job-41")
    assert [d.status for d in receiver.deliveries] == [500, 500, 200]
    assert all(d.signature_ok for d in receiver.deliveries)
    assert all(d.body == BODY for d in receiver.deliveries)
    assert {d.headers["idempotency-key"] for d in receiver.deliveries} == {"export-job-41"}
    assert {d.headers["content-type"] for d in receiver.deliveries} == {"application/json"}
    # re-signed per attempt with its own timestamp
    stamps = [int(d.headers["webhook-timestamp"]) for d in receiver.deliveries]
    assert stamps[1] == stamps[0] + 1 and stamps[2] == stamps[0] + 2
    assert len({d.headers["webhook-signature"] for d in receiver.deliveries}) == 3
    assert receiver.distinct_ids == {"export-job-41"}
    assert await receiver.wait_for(1)
    assert sleeps.delays == [0.01, 0.02]


async def test_a_client_error_is_final(receiver: CallbackReceiver, secret: str) -> None:
    receiver.configure(status=400)
    sleeps = Sleeps()
    async with _client(receiver.port) as client:
        with pytest.raises(DeliveryFailed, match="refused with HTTP 400") as caught:
            await deliver(client, receiver.url, BODY, secret=secret, msg_id="j", sleep=sleeps)
    assert (caught.value.attempts, caught.value.status_code) == (1, 400)
    assert caught.value.permanent
    assert len(receiver.deliveries) == 1
    assert sleeps.delays == []
    assert receiver.distinct_ids == set()


async def test_a_bad_signature_is_refused_by_the_receiver_and_not_retried(
    receiver: CallbackReceiver,
) -> None:
    async with _client(receiver.port) as client:
        with pytest.raises(DeliveryFailed, match="HTTP 401"):
            await deliver(client, receiver.url, BODY, secret=new_secret(), msg_id="j")
    assert receiver.deliveries[0].signature_ok is False


async def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{port}/hooks/SECRET-PATH?token=abc"
    async with _client(port) as client:
        with pytest.raises(DeliveryFailed) as caught:
            await deliver(
                client, url, BODY, secret=new_secret(), msg_id="j", attempts=3, sleep=sleeps
            )
    error = caught.value
    assert (error.attempts, error.status_code, error.permanent) == (3, None, False)
    assert "failed after 3 attempt(s)" in error.message
    assert "ConnectError" in error.message
    assert f"http://127.0.0.1:{port}" in error.message
    assert "SECRET-PATH" not in error.message and "abc" not in error.message
    assert sleeps.delays == [1.0, 2.0]


async def test_retry_after_is_honoured_when_it_fits_the_cap(
    receiver: CallbackReceiver, secret: str
) -> None:
    async with _client(receiver.port) as client:
        receiver.configure(fail_first=1, fail_status=429, retry_after="3")
        sleeps = Sleeps()
        await deliver(
            client, receiver.url, BODY, secret=secret, msg_id="a", base_delay=0.01, sleep=sleeps
        )
        assert sleeps.delays == [3.0]
        # longer than max_delay: the backoff applies instead of holding the worker
        receiver.configure(fail_first=1, fail_status=503, retry_after="3600")
        sleeps = Sleeps()
        await deliver(
            client, receiver.url, BODY, secret=secret, msg_id="b", base_delay=0.01, sleep=sleeps
        )
        assert sleeps.delays == [0.01]
    assert receiver.distinct_ids == {"a", "b"}


async def test_server_errors_until_the_last_attempt_fail_with_the_last_status(
    receiver: CallbackReceiver, secret: str
) -> None:
    receiver.configure(fail_first=10, fail_status=503)
    sleeps = Sleeps()
    async with _client(receiver.port) as client:
        with pytest.raises(DeliveryFailed, match="last: HTTP 503") as caught:
            await deliver(
                client,
                receiver.url,
                BODY,
                secret=secret,
                msg_id="j",
                attempts=4,
                base_delay=1.0,
                max_delay=3.0,
                sleep=sleeps,
            )
    assert (caught.value.attempts, caught.value.status_code) == (4, 503)
    assert not caught.value.permanent
    assert sleeps.delays == [1.0, 2.0, 3.0]
    assert len(receiver.deliveries) == 4
    assert {d.webhook_id for d in receiver.deliveries} == {"j"}


async def test_a_url_the_policy_refuses_is_final_and_sends_nothing() -> None:
    sleeps = Sleeps()
    async with guarded_client(OutboundPolicy()) as client:
        with pytest.raises(DeliveryFailed, match=r"10\.0\.0\.1.*private") as caught:
            await deliver(
                client, "https://10.0.0.1/hook", BODY, secret=new_secret(), msg_id="j", sleep=sleeps
            )
    assert caught.value.permanent
    assert caught.value.attempts == 1
    assert sleeps.delays == []


async def test_delivery_over_https_to_a_hostname(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        assert host == "hooks.customer.test"
        return [ip_address("127.0.0.1")]

    monkeypatch.setattr(outbound, "resolve", resolve)
    async with running_callback_receiver(
        secret=secret, tls=True, tls_hostname="hooks.customer.test", fail_first=1
    ) as receiver:
        policy = OutboundPolicy(allowed_ports={receiver.port}, allow_list=["127.0.0.1/32"])
        async with guarded_client(policy, ssl_context=receiver.client_ssl_context()) as client:
            result = await deliver(
                client,
                receiver.url_for("hooks.customer.test"),
                BODY,
                secret=secret,
                msg_id="job-9",
                base_delay=0.01,
            )
        assert result.attempts == 2
        assert receiver.distinct_ids == {"job-9"}
        assert all(d.signature_ok for d in receiver.deliveries)
