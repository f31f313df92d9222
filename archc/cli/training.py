"""train and eval."""
from __future__ import annotations

import json
import sys

import click

from archc.cli import main
from archc.cli.common import compile_spec, handle_errors, needs_training, spec_options
from archc.errors import SpecError


def train_options(fn):
    """Flags of `train` and `eval` that override the spec's train: section (None: not given)."""
    opts = [
        click.option("--data", metavar="NAME[:PATH]",
                     help="mnist, fashion-mnist, cifar10, cifar100, digits, synthetic[:N], imagefolder:DIR, "
                          "files:DIR (default: the spec's train.data; a run's own with --resume/--run)."),
        click.option("--batch-size", type=int, help="Samples per batch."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where to run (default auto)."),
        click.option("--seed", type=int, help="Seed of initialisation, shuffling and the validation split."),
        click.option("--workers", type=int, help="DataLoader workers for file data sets."),
        click.option("--val-fraction", type=float,
                     help="Share of the training set held out for validation where the data has no val split (0.1)."),
        click.option("--amp", type=click.Choice(["none", "bf16", "fp16"]), help="Mixed precision."),
        click.option("--override", is_flag=True,
                     help="With --resume/--run: let SPEC, --variant, --set, --input, --data, --val-fraction, "
                          "--seed, --mean/--std change the run's recorded values (refused otherwise)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _open_data(arg, net, cfg):
    from archc.train.data import open_data
    size = tuple(net.input[-2:]) if cfg.resize and len(net.input) == 3 else None
    out = net.output_shapes[0]
    # synthetic data takes the network's shape and classes (two for a 1-logit BCE head)
    classes = 2 if cfg.loss == "bce" else int(out[0]) if len(out) == 1 else None
    return open_data(arg, val_fraction=cfg.val_fraction, seed=cfg.seed, input_shape=net.input, size=size,
                     rule=cfg.labels, num_classes=classes)


def _data_arg(data, cfg) -> str:
    """--data, else the spec's train.data; no silent default."""
    if data is None and cfg.data is None:
        raise SpecError("no data set: give --data NAME[:PATH] (mnist, fashion-mnist, cifar10, digits, "
                        "imagefolder:DIR, ...), or name one in the spec's train: section (data: ...)")
    return data or cfg.data


def _from_run(directory, spec, variant, sets, input_, data, override, flags):
    """(run record, network, data argument, changes) of the run in `directory`, with the flags
    given now checked against it."""
    from pathlib import Path
    from archc.train import record
    where = Path(directory)
    run = record.read_run(where)
    now = record.given(spec, variant, sets, input_, data, flags)
    changes = record.refuse_conflicts(run, where, now, override)
    net = record.network_of(run, where, now, override)
    return run, net, (now["data"] if override and data else run["data"]), changes


@main.command()
@click.argument("spec", required=False)
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
@click.option("--vflip/--no-vflip", default=None, help="Augment: random vertical flips.")
@click.option("--rotate", type=float, metavar="DEG", help="Augment: random rotation within +-DEG degrees.")
@click.option("--mean", metavar="M[,M...]", help="Normalise with this mean per channel (default: computed).")
@click.option("--std", metavar="S[,S...]", help="Normalise with this std per channel (default: computed).")
@click.option("--resize/--no-resize", default=None, help="Image files: resize to the input's H x W.")
@click.option("--sync-bn/--no-sync-bn", default=None, help="SyncBatchNorm across processes (GPUs).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes, through torch.distributed.run with DDP (gloo on CPU, nccl on GPU); "
                   "--batch-size stays the global batch.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run directory, new or empty (default with --resume: the run's own).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True),
              help="Continue the run in this directory, with its spec, data and settings (run.json).")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
@click.pass_context
@handle_errors
@needs_training
def train(ctx, spec, variant, sets, input_, data, out, resume, override, quiet, compile_, nproc, **flags):
    """Train the network; writes OUT/metrics.jsonl, last.pt, best.pt, model.py, curves.png, run.json.

    SPEC is a spec file or zoo name; with --resume DIR it may be left out (the run knows it).
    Exit 2 on bad input, and when the loss turns nan/inf (the last good checkpoint is kept);
    130 on Ctrl-C, after saving OUT/last.pt to resume from."""
    from archc.train.checkpoint import load_checkpoint
    from archc.train.config import make_config
    from archc.train.dist import barrier, leave, place_from_env
    from archc.train.loop import Diverged, preflight
    from archc.train.loop import train as run_training
    from archc.train.record import check_out_dir
    if override and not resume:
        raise SpecError("--override changes a resumed run's recorded values; it goes with --resume DIR")
    changes = None
    if resume:
        # the run's own spec, data, split and normalisation; other flags (--epochs, --lr) on top
        _, net, data, changes = _from_run(resume, spec, variant, sets, input_, data, override, flags)
        ckpt = load_checkpoint(resume)                  # read once: settings and state
        if override and (flags["mean"] or flags["std"]):     # new statistics, deliberately
            import torch
            given = make_config({}, mean=flags["mean"], std=flags["std"])
            ckpt["normalize"] = {k: torch.tensor(getattr(given, k)) if getattr(given, k) else ckpt["normalize"][k]
                                 for k in ("mean", "std")}
        cfg = make_config(ckpt["config"], None, compile=compile_, **flags)
    else:
        if spec is None:
            raise SpecError("train needs SPEC (a spec file or zoo name), or --resume DIR")
        if out is None:
            raise SpecError("train needs --out DIR, a new directory for the run (or --resume DIR)")
        net = compile_spec(spec, variant, sets, input_)
        ckpt = None
        cfg = make_config(net.train, net.train_locs, compile=compile_, **flags)
        data = _data_arg(data, cfg)
    out = out or resume
    check_out_dir(out, resume)
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
        run_training(net, dataset, cfg, out, resume=resume, quiet=quiet, log=log,
                     progress=progress, checkpoint=ckpt, place=place, changes=changes)
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
@click.argument("spec", required=False)
@spec_options
@train_options
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True),
              help="A run's directory: its spec, data, split and normalisation (run.json), its best.pt.")
@click.option("--weights", type=click.Path(exists=True),
              help="best.pt / last.pt of a run (or its directory), or a state_dict file (default with --run: its best.pt).")
@click.option("--split", type=click.Choice(["val", "test", "train"]), default="val", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
@needs_training
def evaluate(spec, variant, sets, input_, data, run_dir, weights, override, split, fmt, **flags):
    """Loss and accuracy of trained weights on a data split: `--run DIR`, or SPEC --weights FILE --data NAME."""
    from pathlib import Path
    from archc.train.config import make_config
    from archc.train.eval import evaluate_weights
    if override and not run_dir:
        raise SpecError("--override changes a run's recorded values; it goes with --run DIR")
    if run_dir:
        run, net, data, _ = _from_run(run_dir, spec, variant, sets, input_, data, override, flags)
        cfg = make_config(run["config"], **flags)
        weights = weights or str(Path(run_dir) / "best.pt")
    else:
        if spec is None or weights is None:
            raise SpecError("eval needs --run DIR, or SPEC with --weights FILE and --data NAME[:PATH]")
        if data is None:
            raise SpecError("eval needs --data NAME[:PATH] (the data set to score on), or --run DIR "
                            "(a run's own data)")
        net = compile_spec(spec, variant, sets, input_)
        cfg = make_config(net.train, net.train_locs, **flags)
    m = evaluate_weights(net, _open_data(data, net, cfg), weights, cfg, split=split,
                         say=lambda line: click.echo(line, err=True))
    if fmt == "json":
        extra = {f"{split}_top5": m["top5"]} if "top5" in m else {}
        click.echo(json.dumps({f"{split}_loss": m["loss"], f"{split}_acc": m["acc"], **extra,
                               "samples": m["samples"]}))
    else:
        top5 = f"  {split}_top5 {m['top5']:.4f}" if "top5" in m else ""
        click.echo(f"{split}_loss {m['loss']:.4f}  {split}_acc {m['acc']:.4f}{top5}  ({m['samples']} samples)")
