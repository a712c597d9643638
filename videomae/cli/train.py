"""`videomae pretrain|finetune|probe|distill|detect|eval RECIPE [key=value ...]`: run a training stage from a recipe.

Works under torchrun (`torchrun --nproc_per_node=8 -m videomae pretrain vit_b_hybrid_pt ...`) and srun.
SIGTERM or Ctrl-C stops a run after the current step with a checkpoint (exit status 143 or 130); the same
command resumes it.
"""

from __future__ import annotations

import argparse
import sys

from videomae.errors import ConfigError

COMMANDS = {
    "pretrain": "masked-autoencoder pretraining (dual masking)",
    "finetune": "supervised fine-tuning or post-pretraining (e.g. on K710)",
    "probe": "linear probing: train only the classifier of a frozen model",
    "distill": "distill a classifier teacher into a smaller student",
    "detect": "spatio-temporal action detection (AVA): train per-person action classifiers on keyframe boxes",
    "eval": "test a classifier (multi-view, official merge) or a detector (AVA frame mAP, detections.csv)",
}
# Which recipe stages each command accepts (a fine-tuning recipe describes the data and model of eval/probe too).
ACCEPTS = {
    "pretrain": {"pretrain"},
    "finetune": {"finetune"},
    "probe": {"finetune", "probe"},
    "distill": {"distill"},
    "detect": {"detect"},
    "eval": {"finetune", "probe", "distill", "detect", "eval"},
}


def run_command(args: argparse.Namespace) -> int:
    from videomae.training import load_recipe, run
    from videomae.training.config import read_recipe
    from videomae.training.distributed import shutdown
    from videomae.training.stopping import Interrupted

    recipe_stage = read_recipe(args.recipe).get("stage", "finetune")
    if recipe_stage not in ACCEPTS[args.command]:
        raise ConfigError(
            f"recipe {args.recipe!r} is a {recipe_stage} recipe; `videomae {args.command}` takes "
            f"{' or '.join(sorted(ACCEPTS[args.command]))} recipes"
        )
    cfg = load_recipe(args.recipe, args.overrides, stage=args.command)
    cfg.require_weights()
    if cfg.stage == "eval":
        cfg = with_trained_preprocessing(cfg, args.overrides)
    try:
        run(cfg, fresh=getattr(args, "fresh", False))
    except Interrupted as stop:  # the engine has said where the checkpoint is
        return stop.exit_status
    finally:
        shutdown()
    return 0


# Data settings a model's export records and `videomae eval` takes from it (the recipe's are defaults).
EVAL_SETTINGS = (
    "num_frames",
    "sampling_rate",
    "sparse",
    "input_size",
    "short_side_size",
    "test_num_segment",
    "test_num_crop",
)


def with_trained_preprocessing(cfg, overrides: list[str]):
    """`cfg` testing clips as the checkpoint was trained (frames, rate, sizes, views), unless set explicitly on
    the command line, where a value that differs from training is warned about."""
    import dataclasses

    from videomae.checkpoint import locate, read_preprocessing

    found = read_preprocessing(locate(cfg.pretrained))
    if found is None:
        return cfg
    trained, source = found
    explicit = {item.partition("=")[0].strip() for item in overrides}
    changes = {}
    for name in EVAL_SETTINGS:
        value, wanted = getattr(trained, name), getattr(cfg.data, name)
        if f"data.{name}" not in explicit:
            changes[name] = value
        elif wanted != value:
            print(
                f"warning: data.{name}={wanted} differs from the {value} the model was trained with ({source})",
                file=sys.stderr,
            )
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **changes)).validate()


def register(subparsers: argparse._SubParsersAction) -> None:
    for command, help_text in COMMANDS.items():
        parser = subparsers.add_parser(
            command,
            help=help_text,
            description=help_text + ". Recipes: see "
            "docs/training.md or `python -c 'import videomae.training as t; "
            "print(t.list_recipes())'`.",
        )
        parser.add_argument("recipe", help="recipe name (e.g. tiny, vit_b_k400_ft) or path to a .toml file")
        parser.add_argument(
            "overrides",
            nargs="*",
            metavar="key=value",
            help="settings to change, nested with dots: optim.lr=1e-3 data.num_frames=8 max_steps=100",
        )
        if command != "eval":
            parser.add_argument(
                "--fresh",
                action="store_true",
                help="move an earlier run in output_dir aside (renamed OUTPUT_DIR.old-DATE-TIME) and "
                "start again; without it a run resumes from output_dir's newest checkpoint",
            )
        parser.set_defaults(func=run_command)
