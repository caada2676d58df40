"""Signed webhook delivery: POST a body to a callback URL with Standard Webhooks headers, retrying
transient failures with capped exponential backoff. Pass the guarded outbound client."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from chatsvc.kit.errors import UpstreamError
from chatsvc.kit.outbound import OutboundBlocked, describe_url
from chatsvc.webhooks.signing import signature_headers

logger = logging.getLogger("chatsvc.webhooks")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A delivery the receiver accepted (2xx)."""

    msg_id: str
    #: attempts made, the successful one included
    attempts: int
    status_code: int


class DeliveryFailed(UpstreamError):
    """The receiver did not accept the webhook. `permanent` failures (a 4xx other than 408/429,
    a URL the outbound policy refuses) were not retried; the others ran out of attempts."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        status_code: int | None,
        permanent: bool,
        code: str = "webhook_delivery_failed",
    ) -> None:
        super().__init__(message, code=code)
        self.attempts = attempts
        self.status_code = status_code
        self.permanent = permanent


def _retryable_status(status: int) -> bool:
    # 408: the receiver timed out reading our request, as transient as a 503.
    return status in (408, 429) or status >= 500


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base_delay: float, max_delay: float) -> float:
    """The pause after failed attempt `attempt` (1-based): base, 2*base, 4*base, ... capped."""
    return min(max_delay, base_delay * math.pow(2, attempt - 1))


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    secret: str,
    msg_id: str,
    content_type: str = "application/json",
    attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> DeliveryResult:
    """POST `body` to `url`, signed with `secret`, until the receiver answers 2xx.

    `msg_id` is the webhook-id and idempotency-key of every attempt (use the job id: a receiver
    then recognises a retry, even one from a re-run job). Each attempt is signed afresh with the
    current timestamp, so a late retry is not refused as stale. Connection errors, timeouts,
    408, 429 and 5xx are retried after 1, 2, 4 ... x base_delay (capped at max_delay, or the
    receiver's Retry-After when that is longer but not above max_delay); other answers are final.
    Raises DeliveryFailed when no attempt succeeded."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    origin = describe_url(url)
    last = "no attempt made"
    status: int | None = None
    for attempt in range(1, attempts + 1):
        headers = {
            "content-type": content_type,
            "idempotency-key": msg_id,
            **signature_headers(secret, msg_id, int(clock()), body),
        }
        wait_hint: float | None = None
        try:
            request = client.build_request("POST", url, content=body, headers=headers)
            # Streamed and closed unread: only the status matters, whatever the body's size.
            response = await client.send(request, stream=True)
            await response.aclose()
        except OutboundBlocked as exc:
            raise DeliveryFailed(
                f"webhook {msg_id} to {origin} refused: {exc.message}",
                attempts=attempt,
                status_code=None,
                permanent=True,
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise DeliveryFailed(
                f"webhook {msg_id} to {origin} cannot be sent: {exc}",
                attempts=attempt,
                status_code=None,
                permanent=True,
            ) from exc
        except httpx.TransportError as exc:  # connect/read errors, timeouts, dropped connections
            status, last = None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            status = response.status_code
            if 200 <= status < 300:
                return DeliveryResult(msg_id=msg_id, attempts=attempt, status_code=status)
            if not _retryable_status(status):
                raise DeliveryFailed(
                    f"webhook {msg_id} to {origin} was refused with HTTP {status} (not retried)",
                    attempts=attempt,
                    status_code=status,
                    permanent=True,
                )
            last = f"HTTP {status}"
            wait_hint = retry_after_seconds(response.headers.get("retry-after"))
        if attempt == attempts:
            break
        delay = backoff_delay(attempt, base_delay, max_delay)
        # A receiver's own pause is honoured when it fits our cap; a longer one would hold a
        # worker for too long, so the backoff applies and the job may be retried later.
        if wait_hint is not None and wait_hint <= max_delay:
            delay = max(delay, wait_hint)
        logger.warning(
            "webhook %s to %s: attempt %d/%d failed (%s); retrying in %.2f s",
            msg_id,
            origin,
            attempt,
            attempts,
            last,
            delay,
        )
        await sleep(delay)
    raise DeliveryFailed(
        f"webhook {msg_id} to {origin} failed after {attempts} attempt(s); last: {last}",
        attempts=attempts,
        status_code=status,
        permanent=False,
    )
