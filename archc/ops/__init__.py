"""The op registry. Importing this package registers every built-in op; third-party ops published
under the `archc.ops` entry-point group register the first time a name is not found."""
from archc.ops.base import REGISTRY, Ctor, Op, OpArgs, Shape, Tensor, register  # noqa: F401
from archc.ops import activation, conv, linear, merge, norm, pool, shape  # noqa: F401  (registration)
from archc.ops import attention, conv_variants, gates, learned, partition, spatial, windows  # noqa: F401  (registration)


_plugins_loaded = False


def load_plugins() -> None:
    """Register third-party ops published under the `archc.ops` entry-point group. Scanning the
    installed packages costs tens of milliseconds, so it happens only when a name is unknown."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        from importlib.metadata import entry_points
        for ep in entry_points(group="archc.ops"):
            ep.load()


def get(name: str) -> Op | None:
    op = REGISTRY.get(name)
    if op is None and not _plugins_loaded:
        load_plugins()
        op = REGISTRY.get(name)
    return op
