"""Path parameters of the cognitive face: integer ids, refused (422) outside the id range
before any query runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from chatsvc.kit.validation import MAX_ID

AssistantId = Annotated[int, Path(ge=1, le=MAX_ID, description="The assistant's id.")]
ChatId = Annotated[int, Path(ge=1, le=MAX_ID, description="The chat's id.")]
MessageId = Annotated[int, Path(ge=1, le=MAX_ID, description="The message's id.")]
JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="The job's id.")]
