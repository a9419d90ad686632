"""The queue of chunks waiting for an actor, and which of them an actor takes next.

A target staged whole (a small remote video) is downloaded by every node that renders one of
its chunks, so its chunks, those of every render of it, go to the nodes that already hold it:
the first chunk handed out gives the target a home (the node of an idle actor; the least-loaded
ask first), and later chunks go to actors on a home node. An idle actor that finds no chunk of
its own targets and no target without a home takes a chunk whose home nodes are full, rather
than wait: of the target with the most chunks queued per home node, the one that would wait
longest, provided at least four of its chunks per home node wait. Its node becomes one more home
of that target, which it has now downloaded too.
Chunks of targets read in place (local files) or by range (each chunk reads its own frames)
have no place: any actor takes them, first come first served.

Plain Python, no Ray: the actors are whatever hashable the scheduler uses, nodes are ids.
"""

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")

# An idle actor steals from a target only while this many of its chunks per home node wait
# beside those running: a steal downloads the target once more, which is worth it for a real
# imbalance, not for the few chunks a home will start next (the followers of an A/B leader
# come free together). With 2, a job of three clips on two nodes read each clip 1.35x.
STEAL_FROM_QUEUED = 4


@dataclass(order=True)
class _Entry(Generic[Item]):
    order: tuple[int, int, int, int]
    place: str | None = field(compare=False)
    item: Item = field(compare=False)


class ChunkQueue(Generic[Item]):
    """Queued chunks in their order (render, longest first, chunk, arrival), each with its
    place: the identity of the staged copy it reads, or None when it reads no staged copy."""

    def __init__(self) -> None:
        self._entries: list[_Entry[Item]] = []
        self._pushed = 0
        # Where each place's copy was staged, in the order the nodes got it.
        self._homes: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def push(
        self,
        render: int,
        chunk: int,
        place: str | None,
        item: Item,
        home: str | None = None,
        frames: int = 0,
    ) -> None:
        """`home`: the node that already holds the place's copy (it staged it to probe it),
        which becomes the place's first home. A render's chunks go out longest (`frames`)
        first: chunks planned on keyframes differ in length, and taken in frame order the
        long ones could end up on one actor while the others idle at the end."""
        if place is not None and home is not None:
            self._homes.setdefault(place, [home])
        self._pushed += 1
        order = (render, -frames, chunk, self._pushed)
        bisect.insort(self._entries, _Entry(order, place, item))

    def remove(self, unwanted: Callable[[Item], bool]) -> list[Item]:
        """Drops the items `unwanted` picks; returns them."""
        dropped = [entry.item for entry in self._entries if unwanted(entry.item)]
        self._entries = [entry for entry in self._entries if not unwanted(entry.item)]
        return dropped

    def take(self, node: str, load: int, free: Mapping[str, int], actors: int) -> Item | None:
        """The chunk for an actor on `node` with `load` chunks in flight, or None.

        `free`: chunk slots left on each node that has actors (a node missing from it is gone,
        and homes there no longer count); `actors`: how many actors there are. A busy actor
        takes chunks of its own targets up to its limit (the scheduler's): they would wait for
        this node anyway. It takes a chunk without a place only from a queue as long as the
        pool (near the end of the work, a chunk queued behind a running one waits while
        another actor may be about to idle), and never a new target: the node that gives a
        target its home must have room for the renders of it that follow.
        """
        room = load == 0 or len(self._entries) >= actors
        for position, entry in enumerate(self._entries):
            if entry.place is None:
                if room:
                    return self._pop(position)
            elif node in self._live_homes(entry.place, free):
                return self._pop(position)
        if load:
            return None
        for position, entry in enumerate(self._entries):
            if entry.place is not None and not self._live_homes(entry.place, free):
                self._homes[entry.place] = [node]
                return self._pop(position)
        return self._steal(node, free)

    def _steal(self, node: str, free: Mapping[str, int]) -> Item | None:
        """The first chunk of the target with the most chunks queued per home node, among
        those whose home nodes are all full; `node` becomes one more of its homes."""
        queued: dict[str, int] = {}
        for entry in self._entries:
            assert entry.place is not None  # chunks without a place were taken before
            queued[entry.place] = queued.get(entry.place, 0) + 1
        backlog: dict[str, float] = {}
        for place, count in queued.items():
            homes = self._live_homes(place, free)
            if all(free[home] == 0 for home in homes) and count >= STEAL_FROM_QUEUED * len(homes):
                backlog[place] = count / len(homes)
        if not backlog:
            return None
        place = max(backlog, key=lambda candidate: backlog[candidate])  # the first of equals
        self._homes[place].append(node)
        position = next(at for at, entry in enumerate(self._entries) if entry.place == place)
        return self._pop(position)

    def _live_homes(self, place: str, free: Mapping[str, int]) -> list[str]:
        return [home for home in self._homes.get(place, ()) if home in free]

    def _pop(self, position: int) -> Item:
        return self._entries.pop(position).item
