"""train and eval."""
from __future__ import annotations

import json
import sys

import click

from archc.cli import main
from archc.cli.common import compile_spec, handle_errors, spec_options
from archc.errors import SpecError


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
@click.option("--crop", type=int, metavar="PAD", help="Augment: random crop after zero-padding by PAD pixels.")
@click.option("--flip/--no-flip", default=None, help="Augment: random horizontal flips.")
@click.option("--rotate", type=float, metavar="DEG", help="Augment: random rotation within +-DEG degrees.")
@click.option("--mean", metavar="M[,M...]", help="Normalise with this mean per channel (default: computed).")
@click.option("--std", metavar="S[,S...]", help="Normalise with this std per channel (default: computed).")
@click.option("--sync-bn/--no-sync-bn", default=None, help="SyncBatchNorm across processes (GPUs).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes, through torch.distributed.run with DDP (gloo on CPU, nccl on GPU); "
                   "--batch-size stays the global batch.")
@click.option("--out", type=click.Path(file_okay=False), help="Run directory (default: the --resume one).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), help="Continue the run in this directory.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@click.pass_context
@handle_errors
def train(ctx, spec, variant, sets, input_, data, out, resume, quiet, compile_, nproc, **flags):
    """Train the network; writes OUT/metrics.jsonl, last.pt, best.pt, model.py, curves.png.

    Exit 2 on bad input, and when the loss turns nan/inf (the last good checkpoint is kept);
    130 on Ctrl-C, after saving OUT/last.pt to resume from."""
    from archc.train.checkpoint import load_checkpoint
    from archc.train.config import make_config
    from archc.train.dist import barrier, leave, place_from_env
    from archc.train.loop import Diverged, preflight
    from archc.train.loop import train as run_training
    net = compile_spec(spec, variant, sets, input_)
    if out is None and resume is None:
        raise SpecError("train needs --out DIR (or --resume DIR)")
    # resuming: the run's own settings, with any flag given now on top
    ckpt = load_checkpoint(resume) if resume else None      # read once: settings and state
    section = ckpt["config"] if ckpt else net.train
    cfg = make_config(section, None if ckpt else net.train_locs, compile=compile_, **flags)
    dataset = _open_data(data, net, cfg)
    place = place_from_env()
    if nproc > 1 and not place.distributed:
        # bad input is found here, once, rather than by every worker
        preflight(net, dataset, cfg, nproc)
        from archc.train.dist import launch
        sys.exit(launch(nproc, _argv(ctx, drop={"nproc"})))
    tty = not quiet and sys.stderr.isatty() and place.main
    # on a terminal, a bar rewritten in place on stderr; otherwise one line an epoch
    progress = (lambda s: click.echo(f"\r{s}\x1b[K", nl=False, err=True)) if tty else None
    log = (lambda s: click.echo(f"\r\x1b[K{s}")) if tty else click.echo
    try:
        run_training(net, dataset, cfg, out or resume, resume=resume, quiet=quiet, log=log,
                     progress=progress, checkpoint=ckpt, place=place)
    except KeyboardInterrupt:
        sys.exit(130)
    except Diverged as e:
        # every process stops; rank 0 alone says why, and before any exits (the launcher stops
        # the rest as soon as one process ends)
        if place.main:
            click.echo(f"error: {e}", err=True)
        barrier()
        sys.exit(2)
    finally:
        leave()


def _argv(ctx: click.Context, drop: set[str]) -> list[str]:
    """Arguments that repeat this command's invocation, for the worker processes."""
    argv = [ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in drop or value is None or value == ():
            continue
        if isinstance(param, click.Argument):
            argv.append(str(value))
        elif param.is_flag and param.secondary_opts:
            argv.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            argv += [param.opts[0]] if value else []
        else:
            for v in value if param.multiple else (value,):
                argv += [param.opts[0], str(v)]
    return argv


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
    cfg = make_config(net.train, net.train_locs, **flags)
    m = evaluate_weights(net, _open_data(data, net, cfg), weights, cfg, split=split,
                         say=lambda line: click.echo(line, err=True))
    if fmt == "json":
        click.echo(json.dumps({f"{split}_loss": m["loss"], f"{split}_acc": m["acc"], "samples": m["samples"]}))
    else:
        click.echo(f"{split}_loss {m['loss']:.4f}  {split}_acc {m['acc']:.4f}  ({m['samples']} samples)")
