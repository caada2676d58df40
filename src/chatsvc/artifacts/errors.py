"""Errors of the chat artifacts that carry more than a message."""

from __future__ import annotations

from chatsvc.kit.errors import Conflict, FieldError


class VersionConflict(Conflict):
    """A draft change made against another version than the current one (409). Carries the
    current version (0: the caller has no draft of the entry) so a client can reload and retry."""

    def __init__(self, current_version: int, draft_id: str | None) -> None:
        where = f"draft {draft_id}" if draft_id else "the draft"
        super().__init__(
            f"expected_version does not match: {where} is at version {current_version}. "
            "Read it again, reapply the change and send it with that version.",
            code="version_conflict",
        )
        self.errors = [FieldError("expected_version", f"the current version is {current_version}")]
        self.current_version = current_version
        self.draft_id = draft_id
