"""Page-number pagination shared by every list: the request side (page, page_size) and the
result (the items of one page and the total count)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    params: PageParams

    @property
    def has_next(self) -> bool:
        return self.params.offset + len(self.items) < self.total

    @property
    def has_previous(self) -> bool:
        return self.params.page > 1
