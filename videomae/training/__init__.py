"""Training: one engine for pretraining, post-pretraining, fine-tuning, linear probing, distillation, evaluation.

    from videomae.training import load_recipe, run
    result = run(load_recipe("tiny", ["output_dir=/tmp/tiny", "max_steps=20"]))

See docs/training.md for recipes, overrides, scaling and resume.
"""

from videomae.lazy import lazy_exports

# Names exported here, imported on first use: the engine pulls in data loading (torchvision, PIL, PyAV,
# about 170 MB of resident memory), which the objective does not need.
_EXPORTS = {
    "DivergenceError": "state",
    "list_checkpoints": "state",
    "DistillConfig": "config",
    "OptimConfig": "config",
    "TrainConfig": "config",
    "apply_override": "config",
    "list_recipes": "config",
    "load_recipe": "config",
    "RunResult": "engine",
    "Trainer": "engine",
    "evaluate_run": "engine",
    "run": "engine",
    "compute_metrics": "evaluation",
    "evaluate": "evaluation",
    "merge_views": "evaluation",
    "OutputDirError": "files",
    "Interrupted": "stopping",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
