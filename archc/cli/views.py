"""render: pictures of a network (no torch)."""
from __future__ import annotations

import sys

import click

from archc.cli import main
from archc.cli.common import compile_spec, handle_errors, spec_options
from archc.errors import Location


@main.command()
@click.argument("spec")
@spec_options
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE",
              help="net.svg / net.png / net.pdf (drawn by Graphviz's dot), net.dot, or - for DOT on stdout.")
@click.option("--depth", type=click.IntRange(min=1),
              help="Draw each module at this nesting depth as one box (as summary --depth).")
@click.option("--repeats", type=click.Choice(["auto", "fold", "expand"]), default="auto", show_default=True,
              help="Draw a run of repeated blocks once, marked xN; auto: with --depth, or when drawing "
                   "every op would be too tall (then a depth may be chosen too).")
@click.option("--rankdir", type=click.Choice(["TB", "LR"], case_sensitive=False), default="TB", show_default=True,
              help="Layout direction: top to bottom or left to right.")
@handle_errors
def render(spec, variant, sets, input_, output, depth, repeats, rankdir):
    """Draw the network: ops, blocks as clusters, tensor shapes on the edges."""
    from archc.render import image, plan, to_dot
    kind = "dot" if output == "-" else image.output_kind(output)
    exe = image.find_dot() if kind != "dot" else None     # before compiling: fail fast
    net = compile_spec(spec, variant, sets, input_)
    lay, note = plan(net, depth, repeats)
    if note:
        click.echo(f"note: {note}", err=True)
    text = to_dot(lay, rankdir=rankdir.upper())
    if output == "-":
        click.echo(text, nl=False)
        return
    where = Location(net.file)
    if kind != "dot":
        image.check_size(lay.nodes_drawn(), where)
    try:
        data = text.encode(errors="backslashreplace") if kind == "dot" else image.draw(text, kind, exe, where)
    except image.RenderFailed as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    image.write(output, data)
    click.echo(f"wrote {output}", err=True)
