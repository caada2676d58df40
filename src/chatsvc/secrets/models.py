"""The local secret backend's table: values encrypted at rest (Fernet, key from settings)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, JSONType, TimestampMixin


class StoredSecret(TimestampMixin, Base):
    __tablename__ = "secrets"

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    #: Key Vault's rules: 1-127 characters, letters, digits and dashes; shown as written, compared
    #: case-insensitively (as Key Vault does)
    name: Mapped[str] = mapped_column(String(127))
    #: the Fernet token of the value bound to its workspace and name; never the value
    ciphertext: Mapped[str] = mapped_column(Text)
    #: the origins (`https://host[:port]`) the value may be sent to, as listed; null: any. The
    #: copy sealed in the ciphertext is the one enforced (a row altered here widens nothing).
    allowed_origins: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)


# One name per workspace whatever its case: `API-KEY` and `api-key` are one secret on both backends.
Index(
    "uq_secrets_workspace_id_lower_name",
    StoredSecret.workspace_id,
    func.lower(StoredSecret.name),
    unique=True,
)
