"""export: the network as ONNX, torch.export or TorchScript, checked by running the file."""
from __future__ import annotations

import sys

import click

from archc.cli import main
from archc.cli.common import compile_spec, handle_errors, load_weights_into, spec_options, weights_options


@main.command(name="export")
@click.argument("spec")
@spec_options
@weights_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="model.onnx (ONNX; needs the 'export' extra), model.pt2 (torch.export) or model.ts (TorchScript).")
@handle_errors
def export_command(spec, variant, sets, input_, weights, strict, ignore_unexpected, output):
    """Export the network with a dynamic batch dimension, then check the file: run it on random
    batches of 1 and 3 (onnxruntime, torch.export.load, torch.jit.load) and compare with the
    module. The file is written only when the outputs agree (max abs error within 1e-5 + 1e-4 x
    the largest output); otherwise exit 1 with the figures."""
    from archc.emit import export
    export.require(export.kind_of(output))        # before compiling: fail fast
    net = compile_spec(spec, variant, sets, input_)
    if weights:
        model = load_weights_into(net, weights, strict, ignore_unexpected)
    else:
        from archc.emit.pytorch import build_module
        model = build_module(net)
    result = export.export(model, net, output)
    if result.note:
        click.echo(f"note: {result.note}", err=True)
    for c in result.checks:
        click.echo(f"check {result.kind} batch {c.batch}: max abs error {c.error:.3g} "
                   f"(outputs up to {c.scale:.3g}; tolerance {c.tolerance:.3g}){'' if c.ok else '  FAILED'}")
    if not result.ok:
        click.echo(f"error: the exported {result.kind} file does not reproduce the module's outputs; "
                   f"{output} was not written", err=True)
        sys.exit(1)
    click.echo(f"wrote {output} ({result.kind}, dynamic batch dimension, input [N, "
               f"{', '.join(map(str, net.input))}])", err=True)
