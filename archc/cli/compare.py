"""diff and sweep: comparing specs, and one spec over a grid of settings (static, no torch)."""
from __future__ import annotations

import sys

import click

from archc import exists
from archc.cli import main
from archc.cli.common import compile_spec, handle_errors, spec_options
from archc.errors import SpecError


def split_variant(spec: str) -> tuple[str, str | None]:
    """`resnet.yaml@resnet101` -> ('resnet.yaml', 'resnet101'); a path that exists as written
    (even with an '@' in it) is taken whole."""
    if "@" not in spec or exists(spec):
        return spec, None
    base, _, variant = spec.rpartition("@")
    if not base or not variant:
        raise SpecError(f"'{spec}': write SPEC@VARIANT, with both parts")
    return base, variant


@main.command()
@click.argument("spec_a", metavar="A")
@click.argument("spec_b", metavar="B")
@spec_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text", show_default=True)
@handle_errors
def diff(spec_a, spec_b, variant, sets, input_, fmt):
    """What differs between two specs, layer by layer, after expansion.

    A and B are spec files or zoo names; SPEC@VARIANT picks a variant of one side
    (`archc diff resnet.yaml@resnet50 resnet.yaml@resnet101`). --variant, --set and --input
    apply to both. Exit status: 0 no differences, 1 different, 2 bad input."""
    from archc.report.diff import RENDER, diff_networks
    nets = []
    for label in (spec_a, spec_b):
        spec, own = split_variant(label)
        nets.append(compile_spec(spec, own or variant, sets, input_))
    d = diff_networks(nets[0], nets[1], spec_a, spec_b)
    text = RENDER[fmt](d)
    click.echo(text, nl=not text.endswith("\n"))
    sys.exit(0 if d["identical"] else 1)


@main.command()
@click.argument("spec")
@spec_options
@click.option("--grid", "grid", multiple=True, metavar="NAME=V1,V2,...",
              help="An axis of the grid: a var, 'variant', or 'input' (224 = spatial size, "
                   "channels kept; 3x224x224 = full shape). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "md"]), default="table",
              show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write a params-vs-MACs scatter with the Pareto front (.png, .svg or .pdf; needs matplotlib).")
@handle_errors
def sweep(spec, variant, sets, input_, grid, fmt, plot):
    """Analyse SPEC at every point of a grid of vars, variants and input sizes (static, no torch).

    Each --grid adds an axis; the points are every combination. A point that fails (a shape
    error at a small input) is a row with its error. The front (*) is the set of points that
    no other point beats in both parameters and MACs."""
    from archc.report.sweep import RENDER, Sweep, parse_grid
    axes = parse_grid(grid)
    sw = Sweep(spec, variant, sets, input_)
    rows = sw.run(axes)
    title = sw.model.name + (f" ({sw.variant})" if sw.variant and all(a.name != "variant" for a in axes) else "")
    text = RENDER[fmt](axes, rows, title)
    click.echo(text, nl=not text.endswith("\n"))
    if plot:
        from archc.report.plot import plot_front
        plot_front(axes, rows, plot, title)
        click.echo(f"wrote {plot}", err=True)
