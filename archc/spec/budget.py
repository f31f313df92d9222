"""What expansion may build, counted as it goes against the limits (docs/spec.md, Limits): ops
in the network, repeat copies, and modules nested in modules. A repeat whose copies would pass
the layer limit is refused after its first copies, from their size, not after building them
all: `repeat: 1000000000` fails in milliseconds."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from archc import limits


class Budget:
    def __init__(self):
        self.limits = limits.current()
        self.layers = 0       # ops built
        self.copies = 0       # repeat copies considered (a copy left out by `when:` costs too)
        self.depth = 0        # modules open inside each other

    def layer(self, at) -> None:
        self.layers += 1
        if self.layers > self.limits.layers:
            raise limits.too_large("layers", "the network has too many layers", loc=at.loc())

    def repeat(self, n: int, at) -> None:
        if n > self.limits.repeat:
            raise limits.too_large("repeat", "repeat count", n, at.loc())

    def copy(self, at) -> None:
        self.copies += 1
        if self.copies > self.limits.layers:
            raise limits.too_large("layers", "repeats make too many copies in all", loc=at.loc())

    def project(self, start: int, done: int, remaining: int, at) -> None:
        """After `done` copies of a repeat, built since the layer count was `start`: refuse now if
        the `remaining` ones, as large on average, would pass the limit."""
        built = self.layers - start
        if done and remaining and built:
            total = self.layers + built * remaining // done
            if total > self.limits.layers:
                raise limits.too_large("layers", f"this repeat would make the network about {total:,} "
                                       "layers", loc=at.loc())

    @contextmanager
    def nested(self, at) -> Iterator[None]:
        """One more module (or inline structure) open: expansion recurses per level."""
        self.depth += 1
        try:
            if self.depth > self.limits.nesting:
                raise limits.too_large("nesting", "modules nested too deeply", loc=at.loc())
            yield
        finally:
            self.depth -= 1
