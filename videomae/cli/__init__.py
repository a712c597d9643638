"""The `videomae` command: one entry point, one module per subcommand family.

Each module in `COMMAND_MODULES` exposes `register(subparsers)`, which adds its subcommands and sets
`func(args) -> int` on each. User errors (`VideoMAEError`) print one clear line and exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from videomae.errors import VideoMAEError

COMMAND_MODULES = [
    "videomae.cli.convert",
    "videomae.cli.models",
    "videomae.cli.data",
    "videomae.cli.train",
    "videomae.cli.extract",
    "videomae.cli.predict",
    "videomae.cli.visualize",
    "videomae.cli.demo",
    "videomae.cli.push",
]

EXAMPLES = """\
examples:
  videomae demo                      # pretraining vs. scratch on generated videos, a few minutes on a CPU
  videomae pretrain tiny output_dir=runs/tiny
  videomae predict clip.mp4 --checkpoint vit_b_k400_ft.pth --model vit_base_patch16_224 --labels k400
  videomae COMMAND --help            # the options and worked examples of one command
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videomae",
        description="VideoMAE V2: pretrain, fine-tune, evaluate and deploy video transformers.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def one_line(error: BaseException) -> str:
    """The user-facing line of an error. An error re-raised from a DataLoader worker carries the worker's
    traceback in its message; only its last line (the original message) is for the user."""
    text = str(error).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VideoMAEError as error:
        print(f"videomae {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # a full or read-only disk, a missing folder: the user's to fix, no traceback
        print(f"videomae {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
