"""The local secret backend's table: values encrypted at rest (Fernet, key from settings)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from chatsvc.kit.db import Base, IdType, TimestampMixin


class StoredSecret(TimestampMixin, Base):
    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    #: Key Vault's rules: 1-127 characters, letters, digits and dashes
    name: Mapped[str] = mapped_column(String(127))
    #: the Fernet token of the value; never the value
    ciphertext: Mapped[str] = mapped_column(Text)
