"""One tiny registry type, used for datasets, models, unlearning methods and attacks."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import ResidueError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise RuntimeError(f"{self.kind} '{name}' registered twice")
            self._items[name] = item
            return item

        return add

    def unregister(self, name: str) -> T:
        """Remove an entry (a plug-in loaded for one session, a test's deliberately broken one) and return it."""
        self.get(name)
        return self._items.pop(name)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ResidueError(f"Unknown {self.kind} '{name}'. Known: {known}.") from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
