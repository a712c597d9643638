"""Command-line pieces shared by `extract`, `predict`, `visualize` and `demo`."""

from __future__ import annotations

import argparse


def add_command(
    subparsers: argparse._SubParsersAction, name: str, help_text: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with worked examples (kept as written)."""
    return subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_checkpoint_arguments(parser: argparse.ArgumentParser, what: str, model_example: str) -> None:
    """--checkpoint (required) and --model (architecture name for official files)."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        help=f"{what} (official .pth, Hugging Face or videomae directory, or a training run directory)",
    )
    parser.add_argument("--model", help=f"architecture name, for official files (e.g. {model_example})")


def add_runtime_arguments(parser: argparse.ArgumentParser, batch_help: str) -> None:
    """--batch-size, --precision, --device, --backend and --num-workers (`predict` and `extract`)."""
    parser.add_argument("--batch-size", type=int, default=8, help=batch_help)
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto (default: bf16 autocast on GPUs, fp32 on the CPU), fp32, or bf16 (slow on most CPUs); on GPUs "
        "fp32 matrix products use TF32 tensor cores",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--backend", default="pyav", help="video decoder: pyav, decord, torchcodec or auto")
    parser.add_argument(
        "--num-workers",
        type=int,
        help="processes that decode videos while the model runs (default: 0 on the CPU, 4 on GPUs); the "
        "results do not depend on it",
    )
