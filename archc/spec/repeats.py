"""`repeat:` - the copies of an item, each seeing its index `i`, the first with `first:` args,
each kept only where its `when:` holds - counted against the limits as they are built."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from archc import ops
from archc.spec.expr import resolve
from archc.spec.layers import Item

if TYPE_CHECKING:
    from archc.spec.expand import Expander


def per_copy_names(item: Item) -> bool:
    """A repeat whose `name` is an expression (`"denselayer${i + 1}"`) names each copy: the copies
    join the enclosing class or seq one by one, instead of nesting in a numbered nn.Sequential."""
    return "repeat" in item.wiring and isinstance(item.wiring.get("name"), str) and "$" in item.wiring["name"]


def instances(exp: "Expander", item: Item, env: dict) -> Iterator[tuple[Item, dict]]:
    """(item, env) for each copy. The caller builds each copy before asking for the next, so
    the copies built so far tell how large the rest would be (Budget.project)."""
    at = item.wiring_at["repeat"]
    n = resolve(item.wiring["repeat"], env, at)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise at.error(f"repeat must be a non-negative integer, got {n!r}")
    exp.budget.repeat(n, at)
    first = item.wiring.get("first")
    if first is not None and not isinstance(first, dict):
        raise item.wiring_at["first"].error(f"'first' must be a mapping of args, got {first!r}")
    dropped = ("repeat", "first", "id", "from") + (() if per_copy_names(item) else ("name",))
    wiring = {k: v for k, v in item.wiring.items() if k not in dropped}
    start = exp.budget.layers
    for i in range(n):
        exp.budget.project(start, i, n - i, at)
        exp.budget.copy(at)
        args = item.args
        if i == 0 and first:
            base = args if isinstance(args, dict) else ({} if args is None else None)
            if base is None:     # a short form: the op's short arg, or the block's one required param
                short = exp.blocks.short_param(item.kind) if exp.blocks.has(item.kind) \
                    else getattr(ops.get(item.kind), "short", None)
                base = {short: args} if short else {}
            args = {**base, **first}
        one, ienv = Item(item.kind, args, item.at, item.args_at, wiring, item.wiring_at), {**env, "i": i}
        if exp.enabled(one, ienv):
            yield one, ienv
