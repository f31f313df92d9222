"""Shared by every command: spec options, error handling, compiling a spec."""
from __future__ import annotations

import functools
import sys

import click

from archc.errors import SpecError


def spec_options(fn):
    """--input, --set, --variant (and --include, --limit): shared by every command that compiles
    a spec."""
    fn = input_options(fn)
    fn = click.option("--input", "input_", metavar="SHAPE", help="Input shape per sample, e.g. 3x224x224.")(fn)
    fn = click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a var (repeatable).")(fn)
    fn = click.option("--variant", metavar="NAME", help="Select a variant defined in the spec.")(fn)
    return fn


def input_options(fn):
    """--include DIR (where `use:` may read besides the spec's folder) and --limit NAME=N (a
    limit raised): in force while the command runs."""
    @functools.wraps(fn)
    def wrapper(*a, include=(), limit=(), **kw):
        from archc import limits
        from archc.spec.files import including
        try:
            raised = limits.parse(limit, "--limit")
        except SpecError as e:
            report(e)
        with including(include), limits.raised(**raised):
            return fn(*a, **kw)
    wrapper = click.option("--limit", "limit", multiple=True, metavar="NAME=N",
                           help="Raise a limit on input sizes (repeatable; see docs/spec.md, Limits).")(wrapper)
    return click.option("--include", "include", multiple=True, metavar="DIR",
                        help="A folder `use:` may read from besides the spec's own (repeatable).")(wrapper)


def report(e: SpecError):
    """Print a bad-input error and exit 2."""
    click.echo(f"error: {e}" if e.loc is None else str(e), err=True)
    sys.exit(2)


def handle_errors(fn):
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except SpecError as e:
            report(e)
    return wrapper


def compile_spec(spec: str, variant, sets, input_):
    import archc
    from archc.spec.compile import parse_override
    overrides = dict(parse_override(s) for s in sets)
    return archc.load(spec, variant=variant, input=input_, **overrides)
