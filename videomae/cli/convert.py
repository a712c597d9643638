"""`videomae convert SRC DST`: official .pth / DeepSpeed dir / Hugging Face dir / our format -> ours or HF.

A pretraining checkpoint stays a pretraining model (decoder included) unless `--model` names a classifier.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from videomae.checkpoint import load_pretrained_with_report, save_hf, save_pretrained
from videomae.errors import CheckpointError

FORMATS = ("videomae", "hf")
# CLI option -> ModelConfig field, for the architecture settings a checkpoint cannot tell.
OVERRIDES = {"num_classes": int, "num_frames": int, "img_size": int, "num_heads": int, "decoder_num_heads": int,
             "kind": str}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert a checkpoint (official .pth, Hugging Face dir, ours) to our format or HF",
        description="Read SRC (official .pth/.pt/.safetensors, DeepSpeed checkpoint dir, Hugging Face VideoMAE "
                    "dir, or a videomae dir) and write DST as a videomae dir (default) or a Hugging Face dir.")
    parser.add_argument("src", type=Path, help="checkpoint file or directory to read")
    parser.add_argument("dst", type=Path, help="directory to write")
    parser.add_argument("--format", choices=FORMATS, default="videomae", help="output format (default: videomae)")
    parser.add_argument("--model", default=None, help="model name; default: the architecture SRC describes")
    for option, kind in OVERRIDES.items():
        parser.add_argument("--" + option.replace("_", "-"), dest=option, type=kind, default=None,
                            choices=("classifier", "pretrain") if option == "kind" else None,
                            help=f"override {option}")
    parser.add_argument("--no-kinetics-remap", dest="remap_kinetics", action="store_false",
                        help="do not select K400/600/700 rows of a 710-class head (re-initialize it instead)")
    parser.add_argument("--non-strict", dest="strict", action="store_false",
                        help="write what fits even if keys are missing, unexpected or mis-shaped")
    parser.add_argument("--labels", type=Path, default=None, help="class names, one per line (HF id2label)")
    parser.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in DST")
    parser.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    if args.dst.exists() and not args.dst.is_dir():
        raise CheckpointError(f"{args.dst} exists and is not a directory")
    if (args.dst / "config.json").exists() and not args.overwrite:
        raise CheckpointError(f"{args.dst} already holds a checkpoint; pass --overwrite to replace it")
    labels = _read_labels(args.labels) if args.labels else None
    _print_reports()
    overrides = {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}
    model, _ = load_pretrained_with_report(args.src, args.model, strict=args.strict,
                                           remap_kinetics=args.remap_kinetics, **overrides)
    if args.format == "hf":
        save_hf(model, args.dst, labels=labels)
    else:
        save_pretrained(model, args.dst)
    config = model.config
    print(f"wrote {args.dst} ({args.format} format): {config.kind}, embed_dim {config.embed_dim}, "
          f"depth {config.depth}, num_classes {config.num_classes}")
    return 0


def _read_labels(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as error:
        raise CheckpointError(f"cannot read labels {path}: {error}") from None


def _print_reports() -> None:
    """Show the load report and checkpoint notes on stdout, once."""
    logger = logging.getLogger("videomae.checkpoint")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
