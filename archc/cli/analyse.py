"""summary, build, check, zoo, ops, schema: the static commands (no torch unless asked)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from archc.cli import main
from archc.cli.common import (compile_spec, handle_errors, input_options, load_weights_into, spec_options,
                               weights_options)
from archc.errors import SpecError
from archc.report.summary import DTYPES, FORMATS, OPTIMIZERS


@main.command()
@click.argument("spec")
@spec_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--depth", type=click.IntRange(min=1), help="Fold layers below this nesting depth into one row.")
@click.option("--rf", is_flag=True, help="Add each layer's receptive field: size, jump, start per spatial dim.")
@click.option("--memory", is_flag=True,
              help="Add the training-memory estimate: params, grads, optimizer, saved activations.")
@click.option("--batch", type=click.IntRange(min=1),
              help="Batch size of the memory estimate (default 32; implies --memory).")
@click.option("--dtype", type=click.Choice(list(DTYPES)),
              help="Training dtype of the memory estimate (default float32).")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS),
              help="Optimizer of the memory estimate (default adam).")
@click.option("--freeze", multiple=True, metavar="PATTERN",
              help="Mark the layers `archc train --freeze PATTERN` would freeze and count the trainable params "
                   "(scoped names or globs: conv1,bn1 layer1 'features.*' backbone head; repeatable).")
@handle_errors
def summary(spec, variant, sets, input_, fmt, depth, rf, memory, batch, dtype, optimizer, freeze):
    """Static table of shapes, parameters, MACs/FLOPs and memory (no PyTorch needed)."""
    from archc.report.summary import summary_for, summary_text
    options = dict(depth=depth, rf=rf, memory=memory, batch=batch, dtype=dtype, optimizer=optimizer,
                   freeze=freeze or None)
    if fmt == "csv" and (memory or batch or dtype or optimizer):     # before compiling: fail fast
        raise SpecError("--memory has no place in CSV (one row per layer): use --format table, md or json")
    net = compile_spec(spec, variant, sets, input_)
    if fmt == "table" and sys.stdout.isatty():
        from archc.report.formats import print_table
        return print_table(summary_for(net, **options))
    click.echo(summary_text(net, fmt, **options), nl=False)


@main.command()
@click.argument("spec")
@spec_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the source here (default: stdout).")
@weights_options
@handle_errors
def build(spec, variant, sets, input_, output, weights, strict, ignore_unexpected):
    """Write standalone, readable PyTorch source for the network.

    --weights checks that a state_dict (or the entry's published weights) loads into it:
    strictly unless --no-strict."""
    net = compile_spec(spec, variant, sets, input_)
    src = net.source()
    if weights:
        load_weights_into(net, weights, strict, ignore_unexpected)
    if output:
        try:
            Path(output).write_text(src, encoding="utf-8")
        except OSError as e:    # a bad -o is bad input (exit 2), not a crash
            raise SpecError(f"cannot write {output}: {e.strerror}") from None
        click.echo(f"wrote {output} ({net.params:,} params)", err=True)
    else:
        click.echo(src, nl=False)


@main.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@input_options
def check(specs, quiet):
    """Validate spec files (for editors and pre-commit); exit 2 if any is bad."""
    import archc
    bad = 0
    for spec in specs:
        try:
            net = archc.load(spec)
        except SpecError as e:
            bad += 1
            click.echo(str(e) if e.loc else f"{spec}: {e}", err=True)
            continue
        if not quiet:
            click.echo(f"{spec}: ok ({len(net.nodes)} layers, {net.params:,} params, {net.macs:,} MACs)")
    sys.exit(2 if bad else 0)


@main.command()
@click.argument("pattern", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", show_default=True)
@handle_errors
def zoo(pattern, fmt):
    """List the networks shipped with archc and whether each matches its reference.

    PATTERN, a glob such as 'resnet*', keeps the entries whose name matches it."""
    from archc.report.zoo import zoo_markdown, zoo_rows, zoo_text
    rows = zoo_rows(pattern)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
    else:
        click.echo(zoo_markdown(rows) if fmt == "md" else zoo_text(rows), nl=False)


@main.command(name="ops")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True)
def list_ops(fmt):
    """List every op with its args, defaults and short form."""
    from archc.report.ops import op_rows, ops_markdown, ops_text
    if fmt == "json":
        click.echo(json.dumps([{k: v for k, v in r.items()} for r in op_rows()], indent=1))
    else:
        click.echo(ops_markdown() if fmt == "md" else ops_text(), nl=False)


@main.command()
def schema():
    """Print the JSON Schema of the spec format (for editor completion and checking)."""
    from archc.spec.jsonschema import spec_schema
    click.echo(json.dumps(spec_schema(), indent=1))
