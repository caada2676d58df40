"""Standard Webhooks signatures (https://www.standardwebhooks.com): secrets, the
`webhook-signature` header, and its verification, so any receiver's Standard Webhooks or Svix
library accepts what chatsvc sends."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Final

from chatsvc.kit.errors import Unauthenticated

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format's prefix, not a secret
ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
DEFAULT_TOLERANCE_SECONDS: Final = 300


class SignatureInvalid(Unauthenticated):
    """A webhook whose headers are missing, malformed, too old or too new, or unsigned by the
    secret. The message says which, never the secret or the expected signature."""

    def __init__(self, message: str, *, code: str = "webhook_signature_invalid") -> None:
        super().__init__(message, code=code)


def new_secret() -> str:
    """A fresh signing secret, "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a "whsec_<base64>" secret (the prefix is optional, as in the reference
    libraries). ValueError when it is not base64 or empty."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # The reference libraries accept unpadded base64.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    # The signed content is "{id}.{timestamp}.{body}" with the body's exact bytes.
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for a message: "v1,<base64 HMAC-SHA256>"."""
    digest = _digest(secret_key(secret), msg_id, timestamp, body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return when `body` and `headers` carry a valid, fresh signature by `secret`; raise
    SignatureInvalid otherwise. Several space-separated signatures are accepted (a sender
    rotating its secret signs with both); versions other than v1 are skipped."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(ID_HEADER, "").strip()
    raw_timestamp = lowered.get(TIMESTAMP_HEADER, "").strip()
    header = lowered.get(SIGNATURE_HEADER, "").strip()
    if not (msg_id and raw_timestamp and header):
        raise SignatureInvalid("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not raw_timestamp.isdigit():
        raise SignatureInvalid("webhook-timestamp is not a unix time in seconds")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    # Bounded both ways: a replayed old message and a forged far-future one are both refused.
    if timestamp < current - tolerance_seconds:
        raise SignatureInvalid("webhook-timestamp is too old")
    if timestamp > current + tolerance_seconds:
        raise SignatureInvalid("webhook-timestamp is too far in the future")
    expected = _digest(secret_key(secret), msg_id, timestamp, body)
    matched = False
    for candidate in header.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Every candidate is compared (no early exit), each in constant time.
        matched = hmac.compare_digest(expected, given) or matched
    if not matched:
        raise SignatureInvalid("no webhook-signature matches the body")
