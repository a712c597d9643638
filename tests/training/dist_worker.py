"""Run under torchrun by test_distributed.py (one or two gloo processes on the CPU).

    dist_worker.py save DIR DUMP [--fsdp] [--bf16] [--steps N]   train N steps, checkpoint (and dump) after each
    dist_worker.py load DIR DUMP [--fsdp]                         resume from DIR's newest checkpoint
    dist_worker.py collectives DIR DUMP                           errors on one process, raised on all

`save` and `load` write DUMP (`save`: DUMP.STEP) on process 0: the full weights and AdamW state the process group
then holds, so that the test compares what was saved with what another process count loaded. `collectives` writes
one JSON line per process (DUMP.RANK) naming what each check raised there.
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

from videomae.errors import ConfigError
from videomae.masking import make_mask
from videomae.models import build_model
from videomae.training.config import OptimConfig, load_recipe
from videomae.training.distributed import everywhere, from_main, init_distributed, on_main, shutdown
from videomae.training.objective import pretraining_loss
from videomae.training.optim import build_optimizer
from videomae.training.parallelize import apply_fsdp
from videomae.training.state import FULL, full_model_state, load_newest_checkpoint, save_checkpoint


def build(fsdp: bool, param_dtype: torch.dtype | None):
    torch.manual_seed(0)
    model = build_model(load_recipe("tiny").model_config())  # the tests' tiny pretraining ViT
    if fsdp:
        if not dist.is_initialized():  # one process: FSDP2 still needs a (one-process) group
            dist.init_process_group("gloo")
        apply_fsdp(model, param_dtype)
    return model, build_optimizer(model, OptimConfig(lr=1e-2, betas=(0.9, 0.95), weight_decay=0.05))


def train_step(model, optimizer, step: int, autocast_dtype: torch.dtype | None) -> None:
    """The same batch on every process: the averaged gradient is the one-process gradient."""
    generator = torch.Generator().manual_seed(step)
    video = torch.randn(2, 3, 4, 32, 32, generator=generator)
    encoder_mask = make_mask("tube", 2, (2, 4, 4), 0.75, generator=generator)
    decoder_mask = make_mask("running_cell", 2, (2, 4, 4), 0.5, generator=generator)
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        loss = pretraining_loss(model(video, encoder_mask, decoder_mask), video, encoder_mask, decoder_mask, 2, 8)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def dump(path: str, d, model, optimizer) -> None:
    """Process 0 writes the full weights and optimizer state (collective: FSDP gathers them)."""
    state = {"model": full_model_state(model), "optimizer": get_optimizer_state_dict(model, optimizer, options=FULL)}
    if d.is_main:
        torch.save({"model": state["model"], "optimizer": state["optimizer"]["state"]}, path)


def outcome(check) -> str:
    """What `check()` raised here ("ok" when nothing)."""
    try:
        check()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "ok"


def collectives(d, output_dir: str, model, optimizer) -> dict:
    """Each check fails on one process only; every process must raise (none may wait in a collective)."""

    def fail_on(rank: int, error: Exception):
        if d.rank == rank:
            raise error

    def nan_in_one_shard():
        with torch.no_grad():
            if d.rank == 1:
                shard = next(p.to_local() for p in model.parameters() if p.to_local().numel())
                shard.view(-1)[0] = math.nan
        save_checkpoint(output_dir, d, model, optimizer, meta={"step": 1}, scaler=None, ema=None, keep_last=1)

    return {
        "everywhere": outcome(lambda: everywhere(lambda: fail_on(1, ConfigError("rank 1 refuses")), d)),
        "from_main": outcome(lambda: from_main(lambda: fail_on(0, OSError("disk gone")), d)),
        "on_main": outcome(lambda: on_main(lambda: fail_on(0, ConfigError("rank 0 refuses")), d)),
        "nonfinite_shard": outcome(nan_in_one_shard),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["save", "load", "collectives"])
    parser.add_argument("output_dir")
    parser.add_argument("dump")
    parser.add_argument("--fsdp", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="FSDP gathers bf16 parameters, autocast bf16")
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    d = init_distributed()
    dtype = torch.bfloat16 if args.bf16 else None
    model, optimizer = build(args.fsdp or args.action == "collectives", dtype)
    if args.action == "collectives":
        with open(f"{args.dump}.{d.rank}", "w") as handle:
            json.dump(collectives(d, args.output_dir, model, optimizer), handle)
    elif args.action == "save":
        for step in range(1, args.steps + 1):
            train_step(model, optimizer, step, dtype)
            meta = {"step": step, "model_config": model.config.to_dict()}
            save_checkpoint(args.output_dir, d, model, optimizer, meta=meta, scaler=None, ema=None, keep_last=3)
            dump(f"{args.dump}.{step}", d, model, optimizer)
    else:
        path, meta = load_newest_checkpoint(args.output_dir, d, model, optimizer, scaler=None, ema=None)
        dump(args.dump, d, model, optimizer)
        if d.is_main:
            print(f"resumed {path} at step {meta['step']}")
    shutdown()


if __name__ == "__main__":
    main()
