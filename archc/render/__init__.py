"""Diagrams of a network: DOT text written from the IR (no dependency), images through Graphviz."""
from __future__ import annotations

from archc.ir.graph import Network
from archc.render.dot import to_dot
from archc.render.layout import Layout, layout

MAX_HEIGHT = 100    # nodes along the longest path (about 9000 px of PNG): taller is unreadable


def plan(net: Network, depth: int | None = None, repeats: str = "auto") -> tuple[Layout, str | None]:
    """The layout to draw, and a note saying what `repeats='auto'` left out, if anything.

    'fold' / 'expand' draw runs of repeated blocks once / every time. 'auto' folds them with
    --depth; without it, it draws every op when that stays under MAX_HEIGHT nodes tall, else
    folds repeats, else also cuts at the deepest depth that fits."""
    if repeats != "auto" or depth is not None:
        return layout(net, depth, repeats != "expand"), None
    full = layout(net)
    if full.height() <= MAX_HEIGHT:
        return full, None
    lay = layout(net, None, True)
    tall = f"every op would be {full.height()} nodes tall"
    if lay.height() <= MAX_HEIGHT:
        return lay, f"{tall}: each run of repeated blocks is drawn once, marked xN (--repeats expand draws all)"
    for d in range(max(n.name.count(".") for n in net.nodes), 0, -1):
        lay = layout(net, d, True)
        if lay.height() <= MAX_HEIGHT:
            break
    return lay, (f"{tall}: drawn at --depth {lay.depth} with repeated blocks folded (xN); "
                 f"pass a larger --depth, or --repeats expand, for more")


def render_dot(net: Network, depth: int | None = None, repeats: str = "auto", rankdir: str = "TB") -> str:
    """DOT text of a network (the note of `plan` is dropped)."""
    return to_dot(plan(net, depth, repeats)[0], rankdir)


__all__ = ["MAX_HEIGHT", "plan", "render_dot", "to_dot", "layout"]
