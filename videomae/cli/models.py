"""`videomae models`: the released checkpoints videomae loads by name (the zoo)."""

from __future__ import annotations

import argparse
import json

from videomae.cli.args import add_command

EXAMPLE = """\
examples:
  videomae models
  videomae predict clip.mp4 --checkpoint vit_b_k710_dl_from_giant --labels k710
  videomae convert VideoMAEv2-Base vit_b_encoder/        # OpenGVLab's custom-code repository -> our format
"""
COLUMNS = ("name", "model", "stage", "classes", "dataset", "size", "source")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "models",
        "list the released checkpoints usable by name",
        "The released VideoMAE V2 (OpenGVLab) and VideoMAE (MCG-NJU, transformers) checkpoints. A name works "
        "wherever a checkpoint is accepted (--checkpoint, pretrained=, distill.teacher=); it is downloaded from "
        'the Hugging Face Hub on first use (pip install "videomae[hf]") and cached.',
        EXAMPLE,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from videomae.checkpoint import list_pretrained

    rows = [{column: getattr(entry, column) for column in COLUMNS} for entry in list_pretrained()]
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


def format_table(rows: list[dict]) -> str:
    widths = {column: max(len(column), *(len(str(row[column])) for row in rows)) for column in COLUMNS}
    lines = ["  ".join(column.ljust(widths[column]) for column in COLUMNS).rstrip()]
    lines += ["  ".join(str(row[column]).ljust(widths[column]) for column in COLUMNS).rstrip() for row in rows]
    return "\n".join(lines)
