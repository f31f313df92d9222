"""The archc command line. Bad input exits 2 with a located message; anything else exits 1."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

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


def compile_spec(spec: str, variant, sets, input_):
    import archc
    from archc.spec.compile import parse_override
    overrides = dict(parse_override(s) for s in sets)
    return archc.load(spec, variant=variant, input=input_, **overrides)


@click.group(name="archc", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archc", prog_name="archc")
def main():
    """archc: compile a declarative network spec to an exact analysis and PyTorch code."""


@main.command()
@click.argument("spec")
@spec_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md", "csv"]), default="table",
              show_default=True)
@click.option("--depth", type=click.IntRange(min=1), help="Fold layers below this nesting depth into one row.")
@handle_errors
def summary(spec, variant, sets, input_, fmt, depth):
    """Static table of shapes, parameters, MACs/FLOPs and memory (no PyTorch needed)."""
    from archc.report.formats import RENDER
    from archc.report.summary import summary_dict
    net = compile_spec(spec, variant, sets, input_)
    data = summary_dict(net, depth=depth)
    if fmt == "table" and sys.stdout.isatty():
        from archc.report.formats import print_table
        return print_table(data)
    text = RENDER[fmt](data)
    click.echo(text, nl=not text.endswith("\n"))


@main.command()
@click.argument("spec")
@spec_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the source here (default: stdout).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Check that this state_dict loads strictly.")
@handle_errors
def build(spec, variant, sets, input_, output, weights):
    """Write standalone, readable PyTorch source for the network."""
    net = compile_spec(spec, variant, sets, input_)
    src = net.source()
    if weights:
        net.to_module(weights=weights)
    if output:
        try:
            Path(output).write_text(src)
        except OSError as e:    # a bad -o is bad input (exit 2), not a crash
            raise SpecError(f"cannot write {output}: {e.strerror}") from None
        click.echo(f"wrote {output} ({net.params:,} params)", err=True)
    else:
        click.echo(src, nl=False)


@main.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
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
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", show_default=True)
@handle_errors
def zoo(fmt):
    """List the networks shipped with archc and whether each matches its reference."""
    from archc.report.zoo import zoo_markdown, zoo_rows, zoo_text
    rows = zoo_rows()
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


def train_options(fn):
    """Flags of `train` and `eval` that override the spec's train: section (None: not given)."""
    opts = [
        click.option("--data", default="digits", show_default=True, metavar="NAME[:PATH]",
                     help="mnist, fashion-mnist, cifar10, cifar100, digits, synthetic[:N], imagefolder:DIR, files:DIR."),
        click.option("--batch-size", type=int, help="Samples per batch."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where to run (default auto)."),
        click.option("--seed", type=int, help="Seed of initialisation, shuffling and the validation split."),
        click.option("--workers", type=int, help="DataLoader workers for file data sets."),
        click.option("--val-fraction", type=float, help="Held-out share where the data has no val split."),
        click.option("--amp", type=click.Choice(["none", "bf16", "fp16"]), help="Mixed precision."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _open_data(arg, net, cfg):
    from archc.train.data import open_data
    return open_data(arg, val_fraction=cfg.val_fraction, seed=cfg.seed, input_shape=net.input)


@main.command()
@click.argument("spec")
@spec_options
@train_options
@click.option("--epochs", type=int, help="Epochs to train (in all, when resuming).")
@click.option("--lr", type=float, help="Peak learning rate.")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]))
@click.option("--schedule", type=click.Choice(["constant", "step", "cosine", "onecycle"]))
@click.option("--warmup", type=float, help="Epochs of linear warmup.")
@click.option("--weight-decay", type=float)
@click.option("--label-smoothing", type=float)
@click.option("--grad-clip", type=float, help="Clip the gradient norm to this.")
@click.option("--deterministic/--no-deterministic", default=None, help="Reproducible kernels (resume is then exact).")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the module.")
@click.option("--channels-last/--no-channels-last", default=None)
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default: the --resume one).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), help="Continue the run in this directory.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@handle_errors
def train(spec, variant, sets, input_, data, out, resume, quiet, compile_, **flags):
    """Train the network; writes OUT/metrics.jsonl, last.pt, best.pt, model.py.

    Exit 2 on bad input, and when the loss turns nan/inf (the last good checkpoint is kept);
    130 on Ctrl-C, after saving OUT/last.pt to resume from."""
    from archc.train.checkpoint import load_checkpoint
    from archc.train.config import make_config
    from archc.train.loop import train as run_training
    net = compile_spec(spec, variant, sets, input_)
    if out is None and resume is None:
        raise SpecError("train needs --out DIR (or --resume DIR)")
    # resuming: the run's own settings, with any flag given now on top
    ckpt = load_checkpoint(resume) if resume else None      # read once: settings and state
    section = ckpt["config"] if ckpt else net.train
    cfg = make_config(section, compile=compile_, **flags)
    dataset = _open_data(data, net, cfg)
    tty = not quiet and sys.stderr.isatty()
    # on a terminal, a batch counter rewritten in place on stderr; otherwise one line an epoch
    progress = (lambda s: click.echo(f"\r{s}\x1b[K", nl=False, err=True)) if tty else None
    log = (lambda s: click.echo(f"\r\x1b[K{s}")) if tty else click.echo
    try:
        run_training(net, dataset, cfg, out or resume, resume=resume, quiet=quiet, log=log,
                     progress=progress, checkpoint=ckpt)
    except KeyboardInterrupt:
        sys.exit(130)


@main.command(name="eval")
@click.argument("spec")
@spec_options
@train_options
@click.option("--weights", required=True, type=click.Path(exists=True),
              help="best.pt / last.pt of a run (or its directory), or a state_dict file.")
@click.option("--split", type=click.Choice(["val", "test", "train"]), default="val", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def evaluate(spec, variant, sets, input_, data, weights, split, fmt, **flags):
    """Loss and accuracy of trained weights on a data split."""
    from archc.train.config import make_config
    from archc.train.eval import evaluate_weights
    net = compile_spec(spec, variant, sets, input_)
    cfg = make_config(net.train, **flags)
    m = evaluate_weights(net, _open_data(data, net, cfg), weights, cfg, split=split,
                         say=lambda line: click.echo(line, err=True))
    if fmt == "json":
        click.echo(json.dumps({f"{split}_loss": m["loss"], f"{split}_acc": m["acc"], "samples": m["samples"]}))
    else:
        click.echo(f"{split}_loss {m['loss']:.4f}  {split}_acc {m['acc']:.4f}  ({m['samples']} samples)")


if __name__ == "__main__":
    main()
