"""Keeping the analysis linear in the size of the network."""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector. Building and reporting a large network allocates many
    objects and frees almost none, so each automatic collection walks the whole graph built so
    far: the cost grows with the square of the layer count. Reference counting still frees."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
