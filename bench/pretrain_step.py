"""Time a full VideoMAE V2 pretraining step: masks, targets, forward, loss, backward, AdamW.

    python bench/pretrain_step.py --model pretrain_videomae_base_patch16_224 --batch 4 \
        --decoder-mask-ratio 0.5 --steps 16 --threads 2
    # side by side with the official model code (a checkout of OpenGVLab/VideoMAEv2, never vendored here):
    python bench/pretrain_step.py ... --official-src /path/to/VideoMAEv2
    # both under jemalloc (or tcmalloc), preloaded into each process; activation checkpointing as the engine's:
    python bench/pretrain_step.py ... --allocator jemalloc --ac selective

The clip is the model's default (16 frames at 224x224), encoder mask tube 90%, decoder mask running cell
at --decoder-mask-ratio (0 = VideoMAE v1: decode every hidden token). Each implementation runs in its own
process, so peak RSS is its own, and both get the same --allocator. The last line of the output is one JSON
object with at least `step_s_median` and `peak_rss_mb` (and the ratios when the official code ran too).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import common
import torch

from videomae.constants import IMAGENET_MEAN, IMAGENET_STD


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="pretrain_videomae_base_patch16_224")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--decoder-mask-ratio", type=float, default=0.5)
    p.add_argument("--mask-ratio", type=float, default=0.9)
    p.add_argument(
        "--steps",
        type=int,
        default=16,
        help="timed steps (after --warmup untimed ones); our peak RSS settles after about 15 steps",
    )
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--dtype", choices=["fp32", "bf16"], default=None, help="autocast dtype (default: fp32 on CPU, bf16 on GPU)"
    )
    common.add_comparison_args(
        p,
        ac_help="our activation checkpointing (TrainConfig.activation_checkpointing, default selective as the "
        "engine's); the official model has only full checkpointing (with_cp), which it gets for full",
    )
    p.add_argument(
        "--count-saved",
        action="store_true",
        help="also count the tensors one step keeps for backward (one more step, eager only)",
    )
    p.add_argument(
        "--official-src",
        type=Path,
        default=None,
        help="a checkout of the official VideoMAEv2 repo: also time its model, side by side",
    )
    p.add_argument("--impl", choices=["ours", "official"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", help="torch.compile our blocks, as the engine's compile=true does")
    p.add_argument(
        "--official-compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="torch.compile the official model; auto = as its run script does (torch > 1.13.1: on)",
    )
    p.add_argument("--profile", action="store_true", help="print where the time goes (torch.profiler)")
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the device's peak for the dtype (e.g. H100/H200 SXM bf16 dense: 989): also report model "
        "FLOPs per step, achieved TFLOP/s and MFU",
    )
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------------
# The two implementations of one step
# --------------------------------------------------------------------------------------------------


def build_ours(args, fused_attn: bool = True):
    """Our model as the engine sets it up (activation checkpointing, then compile), and its loss."""
    from videomae import create_model
    from videomae.training.distributed import Dist
    from videomae.training.objective import pretraining_loss
    from videomae.training.parallelize import parallelize

    model = create_model(args.model, fused_attn=fused_attn)
    model = parallelize(
        model,
        Dist(0, 1, 0, torch.device(args.device)),
        parallel="ddp",
        activation_checkpointing=args.ac,
        compile=args.compile,
    )
    cfg = model.config

    def step(video, encoder_mask, decoder_mask):
        pred = model(video, encoder_mask, decoder_mask)
        return pretraining_loss(pred, video, encoder_mask, decoder_mask, cfg.tubelet_size, cfg.patch_size)

    return model, step, cfg


def build_official(args):
    """The official model classes, with the official engine's target and loss code path (reference §3.4)."""
    from videomae.models.config import get_config

    official = common.import_official(args.official_src, "modeling_pretrain")
    cfg = get_config(args.model)
    model = getattr(official, args.model)(decoder_depth=cfg.decoder_depth, with_cp=args.ac == "full")
    model = model.to(args.device)
    if args.official_compile != "off":  # run_mae_pretraining.py compiles whenever torch > 1.13.1
        model = torch.compile(model)
    mean = torch.tensor(IMAGENET_MEAN, device=args.device).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=args.device).view(1, 3, 1, 1, 1)
    p = cfg.patch_size

    def step(video, encoder_mask, decoder_mask):
        decode_masked_pos = ~encoder_mask if decoder_mask is None else decoder_mask
        with torch.no_grad():  # official: rearrange the whole clip, normalize, then boolean-index the labels
            b, c, t, h, w = video.shape
            x = (video * std + mean).view(b, c, t // 2, 2, h // p, p, w // p, p)
            x = x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, -1, 2 * p * p, c)
            x = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
            x = x.flatten(2)
            labels = x[~decode_masked_pos].reshape(b, -1, x.shape[-1])
        outputs = model(video, encoder_mask, decode_masked_pos)
        loss = (outputs - labels).pow(2).mean(dim=-1)
        weight = encoder_mask[~decode_masked_pos].reshape(b, -1)
        return (loss * weight).sum() / weight.sum()

    return model, step, cfg


# --------------------------------------------------------------------------------------------------
# Timing one implementation in this process
# --------------------------------------------------------------------------------------------------


def make_optimizer(model, impl: str) -> torch.optim.Optimizer:
    if impl == "official":  # torch.optim.AdamW with its defaults, as the official optimizer factory
        return torch.optim.AdamW(common.param_groups(model), lr=1e-4, betas=(0.9, 0.95))
    from videomae.training.config import OptimConfig
    from videomae.training.optim import build_optimizer

    return build_optimizer(model, OptimConfig(lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05))  # as the engine


def make_masks(args, cfg, batch: int, generator: torch.Generator):
    """Encoder tube mask and decoder running-cell mask (None = decode every hidden token), (batch, N) each."""
    from videomae.masking import make_mask, token_grid

    grid = token_grid(cfg.num_frames, cfg.image_hw, cfg.tubelet_size, cfg.patch_size)
    encoder_mask = make_mask("tube", batch, grid, args.mask_ratio, generator=generator)
    decoder_mask = (
        make_mask("running_cell", batch, grid, args.decoder_mask_ratio, generator=generator)
        if args.decoder_mask_ratio > 0
        else None
    )
    return encoder_mask, decoder_mask


def model_flops_per_step(args) -> float:
    """Model FLOPs of one step, forward + backward, with attention counted as its matrix products (no recompute).

    Counted by torch's FlopCounterMode on one clip on the CPU with the explicit attention path (the counter
    does not see CPU fused attention), times the batch: every clip has the same token counts.
    """
    from torch.utils.flop_counter import FlopCounterMode

    plain = argparse.Namespace(**{**vars(args), "device": "cpu", "compile": False, "ac": "none"})
    _, step, cfg = build_ours(plain, fused_attn=False)  # checkpointing would count its recompute
    video = torch.randn(1, 3, cfg.num_frames, *cfg.image_hw)
    with FlopCounterMode(display=False) as counter:
        step(video, *make_masks(args, cfg, 1, torch.Generator().manual_seed(0))).backward()
    return counter.get_total_flops() * args.batch


def prepare(args, impl: str):
    """Build one implementation; return a function that runs one full step -> loss."""
    torch.manual_seed(0)
    model, step, cfg = (build_official if impl == "official" else build_ours)(args)
    model.train()
    optimizer = make_optimizer(model, impl)
    autocast = torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=_dtype(args) == "bf16")
    video = torch.randn(args.batch, 3, cfg.num_frames, *cfg.image_hw, device=args.device)
    generator = torch.Generator(device=args.device).manual_seed(0)  # the same masks for both implementations

    def run_step(before_backward=lambda: None):
        encoder_mask, decoder_mask = make_masks(args, cfg, args.batch, generator)
        with autocast:
            loss = step(video, encoder_mask, decoder_mask)
        before_backward()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return run_step


def saved_for_backward_mb(run_step) -> float:
    """MB of the tensors one step's forward and loss create that are still alive when backward starts: what
    autograd keeps for backward (with activation checkpointing: what the checkpoints keep), and the loss.

    Counted over the storages ops allocate, so the figure does not depend on the allocator.
    """
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode

    class NewStorages(TorchDispatchMode):
        """Records every storage an op allocates (views and in-place results share an input's storage)."""

        def __init__(self):
            super().__init__()
            self.storages = {}  # storage id -> (weak reference, bytes)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            leaves = torch.utils._pytree.tree_leaves((args, kwargs))
            inputs = {t.untyped_storage().data_ptr() for t in leaves if isinstance(t, torch.Tensor)}
            for t in torch.utils._pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                    storage = t.untyped_storage()
                    self.storages[storage._cdata] = (StorageWeakRef(storage), storage.nbytes())
            return out

        def alive_bytes(self) -> int:
            return sum(size for ref, size in self.storages.values() if not ref.expired())

    counted = []
    with NewStorages() as counter:
        run_step(before_backward=lambda: counted.append(counter.alive_bytes()))
    return counted[0] / 2**20


def _dtype(args) -> str:
    return args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")


def run_one(args) -> dict:
    """Time one implementation alone in this process (its peak memory is its own)."""
    common.require_allocator(args.allocator, args.impl)
    torch.set_num_threads(args.threads)
    run_step = prepare(args, args.impl)
    timing, loss = common.time_steps(run_step, args.warmup, args.steps, args.device)
    if args.profile:
        common.print_profile(run_step)
    record = {
        "impl": args.impl,
        "model": args.model,
        "batch": args.batch,
        "decoder_mask_ratio": args.decoder_mask_ratio,
        "threads": args.threads,
        "device": args.device,
        "dtype": _dtype(args),
        "allocator": args.allocator,
        "ac": args.ac,
        **timing,
        "loss_last": loss,
        **common.peak_memory_mb(args.device),
    }
    if args.count_saved:  # after the peak memory is read: the counted step holds extra references
        record["saved_for_backward_mb"] = saved_for_backward_mb(run_step)
    if args.peak_tflops:  # after the peak memory is read: counting runs a step of its own
        tflop = model_flops_per_step(args) / 1e12
        achieved = tflop / record["step_s_median"]
        record.update(model_tflop_per_step=tflop, achieved_tflops=achieved, mfu=achieved / args.peak_tflops)
    return record


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    runs = common.side_by_side(__file__, argv, args, ["official", "ours"] if args.official_src else ["ours"], run_one)
    if not runs:  # a child process: its record is printed
        return
    ours = common.combine(runs["ours"])
    if not args.official_src:
        print(json.dumps(ours))
        return
    official = common.combine(runs["official"])
    print(json.dumps(official))
    # the median over rounds of the per-round speed-ups: pooling all steps would mix fast and slow spells
    speedup = common.speedups(runs["official"], runs["ours"])
    print(
        json.dumps(
            {
                **ours,
                "official_step_s_median": official["step_s_median"],
                "official_peak_rss_mb": official["peak_rss_mb"],
                # page faults and kernel time per round: how much of the official step goes to memory the OS
                # hands out afresh; others_cpu_share: how busy the rest of the machine was meanwhile
                "rounds": [
                    {
                        "official_s": o["step_s_median"],
                        "ours_s": u["step_s_median"],
                        "official_page_faults_per_step": o["page_faults_per_step"],
                        "official_kernel_s_per_step": round(o["kernel_s_per_step"], 3),
                        "others_cpu_share": [o["others_cpu_share"], u["others_cpu_share"]],
                    }
                    for o, u in zip(runs["official"], runs["ours"])
                ],
                "speedup_per_round": speedup["per_round"],
                "speedup_vs_official": speedup["median"],
                "quiet_rounds": common.quiet_rounds(runs),
                "speedup_vs_official_quiet": speedup["quiet_median"],
                "memory_ratio_vs_official": ours["peak_rss_mb"] / official["peak_rss_mb"],
            }
        )
    )


if __name__ == "__main__":
    main()
