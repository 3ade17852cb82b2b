"""Order ownership: whose each order is, by cloid, for every component of one process.

A strategy (or the risk layer) **claims** each order it sends, before sending it, under an ``Owner``: the
component's name and a sub-key (``Owner("copy", "0xleader")``: the copy of one leader;
``Owner("risk", "stop")``: a native stop), and **releases** it once the order can no longer rest or fill.
Everyone else asks: the risk layer's stale-order sweep and orphan cancels touch only orders nobody owns;
a reconciler or a UI shows whose an order is.

Cloids are compared in lower case (the venue's hex spelling may differ). A cloid has one owner: claiming
it again for the same owner is a no-op, for another one an ``OwnershipConflict`` (two components would
both act on it).

Nothing is persisted here: at start each owner claims again what its own records hold (the copy journal
its unresolved entries, the risk layer the stops it recognises among the open orders), so the registry is
rebuilt from the journals before anything is swept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Owner:
    """Who an order belongs to: a strategy (or ``risk``) and a sub-key within it."""

    strategy: str
    key: str = ""

    def __str__(self) -> str:
        return self.strategy if not self.key else f"{self.strategy}:{self.key}"


class OwnershipConflict(ValueError):
    """A cloid already owned by someone else was claimed."""


class OrderOwners:
    """The registry: cloid -> owner, for the orders at work in this process."""

    def __init__(self, claims: Iterable[tuple[str, Owner]] = ()) -> None:
        self._owners: dict[str, Owner] = {}
        for cloid, owner in claims:
            self.claim(cloid, owner)

    def claim(self, cloid: str, owner: Owner) -> None:
        """``cloid`` is ``owner``'s from now on (until released)."""
        cloid = cloid.lower()
        held = self._owners.get(cloid)
        if held is not None and held != owner:
            raise OwnershipConflict(f"{cloid} is {held}'s, not {owner}'s")
        self._owners[cloid] = owner

    def claim_all(self, cloids: Iterable[str], owner: Owner) -> None:
        for cloid in cloids:
            self.claim(cloid, owner)

    def release(self, cloid: str, owner: Owner | None = None) -> Owner | None:
        """Forget ``cloid``'s owner (only if it is ``owner``, when given); the owner it had, or None."""
        cloid = cloid.lower()
        held = self._owners.get(cloid)
        if held is None or (owner is not None and held != owner):
            return None
        del self._owners[cloid]
        return held

    def owner_of(self, cloid: str | None) -> Owner | None:
        """Whose ``cloid`` is (None: nobody's, or no cloid)."""
        return None if cloid is None else self._owners.get(cloid.lower())

    def owns(self, cloid: str | None) -> bool:
        """Whether some component owns ``cloid``."""
        return cloid is not None and cloid.lower() in self._owners

    def cloids(self, strategy: str | None = None, key: str | None = None) -> set[str]:
        """The owned cloids (of ``strategy``, and of its sub-key ``key``, when given)."""
        return {
            c for c, o in self._owners.items()
            if (strategy is None or o.strategy == strategy) and (key is None or o.key == key)
        }  # fmt: skip

    def items(self) -> Iterator[tuple[str, Owner]]:
        """Every (cloid, owner), sorted by cloid."""
        return iter(sorted(self._owners.items()))

    def __len__(self) -> int:
        return len(self._owners)

    def __contains__(self, cloid: object) -> bool:
        return isinstance(cloid, str) and self.owns(cloid)
