"""`videomae convert SRC DST`: any checkpoint (official .pth, DeepSpeed dir, Hugging Face dir, OpenGVLab
VideoMAEv2 dir, our format, a training run, hf-hub:..., a zoo name) -> ours or HF.

A pretraining checkpoint stays a pretraining model (decoder included) unless `--model` names a classifier. The
source's class names (labels.txt, or a Hugging Face id2label) and training preprocessing go with the weights; an
`--format hf` export is ready for `transformers.pipeline` and for upload (`videomae push`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from videomae.checkpoint import locate, read_labels, read_preprocessing, save_hf, save_pretrained
from videomae.checkpoint.locate import LABELS_FILE, Location, is_run_config, read_json
from videomae.checkpoint.preprocessing import write_preprocessing
from videomae.errors import CheckpointError
from videomae.factory import load_pretrained_with_report

FORMATS = ("videomae", "hf")
# CLI option -> ModelConfig field, for the architecture settings a checkpoint cannot tell.
OVERRIDES = {
    "num_classes": int,
    "num_frames": int,
    "img_size": int,
    "num_heads": int,
    "decoder_num_heads": int,
    "kind": str,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert any checkpoint (file, directory, run, hf-hub:..., zoo name) to our format or HF",
        description="Read SRC (official .pth/.pt/.safetensors, DeepSpeed checkpoint dir, Hugging Face VideoMAE "
        "dir, OpenGVLab VideoMAEv2 dir, videomae dir or training run, hf-hub:OWNER/REPO[/FILE][@REV], or "
        "a name from `videomae models`) and write DST as a videomae dir (default) or a Hugging Face dir "
        "(config.json with id2label, model.safetensors, preprocessor_config.json, README.md model card).",
    )
    parser.add_argument("src", help="checkpoint to read")
    parser.add_argument("dst", type=Path, help="directory to write")
    parser.add_argument("--format", choices=FORMATS, default="videomae", help="output format (default: videomae)")
    parser.add_argument("--model", default=None, help="model name; default: the architecture SRC describes")
    for option, kind in OVERRIDES.items():
        parser.add_argument(
            "--" + option.replace("_", "-"),
            dest=option,
            type=kind,
            default=None,
            choices=("classifier", "pretrain") if option == "kind" else None,
            help=f"override {option}",
        )
    parser.add_argument(
        "--no-kinetics-remap",
        dest="remap_kinetics",
        action="store_false",
        help="do not select K400/600/700 rows of a 710-class head (re-initialize it instead)",
    )
    parser.add_argument(
        "--non-strict",
        dest="strict",
        action="store_false",
        help="write what fits even if keys are missing, unexpected or mis-shaped",
    )
    parser.add_argument(
        "--labels", type=Path, default=None, help="class names, one per line (default: those of SRC, if it has them)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in DST")
    parser.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    if args.dst.exists() and not args.dst.is_dir():
        raise CheckpointError(f"{args.dst} exists and is not a directory")
    if (args.dst / "config.json").exists() and not args.overwrite:
        raise CheckpointError(f"{args.dst} already holds a checkpoint; pass --overwrite to replace it")
    _print_reports()
    location = locate(args.src)
    overrides = {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}
    model, _ = load_pretrained_with_report(
        args.src, args.model, strict=args.strict, remap_kinetics=args.remap_kinetics, **overrides
    )
    config = model.config
    if args.labels:
        labels = _read_labels(args.labels, config.num_classes)
    else:
        labels = _source_labels(location, config.num_classes)
    found = read_preprocessing(location)
    preprocessing = found[0] if found else None
    if args.format == "hf":
        save_hf(model, args.dst, labels=labels, preprocessing=preprocessing, training=_run_config(location))
    else:
        save_pretrained(model, args.dst)
        if labels:
            (args.dst / LABELS_FILE).write_text("\n".join(labels) + "\n", encoding="utf-8")
        if preprocessing:
            write_preprocessing(preprocessing, args.dst)
    print(
        f"wrote {args.dst} ({args.format} format): {config.kind}, embed_dim {config.embed_dim}, "
        f"depth {config.depth}, num_classes {config.num_classes}" + (", with class names" if labels else "")
    )
    return 0


def _source_labels(location: Location, num_classes: int) -> list[str] | None:
    """The source's class names, if it has names for exactly the converted model's outputs."""
    labels = read_labels(location)
    if labels and len(labels) != num_classes:
        print(
            f"note: the source's {len(labels)} class names do not fit {num_classes} outputs; left out (pass --labels)"
        )
        return None
    return labels


def _run_config(location: Location) -> dict | None:
    """The resolved config of the training run the source belongs to, for the model card."""
    if location.run_dir is None or not (location.run_dir / "config.json").is_file():
        return None
    config = read_json(location.run_dir / "config.json")
    return config if is_run_config(config) else None


def _read_labels(path: Path, num_classes: int) -> list[str]:
    try:
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as error:
        raise CheckpointError(f"cannot read labels {path}: {error}") from None
    if len(labels) != num_classes:
        raise CheckpointError(f"{path} has {len(labels)} class names but the model has {num_classes} outputs")
    return labels


def _print_reports() -> None:
    """Show the load report and checkpoint notes on stdout, once."""
    logger = logging.getLogger("videomae.checkpoint")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
