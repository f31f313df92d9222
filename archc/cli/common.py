"""Shared by every command: spec options, error handling, compiling a spec."""
from __future__ import annotations

import functools
import sys

import click

from archc.errors import SpecError


def spec_options(fn):
    """--input, --set, --variant: shared by every command that compiles a spec."""
    fn = click.option("--input", "input_", metavar="SHAPE", help="Input shape per sample, e.g. 3x224x224.")(fn)
    fn = click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a var (repeatable).")(fn)
    fn = click.option("--variant", metavar="NAME", help="Select a variant defined in the spec.")(fn)
    return fn


def handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except SpecError as e:
            click.echo(f"error: {e}" if e.loc is None else str(e), err=True)
            sys.exit(2)
    return wrapper


def needs_training(fn):
    """Commands that train or evaluate need the training extra (torch, numpy): without it, say
    which extra to install rather than fail on an import deep inside."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        import importlib.util
        missing = [m for m in ("torch", "numpy") if importlib.util.find_spec(m) is None]
        if missing:
            click.echo(f"error: archc {click.get_current_context().info_name} needs "
                       f"{' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                       f"installed: pip install 'archc[train]'", err=True)
            sys.exit(1)
        return fn(*a, **kw)
    return wrapper


def compile_spec(spec: str, variant, sets, input_):
    import archc
    from archc.spec.compile import parse_override
    overrides = dict(parse_override(s) for s in sets)
    return archc.load(spec, variant=variant, input=input_, **overrides)
