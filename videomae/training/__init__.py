"""Training: one engine for pretraining, post-pretraining, fine-tuning, linear probing, distillation, evaluation.

    from videomae.training import load_recipe, run
    result = run(load_recipe("tiny", ["output_dir=/tmp/tiny", "max_steps=20"]))

See docs/training.md for recipes, overrides, scaling and resume.
"""

import importlib

# Names exported here, imported on first use: the engine pulls in data loading (torchvision, PIL, PyAV,
# about 170 MB of resident memory), which the objective and the memory policy do not need.
_EXPORTS = {
    "DivergenceError": "checkpointing", "list_checkpoints": "checkpointing",
    "DistillConfig": "config", "OptimConfig": "config", "TrainConfig": "config", "apply_override": "config",
    "list_recipes": "config", "load_recipe": "config",
    "RunResult": "engine", "Trainer": "engine", "evaluate_run": "engine", "run": "engine",
    "compute_metrics": "evaluation", "evaluate": "evaluation", "merge_views": "evaluation",
    "OutputDirError": "files", "Interrupted": "stopping",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'videomae.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"videomae.training.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
