"""The fuzz stage's accepted exceptions, in one place: how schemathesis' checks are tuned for
this service, and each (operation, check) pair switched off, with the reason. Empty SUPPRESSIONS
is the goal; an entry needs a reason a reviewer can check."""

from __future__ import annotations

from typing import NamedTuple

#: negative_data_rejection: the statuses that count as "refused". Schemathesis' defaults, plus
#: 413 (a generated body above CHATSVC_MAX_BODY_BYTES, e.g. 500 enum values of 100 kB each, is
#: refused by size before it is parsed) and 431 (headers above CHATSVC_MAX_HEADER_BYTES): both
#: are refusals, documented on every operation.
REJECTED = (
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "431",
    "5xx",
)


class Suppression(NamedTuple):
    operation_id: str
    check: str
    reason: str


SUPPRESSIONS: tuple[Suppression, ...] = ()


def config_toml() -> str:
    """The schemathesis configuration file of the stage."""
    statuses = ", ".join(f'"{status}"' for status in REJECTED)
    blocks = [
        # No cache of earlier runs' failures (replayed first otherwise): a run depends only on
        # the seed and the code.
        "[cache]\nenabled = false\n",
        f"[checks.negative_data_rejection]\nexpected-statuses = [{statuses}]\n",
    ]
    for item in SUPPRESSIONS:
        blocks.append(
            "[[operations]]\n"
            f'include-operation-id = "{item.operation_id}"\n'
            f"checks.{item.check}.enabled = false\n"
        )
    return "\n".join(blocks)
