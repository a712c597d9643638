"""Training: one engine for pretraining, post-pretraining, fine-tuning, linear probing, distillation, evaluation.

    from videomae.training import load_recipe, run
    result = run(load_recipe("tiny", ["output_dir=/tmp/tiny", "max_steps=20"]))

See docs/training.md for recipes, overrides, scaling and resume.
"""

from videomae.training.checkpointing import DivergenceError, list_checkpoints
from videomae.training.config import (
    DistillConfig,
    OptimConfig,
    TrainConfig,
    apply_override,
    list_recipes,
    load_recipe,
)
from videomae.training.engine import RunResult, Trainer, evaluate_run, run
from videomae.training.evaluation import compute_metrics, evaluate, merge_views

__all__ = [
    "DistillConfig", "DivergenceError", "OptimConfig", "RunResult", "TrainConfig", "Trainer", "apply_override",
    "compute_metrics", "evaluate", "evaluate_run", "list_checkpoints", "list_recipes", "load_recipe", "merge_views",
    "run",
]
