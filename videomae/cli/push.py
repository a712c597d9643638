"""`videomae push DIR OWNER/REPO`: publish an exported model directory on the Hugging Face Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from videomae.cli.args import add_command

EXAMPLE = """\
examples:
  videomae convert runs/my_finetune my_model_hf/ --format hf     # config, weights, processor config, model card
  videomae push my_model_hf/ me/videomae-v2-b-mine --private
  videomae predict clip.mp4 --checkpoint hf-hub:me/videomae-v2-b-mine
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "push",
        "upload an exported model directory to the Hugging Face Hub",
        "Upload every file of DIR (a `videomae convert --format hf` export, or a directory in our format) to the "
        "model repository OWNER/REPO, creating it if needed, in one commit. Needs huggingface_hub "
        '(pip install "videomae[hf]") and a token that may write there (`hf auth login` or HF_TOKEN).',
        EXAMPLE,
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="exported model directory")
    parser.add_argument("repo_id", metavar="OWNER/REPO", help="model repository on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="branch to commit to (default: main)")
    parser.add_argument("--message", help="commit message")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from videomae.checkpoint import locate
    from videomae.checkpoint.hub import upload
    from videomae.errors import CheckpointError

    location = locate(args.directory)
    if location.kind not in ("hf", "videomae") or location.path != args.directory:
        raise CheckpointError(
            f"{args.directory} is not an exported model directory (transformers or videomae "
            f"layout); export one first: videomae convert CHECKPOINT DIR --format hf"
        )
    print(
        f"uploaded {args.directory} to {args.repo_id}: "
        f"{upload(args.directory, args.repo_id, args.private, args.revision, args.message)}"
    )
    return 0
