"""The op registry. Importing this package registers every built-in op and any third-party op
published under the `archc.ops` entry-point group."""
from archc.ops.base import REGISTRY, Ctor, Op, OpArgs, Shape, Tensor, register  # noqa: F401
from archc.ops import activation, conv, linear, merge, norm, pool, shape  # noqa: F401  (registration)


def _load_plugins() -> None:
    from importlib.metadata import entry_points
    for ep in entry_points(group="archc.ops"):
        ep.load()


_load_plugins()


def get(name: str) -> Op | None:
    return REGISTRY.get(name)
