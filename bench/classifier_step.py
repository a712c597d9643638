"""Time a video ViT classifier's fine-tuning step (forward, soft-target cross-entropy, backward, AdamW) or its
inference (eval, no_grad), for our model, the official `models/modeling_finetune.py` and transformers.

    python bench/classifier_step.py --mode train --batch 2 --steps 3 --warmup 1 --threads 2 --rounds 2 \
        --allocator tcmalloc --impls ours official transformers --official-src /path/to/VideoMAEv2
    python bench/classifier_step.py --mode infer --batch 4 ...

Each implementation runs in its own process (so peak RSS is its own) under the same --allocator, threads and
inputs: the same random clip (B, 3, T, H, W), given to transformers in its (B, T, 3, H, W) layout, and the same
soft targets (smoothed one-hot). Ours is set up as the engine sets it up: `--ac` activation checkpointing
(default selective) and the engine's fused AdamW with layer decay. The official model is its
`vit_base_patch16_224` (mean pooling, head init x 0.001 as its run script) with torch's AdamW, as its optimizer
factory builds it; transformers is `VideoMAEForVideoClassification` with SDPA attention and the Trainer's
default optimizer (fused AdamW). Neither has selective checkpointing; with `--ac full` both checkpoint every
block too. The last output line is one JSON record: ours, and per other implementation its median step,
peak RSS, the speed-up (the median of per-round ratios) and the memory ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import common
import torch

IMPLS = ("ours", "official", "transformers")
DEFAULT_BATCH = {"train": 2, "infer": 4}
LABEL_SMOOTHING = 0.1  # the official fine-tuning default


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=list(DEFAULT_BATCH), default="train")
    p.add_argument("--model", default="vit_base_patch16_224")
    p.add_argument("--batch", type=int, default=None, help="default: 2 to train, 4 for inference")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--num-classes", type=int, default=400)
    p.add_argument("--steps", type=int, default=3, help="timed steps, after --warmup untimed ones")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    common.add_comparison_args(
        p,
        ac_help="our activation checkpointing (the engine's default: selective); the others checkpoint every "
        "block for full only",
    )
    p.add_argument(
        "--impls",
        nargs="+",
        choices=IMPLS,
        default=["ours"],
        help="implementations to time side by side (ours is always among them)",
    )
    p.add_argument(
        "--official-src",
        type=Path,
        default=None,
        help="a checkout of the official VideoMAEv2 repo (needed for --impls official)",
    )
    p.add_argument("--profile", action="store_true", help="print where each one's time goes (torch.profiler)")
    p.add_argument("--impl", choices=IMPLS, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.batch = args.batch or DEFAULT_BATCH[args.mode]
    args.impls = ["ours", *(impl for impl in IMPLS[1:] if impl in args.impls)]
    if "official" in args.impls and args.official_src is None:
        p.error("--impls official needs --official-src")
    return args


# --------------------------------------------------------------------------------------------------
# The three implementations: a model, its input layout and its optimizer
# --------------------------------------------------------------------------------------------------


def model_config(args):
    from videomae.models.config import get_config

    return get_config(args.model, img_size=args.img_size, num_frames=args.num_frames, num_classes=args.num_classes)


def build_ours(args):
    from videomae import create_model
    from videomae.training.config import OptimConfig
    from videomae.training.optim import build_optimizer
    from videomae.training.parallelize import apply_activation_checkpointing

    model = create_model(args.model, img_size=args.img_size, num_frames=args.num_frames, num_classes=args.num_classes)
    apply_activation_checkpointing(model, args.ac)
    # the fine-tuning recipes' optimizer (videomae/recipes/_finetune_base.toml)
    optim = OptimConfig(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05, layer_decay=0.75)
    return model, model, lambda: build_optimizer(model, optim)


def build_official(args):
    official = common.import_official(args.official_src, "modeling_finetune")
    # as run_class_finetuning.py builds it (use_mean_pooling keeps its default, True)
    model = getattr(official, args.model)(
        img_size=args.img_size,
        all_frames=args.num_frames,
        num_classes=args.num_classes,
        init_scale=0.001,
        with_cp=args.ac == "full",
    )
    # optim_factory.create_optimizer: torch.optim.AdamW (no foreach, no fused on the CPU) over its param groups
    return model, model, lambda: torch.optim.AdamW(common.param_groups(model), lr=1e-3, betas=(0.9, 0.999))


def build_transformers(args):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    from videomae.checkpoint.hf import config_to_hf

    config = VideoMAEConfig(**config_to_hf(model_config(args)), attn_implementation="sdpa")
    model = VideoMAEForVideoClassification(config)
    if args.ac == "full":
        model.gradient_checkpointing_enable()

    def forward(video):  # (B, T, C, H, W), as its image processor writes it
        return model(pixel_values=video).logits

    # the Trainer's default optim on torch >= 2.8 is adamw_torch_fused, without decay on biases and norms
    return model, forward, lambda: torch.optim.AdamW(common.param_groups(model), lr=1e-3, fused=True)


BUILDERS = {"ours": build_ours, "official": build_official, "transformers": build_transformers}


def inputs(args, impl: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The same clip and soft targets in every process (fixed seed), the clip in the implementation's layout."""
    generator = torch.Generator().manual_seed(0)
    video = torch.randn(args.batch, 3, args.num_frames, args.img_size, args.img_size, generator=generator)
    labels = torch.randint(args.num_classes, (args.batch,), generator=generator)
    targets = torch.full((args.batch, args.num_classes), LABEL_SMOOTHING / args.num_classes)
    targets[torch.arange(args.batch), labels] += 1 - LABEL_SMOOTHING
    if impl == "transformers":
        video = video.permute(0, 2, 1, 3, 4).contiguous()
    return video, targets


# --------------------------------------------------------------------------------------------------
# One implementation in this process
# --------------------------------------------------------------------------------------------------


def prepare(args, impl: str):
    """Build one implementation; return a function that runs one fine-tuning step (-> loss) or one inference."""
    from videomae.training.stages import soft_cross_entropy  # = timm's SoftTargetCrossEntropy, the official's

    torch.manual_seed(0)
    model, forward, make_optimizer = BUILDERS[impl](args)
    video, targets = inputs(args, impl)
    if args.mode == "infer":
        model.eval()

        def infer():
            with torch.no_grad():
                return float(forward(video).float().abs().mean())

        return infer
    model.train()
    optimizer = make_optimizer()

    def train_step():
        loss = soft_cross_entropy(forward(video), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return train_step


def checkpointing(args, impl: str) -> str | None:
    """The activation checkpointing an implementation trains with (the others have none or full only)."""
    if args.mode == "infer":
        return None
    return args.ac if impl == "ours" or args.ac == "full" else "none"


def run_one(args) -> dict:
    """Time one implementation alone in this process (its peak memory is its own)."""
    common.require_allocator(args.allocator, args.impl)
    torch.set_num_threads(args.threads)
    run_step = prepare(args, args.impl)
    timing, result = common.time_steps(run_step, args.warmup, args.steps)
    if args.profile:
        common.print_profile(run_step)
    return {
        "impl": args.impl,
        "mode": args.mode,
        "model": args.model,
        "batch": args.batch,
        "clip": [args.num_frames, args.img_size, args.img_size],
        "threads": args.threads,
        "allocator": args.allocator,
        "ac": checkpointing(args, args.impl),
        **timing,
        # the loss of the last step, or the mean |logit| of the last inference: a sanity check, not a comparison
        ("loss_last" if args.mode == "train" else "logits_abs_mean"): result,
        **common.peak_memory_mb("cpu"),
    }


def summary(runs: dict[str, list[dict]]) -> dict:
    """Ours, with each other implementation's figures and its ratios to ours (speed-up: median over rounds)."""
    ours = common.combine(runs["ours"])
    # every round's medians, and how busy the rest of the machine was during each run
    rounds = [
        {
            impl: {key: record[key] for key in ("step_s_median", "others_cpu_share")}
            for impl, record in zip(runs, records)
        }
        for records in zip(*runs.values())
    ]
    out = {**ours, "rounds": rounds, "quiet_rounds": common.quiet_rounds(runs)}
    for impl, run in runs.items():
        if impl == "ours":
            continue
        other, speedup = common.combine(run), common.speedups(run, runs["ours"])
        out.update(
            {
                f"{impl}_step_s_median": other["step_s_median"],
                f"{impl}_peak_rss_mb": other["peak_rss_mb"],
                f"speedup_per_round_vs_{impl}": speedup["per_round"],
                f"speedup_vs_{impl}": speedup["median"],
                f"speedup_vs_{impl}_quiet": speedup["quiet_median"],
                f"memory_ratio_vs_{impl}": ours["peak_rss_mb"] / other["peak_rss_mb"],
            }
        )
    return out


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    runs = common.side_by_side(__file__, argv, args, args.impls, run_one)
    if not runs:  # a child process: its record is printed
        return
    for impl in args.impls[1:]:
        print(json.dumps(common.combine(runs[impl])))
    print(json.dumps(summary(runs)))


if __name__ == "__main__":
    main()
