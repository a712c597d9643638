"""`videomae demo [--output DIR]`: pretrain, fine-tune and compare with scratch on generated videos, no downloads."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from videomae.cli.args import add_command
from videomae.errors import ConfigError

EXAMPLE = """\
examples:
  videomae demo                          # about 3 minutes on 2 CPU cores; writes demo_output/
  videomae demo --output runs/demo --seed 1
  videomae demo --quick --output /tmp/demo_smoke   # seconds: checks the pipeline, numbers mean nothing

outputs: results.json (accuracy_pretrained, accuracy_scratch, ...), report.md, pretrain_loss.png,
finetune_loss.png, reconstructions.png, reconstruction.gif, samples/ (test clips as .mp4 to try
`videomae predict` and `videomae visualize` on) and runs/pretrain, runs/finetune_pretrained,
runs/finetune_scratch (the engine's training runs; each is a checkpoint). A rerun with the same settings
continues the runs (Ctrl-C stops with a checkpoint); other settings start the folder over.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "demo",
        "show what pretraining buys: moving-digit videos, pretrain + fine-tune vs. scratch, on a CPU",
        "Generate moving handwritten-style digits whose classes are motions, pretrain a tiny VideoMAE V2 (dual "
        "masking) on unlabelled clips, fine-tune it on a few labelled clips, train the same model from scratch "
        "with the same budget, and compare both on held-out clips.",
        EXAMPLE,
    )
    parser.add_argument("--output", "-o", default="demo_output", help="output folder (default demo_output)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, init, masks and order (default 0)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run of the same pipeline")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch; 0 = torch's choice (default 1, fastest for this tiny model)",
    )
    parser.add_argument("--pretrain-epochs", type=int, help="override the pretraining epochs")
    parser.add_argument("--finetune-epochs", type=int, help="override the fine-tuning epochs (both runs)")
    parser.add_argument("--pool-size", type=int, help="override the unlabelled clips for pretraining")
    parser.add_argument("--train-per-class", type=int, help="override the labelled clips per class")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from videomae.demo.run import DemoConfig, run_demo
    from videomae.training.stopping import Interrupted

    for name in ("pretrain_epochs", "finetune_epochs", "pool_size", "train_per_class"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.threads < 0:
        raise ConfigError(f"--threads must be 0 (torch's choice) or more, got {args.threads}")
    cfg = DemoConfig.quick(args.seed) if args.quick else DemoConfig(seed=args.seed)
    cfg.threads = args.threads
    if args.pretrain_epochs:
        cfg.pretrain = dataclasses.replace(cfg.pretrain, epochs=args.pretrain_epochs)
    if args.finetune_epochs:
        cfg.finetune = dataclasses.replace(cfg.finetune, epochs=args.finetune_epochs)
    cfg.pool_size = args.pool_size or cfg.pool_size
    cfg.train_per_class = args.train_per_class or cfg.train_per_class
    try:
        results = run_demo(cfg, args.output, log=lambda line: print(line, file=sys.stderr, flush=True))
    except Interrupted as stop:  # the engine has said where the checkpoint is; a rerun continues
        return stop.exit_status
    print(
        f"test top-1: pretrained {results['accuracy_pretrained']:.1f}%, scratch {results['accuracy_scratch']:.1f}% "
        f"(chance {results['chance']:.1f}%); wrote {args.output}/results.json and report.md "
        f"in {results['seconds']['total']:.0f} s"
    )
    return 0
