"""Several processes: launching through PyTorch's own launcher (torch.distributed.run), and what
each worker needs to know about its place (rank, world size, device, process group).

`archc train --nproc N` validates its input in the launching process, then runs
`torch.distributed.run --standalone --nproc-per-node N -m archc.cli train ...` in process, so
that a failed worker's exit status (2 for bad input or a diverged loss, 130 for Ctrl-C) becomes
the command's own instead of torchrun's traceback. Workers recognise themselves by the
environment torchrun gives them (WORLD_SIZE, RANK, LOCAL_RANK), so `torchrun ... -m archc.cli
train` typed by hand, on one node or several, works the same way.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from archc.errors import SpecError


@dataclass(frozen=True)
class Place:
    """Where this process stands: rank 0 of 1 when not distributed."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False       # started by torchrun: a process group even for one process

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.launched


def place_from_env() -> Place:
    """This worker's place, from the variables torch.distributed.run sets (a torchrun of one
    process too: DDP over nccl or gloo with a world of one runs as a larger one would)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launched = "TORCHELASTIC_RUN_ID" in os.environ and "RANK" in os.environ
    if world <= 1 and not launched:
        return Place()
    return Place(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")), launched)


def device_for(place: Place, requested: str) -> torch.device:
    """cuda:LOCAL_RANK when CUDA is wanted and present, else the CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda: no CUDA device is available")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    if place.local_rank >= torch.cuda.device_count():
        raise SpecError(f"process {place.local_rank} of this node has no GPU: "
                        f"{torch.cuda.device_count()} visible; use --nproc at most that")
    return torch.device("cuda", place.local_rank)


def join(place: Place, dev: torch.device) -> None:
    """Join the process group: nccl between GPUs, gloo between CPU processes."""
    if place.distributed and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                rank=place.rank, world_size=place.world_size)


def barrier() -> None:
    """Wait for every process (nothing when not distributed)."""
    if dist.is_initialized():
        dist.barrier()


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """t summed over every process (in place); t itself when not distributed."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def launch(nproc: int, argv: list[str]) -> int:
    """Run `archc <argv>` in nproc processes on this node; the exit status of the run (that of
    the first worker to fail, else 0)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run
    # one CPU thread pool per process, splitting the cores rather than oversubscribing them
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # torchrun's agent logs its own start and failures: the workers' messages are the ones to read
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={nproc}", "--no-python", sys.executable, "-m",
         "archc.cli", *argv])
    try:
        run(args)
    except ChildFailedError as e:
        codes = [f.exitcode for _, f in sorted(e.failures.items())]
        code = next((c for c in codes if c in (2, 130)), codes[0] if codes else 1)
        return code if code > 0 else 128 - code      # killed by signal n: 128 + n, as a shell says
    except SignalException as e:    # Ctrl-C: the agent has passed it on and waited for the workers
        return 128 + int(e.sigval)
    except KeyboardInterrupt:
        return 130
    return 0
