"""Diagrams of a network: DOT text written from the IR (no dependency), images through Graphviz."""
from __future__ import annotations

from archc.ir.graph import Network
from archc.render.dot import to_dot
from archc.render.layout import Index, Layout, layout

MAX_HEIGHT = 100    # nodes along the longest path (about 9000 px of PNG): taller is unreadable


def plan(net: Network, depth: int | None = None, repeats: str = "auto") -> tuple[Layout, str | None]:
    """The layout to draw, and a note saying what `repeats='auto'` left out, if anything.

    'fold' / 'expand' draw runs of repeated blocks once / every time. 'auto' folds them with
    --depth; without it, it draws every op when that stays under MAX_HEIGHT nodes tall, else
    folds repeats, else also cuts at the deepest depth that fits."""
    if repeats != "auto" or depth is not None:
        return layout(net, depth, repeats != "expand"), None
    index = Index(net)
    full = layout(net, index=index)
    if full.height() <= MAX_HEIGHT:
        return full, None
    lay = layout(net, None, True, index)
    tall = f"every op would be {full.height()} nodes tall"
    if lay.height() <= MAX_HEIGHT:
        return lay, f"{tall}: each run of repeated blocks is drawn once, marked xN (--repeats expand draws all)"
    # the deepest depth that fits; height grows with depth, so a binary search (a network
    # nested 30 deep would otherwise be laid out 30 times)
    lo, hi = 1, max(n.name.count(".") for n in net.nodes)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if layout(net, mid, True, index).height() <= MAX_HEIGHT:
            lo = mid
        else:
            hi = mid - 1
    lay = layout(net, lo, True, index)
    return lay, (f"{tall}: drawn at --depth {lay.depth} with repeated blocks folded (xN); "
                 f"pass a larger --depth, or --repeats expand, for more")


def render_dot(net: Network, depth: int | None = None, repeats: str = "auto", rankdir: str = "TB") -> str:
    """DOT text of a network (the note of `plan` is dropped)."""
    return to_dot(plan(net, depth, repeats)[0], rankdir)


__all__ = ["MAX_HEIGHT", "plan", "render_dot", "to_dot", "layout"]
