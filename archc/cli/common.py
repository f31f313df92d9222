"""Shared by every command: spec options, error handling, compiling a spec."""
from __future__ import annotations

import functools
import sys

import click

from archc.errors import SpecError, Unavailable


def spec_options(fn):
    """--input, --set, --variant (and --include, --limit): shared by every command that compiles
    a spec."""
    fn = input_options(fn)
    fn = click.option("--input", "input_", metavar="SHAPE", help="Input shape per sample, e.g. 3x224x224.")(fn)
    fn = click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a var (repeatable).")(fn)
    fn = click.option("--variant", metavar="NAME", help="Select a variant defined in the spec.")(fn)
    return fn


def weights_options(fn):
    """--weights, --strict/--no-strict, --ignore-unexpected: loading a state_dict or named weights."""
    fn = click.option("--ignore-unexpected", is_flag=True,
                      help="Leave keys of the file that the network lacks unused (otherwise an error).")(fn)
    fn = click.option("--strict/--no-strict", default=True, show_default=True,
                      help="--no-strict: tensors missing from the file or of another shape (a new head) keep "
                           "their initialisation, listed by name.")(fn)
    fn = click.option("--weights", metavar="FILE|torchvision[:NAME]|timm[:TAG]",
                      help="A state_dict file, or a zoo entry's published weights by name (downloaded once "
                           "into torch's hub cache, checksum verified).")(fn)
    return fn


def load_weights_into(net, weights, strict, ignore_unexpected):
    """The emitted module with --weights loaded, telling on stderr what was loaded and what kept
    its start; what needs no module (a missing file, weights of another size) refused first."""
    from archc.emit.pretrained import load_named_or_file, preflight
    from archc.emit.pytorch import build_module
    preflight(net, weights, strict)
    model = build_module(net)
    say = lambda line: click.echo(line, err=True)     # noqa: E731
    say(str(load_named_or_file(model, net, weights, strict=strict, ignore_unexpected=ignore_unexpected, say=say)))
    return model


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
        except Unavailable as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
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
