"""Logging setup: one line per record; access lines are JSON already."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_chatsvc", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler._chatsvc = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Client libraries log every request URL at INFO; a workspace's URLs (callbacks, MCP
    # servers, retrieval backends) may carry tokens in their paths. Our access log and
    # error details name hosts only.
    for noisy in ("httpx", "httpx2", "mcp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
