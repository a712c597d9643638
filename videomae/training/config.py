"""Typed training configs, named recipes (TOML files in `videomae/recipes/`) and `key=value` overrides.

A recipe is a TOML file whose tables mirror `TrainConfig` (`[optim]`, `[data]`, `[model_args]`, ...).
`inherit = "name"` starts from another recipe (merged table by table), so each official script's file only
writes what differs from the shared official defaults.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from videomae.data import DataConfig
from videomae.data.remote import refuse_remote_output
from videomae.detection.config import DetectionConfig
from videomae.devices import Precision
from videomae.errors import ConfigError
from videomae.masking import token_grid
from videomae.models.config import ModelConfig, get_config
from videomae.settings import check_choices, from_dict
from videomae.training.files import writing
from videomae.training.parallelize import ActivationCheckpointing

Stage = Literal["pretrain", "finetune", "probe", "distill", "detect", "eval"]
LrRule = Literal["official", "views", "none"]
Parallel = Literal["ddp", "fsdp"]
# Stages that are meaningless on random weights, and what they would measure.
NEEDS_WEIGHTS = {"eval": "tests a trained classifier", "probe": "trains a classifier on frozen pretrained features"}


@dataclass
class OptimConfig:
    """AdamW, schedules and clipping (official names: `lr`, `min_lr`, `warmup_epochs`, `layer_decay`, ...).

    Attributes:
        lr: peak LR *before* batch scaling (see `lr_rule`).
        min_lr: final LR of the cosine, scaled like `lr`.
        warmup_epochs: linear warmup from 0, in epochs.
        warmup_steps: warmup in optimizer steps; overrides `warmup_epochs` when > 0.
        weight_decay: AdamW decay of the decayed group at step 0.
        weight_decay_end: decay at the last step (cosine); None = constant.
        betas: AdamW betas (official: 0.9/0.95 pretraining, 0.9/0.999 fine-tuning).
        eps: AdamW epsilon.
        clip_grad: max global gradient norm; None = no clipping (the norm is still logged).
        layer_decay: layer-wise LR decay factor; 1 = off.
        lr_rule: "official" = lr x (batch x accum x processes)/256; "views" also counts the repeated views;
            "none" = lr used as given.
        base_batch: the batch the LR in the recipe refers to (256).
    """

    lr: float = 1e-3
    min_lr: float = 1e-6
    warmup_epochs: float = 5.0
    warmup_steps: int = -1
    weight_decay: float = 0.05
    weight_decay_end: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_grad: float | None = None
    layer_decay: float = 1.0
    lr_rule: LrRule = "official"
    base_batch: int = 256

    def validate(self) -> None:
        """Raise `ConfigError` naming the setting (`optim.NAME`) for values that cannot work (NaN included)."""
        for name, low, high, open_low in (
            ("lr", 0.0, math.inf, False),
            ("min_lr", 0.0, math.inf, False),
            ("warmup_epochs", 0.0, math.inf, False),
            ("eps", 0.0, 1.0, True),
            ("weight_decay", 0.0, math.inf, False),
            ("layer_decay", 0.0, 1.0, True),
        ):
            _check_range(f"optim.{name}", getattr(self, name), low, high, open_low)
        if self.weight_decay_end is not None:
            _check_range("optim.weight_decay_end", self.weight_decay_end, 0.0, math.inf, False)
        if self.clip_grad is not None:
            _check_range("optim.clip_grad", self.clip_grad, 0.0, math.inf, True)
        for beta in self.betas:
            _check_range("optim.betas", beta, 0.0, 1.0, False, high_open=True)
        if self.base_batch < 1:
            raise ConfigError(f"optim.base_batch must be at least 1, got {self.base_batch}")


def _check_range(name: str, value: float, low: float, high: float, low_open: bool, high_open: bool = False) -> None:
    """`value` in the interval (brackets as given); NaN and infinity are never accepted."""
    inside = (
        math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not inside:
        if math.isinf(high):
            wanted = f"a finite number {'>' if low_open else '>='} {low:g}"
        else:
            wanted = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be {wanted}, got {value}")


@dataclass
class DistillConfig:
    """Teacher and loss of the distillation stage.

    Attributes:
        teacher: classifier checkpoint (official .pth, Hugging Face dir or our format).
        teacher_model: architecture name when the checkpoint does not carry one.
        temperature: softens both distributions; the KL term is multiplied by temperature^2.
        alpha: weight of the KL term; (1 - alpha) weights the cross-entropy to the labels.
    """

    teacher: str | None = None
    teacher_model: str | None = None
    temperature: float = 1.0
    alpha: float = 1.0


@dataclass
class TrainConfig:
    """One run of one stage. Everything a run does is decided here (saved as `output_dir/config.json`).

    Attributes:
        stage: "pretrain", "finetune" (also supervised post-pretraining), "probe", "distill", "detect"
            (spatio-temporal action detection, AVA) or "eval".
        model: architecture name (`videomae.models.list_models()`).
        model_args: official keyword overrides of the architecture (drop_path_rate, head_drop_rate, ...).
        pretrained: initial weights (checkpoint path); a K710 head is mapped to 400/600/700 classes on load.
        data: the data pipeline; `data.input_size`/`num_frames` also size the model.
        optim: optimizer and schedules.
        distill: teacher settings (stage "distill").
        detection: AVA-style detection data and head (stage "detect"; `eval` of a recipe with it tests a
            detector).
        output_dir: checkpoints, metrics and the resolved config (a local or mounted folder, never a URL); a run
            resumes from here, and holds it (`run.lock`) so that no second run writes there meanwhile.
        resume: continue from the newest checkpoint in `output_dir`; false = refuse an `output_dir` that is
            not empty (the command line's `--fresh` moves an earlier run aside either way).
        epochs: length of the schedule in data epochs.
        max_steps: stop after this many optimizer steps (the schedule still spans `epochs`); 0 = no limit.
        batch_size: videos per process per micro-batch (each yields `data.num_sample` clips).
        accum_steps: micro-batches per optimizer step (official `update_freq`).
        seed: all randomness derives from (seed, epoch, index, view) for data and (seed, step, rank) for the model.
        save_every: checkpoint every this many steps; 0 = at the end of each epoch.
        keep_last: step checkpoints kept (the best one is kept apart).
        precision: "auto" (fp32 on CPU, bf16 on GPU), "fp32", "bf16" or "fp16" (with loss scaling).
        parallel: "ddp" or "fsdp" (FSDP2 `fully_shard`, for ViT-L/H/g) when several processes run. Under FSDP
            the step checkpoints are sharded (`torch.distributed.checkpoint`, each process writes its part).
        dist_timeout_s: how long a collective waits for the slowest process before the run fails; None = the
            environment's VIDEOMAE_DIST_TIMEOUT_S, else 1800 (process 0 writes exports alone meanwhile).
        activation_checkpointing: recompute activations in backward, per transformer block: "selective"
            (default) keeps the outputs of matrix products and attention and recomputes LayerNorm, GELU and the
            other cheap ops; "full" keeps only each block's input; "none". See docs/training.md.
        compile: `torch.compile` every block.
        ema_decay: model EMA decay; 0 = no EMA.
        normalize_target: per-patch normalized pixel targets (pretraining).
        loss_on_all_decoded: the pretraining loss also counts the decoded tokens the encoder saw (the paper's
            Table 1 ablation "running cell, loss on all decoder outputs"); false = only hidden ones (official).
        val_every: validate every this many epochs (single centre clip); 0 = never.
        test_at_end: multi-view test after training (fine-tuning stages).
        max_nonfinite: this many non-finite losses in a row stop the run.
        log_every: progress-bar refresh when stderr is not a terminal (steps).
        tensorboard: also write TensorBoard events when tensorboard is installed.
    """

    stage: Stage = "finetune"
    model: str = "vit_base_patch16_224"
    model_args: dict = field(default_factory=dict)
    pretrained: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    detection: DetectionConfig | None = None
    output_dir: str = "runs/default"
    resume: bool = True
    epochs: int = 30
    max_steps: int = 0
    batch_size: int = 16
    accum_steps: int = 1
    seed: int = 0
    save_every: int = 0
    keep_last: int = 2
    precision: Precision = "auto"
    parallel: Parallel = "ddp"
    dist_timeout_s: float | None = None
    activation_checkpointing: ActivationCheckpointing = "selective"
    compile: bool = False
    ema_decay: float = 0.0
    normalize_target: bool = True
    loss_on_all_decoded: bool = False
    val_every: int = 1
    test_at_end: bool = True
    max_nonfinite: int = 5
    log_every: int = 20
    tensorboard: bool = True

    def validate(self) -> TrainConfig:
        """Raise `ConfigError` for settings that cannot work; returns self."""
        check_choices(self)
        check_choices(self.optim, "optim.")
        for name in ("batch_size", "accum_steps", "epochs", "keep_last", "max_nonfinite", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "save_every", "val_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, got {getattr(self, name)}")
        _check_range("ema_decay", self.ema_decay, 0.0, 1.0, False, high_open=True)
        if self.dist_timeout_s is not None:
            _check_range("dist_timeout_s", self.dist_timeout_s, 0.0, math.inf, True)
        self.optim.validate()
        if self.stage == "distill" and not self.distill.teacher:
            raise ConfigError("distillation needs a teacher: set distill.teacher=PATH")
        if self.stage == "detect" and self.detection is None:
            raise ConfigError("the detect stage needs a [detection] table (a detection recipe such as vit_b_ava_ft)")
        if self.detection is not None:
            self.detection.validate()
        self.data.validate()
        refuse_remote_output(self.output_dir)
        self.model_config()
        return self

    def model_config(self) -> ModelConfig:
        """The architecture this run builds (before any weights are read): a wrong model name, `model_args` key
        or clip size fails here, when the config is built, not after the data is read."""
        config = get_config(
            self.model, **self.model_args, img_size=self.data.input_size, num_frames=self.data.num_frames
        )
        token_grid(config.num_frames, config.image_hw, config.tubelet_size, config.patch_size)
        return config

    def require_weights(self) -> None:
        """Before a run: a stage that is meaningless on random weights refuses to start without them."""
        if self.stage in NEEDS_WEIGHTS and not self.pretrained:
            raise ConfigError(
                f"the {self.stage} stage {NEEDS_WEIGHTS[self.stage]}: set pretrained=CHECKPOINT "
                f"(a file, an export or a training run directory)"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _merge(base: dict, update: dict) -> dict:
    """Recursive dict merge (tables merge, values replace)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# ----------------------------------------------------------------------------------------------------
# Recipes and overrides
# ----------------------------------------------------------------------------------------------------


def list_recipes() -> list[str]:
    """Names of the shipped recipes (files starting with '_' are shared bases)."""
    files = resources.files("videomae.recipes").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml") and not f.name.startswith("_"))


def read_recipe(name_or_path: str, seen: tuple[str, ...] = ()) -> dict:
    if name_or_path in seen:
        raise ConfigError(f"recipe inheritance loops: {' -> '.join(seen + (name_or_path,))}")
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        if not os.path.isfile(name_or_path):
            raise ConfigError(f"recipe file {name_or_path!r} not found")
        text = open(name_or_path, "rb").read()
    else:
        resource = resources.files("videomae.recipes") / f"{name_or_path}.toml"
        if not resource.is_file():
            raise ConfigError(f"unknown recipe {name_or_path!r}; available: {', '.join(list_recipes())}")
        text = resource.read_bytes()
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"recipe {name_or_path!r} is not valid TOML: {error}") from None
    parent = data.pop("inherit", None)
    return _merge(read_recipe(parent, seen + (name_or_path,)), data) if parent else data


def parse_value(text: str):
    """A command-line value as TOML (1e-3, true, [0.9, 0.95], "x"); anything else is a plain string."""
    if text.lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict, assignment: str) -> dict:
    """Set `a.b.c=value` in a nested recipe dict (tables are created on the way)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"overrides are key=value (nested with dots, e.g. optim.lr=1e-3), got {assignment!r}")
    *tables, leaf = key.strip().split(".")
    node = data
    for table in tables:
        node = node.setdefault(table, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {table!r} is a value, not a table of settings")
    node[leaf] = parse_value(text.strip())
    return data


def load_recipe(name_or_path: str, overrides: list[str] = (), **fields) -> TrainConfig:
    """A named recipe (or a .toml path) with `key=value` overrides and keyword fields applied, validated."""
    data = read_recipe(name_or_path)
    for assignment in overrides:
        apply_override(data, assignment)
    data = _merge(data, fields)
    return from_dict(TrainConfig, data).validate()


def save_config(cfg: TrainConfig, path: str) -> None:
    """The resolved config as JSON (written atomically)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with writing(path):
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(cfg.to_dict(), handle, indent=2, sort_keys=True)
        os.replace(tmp, path)


# Settings earlier releases saved in a run's config.json, and what they mean now (so such runs still resume).
RETIRED_SETTINGS = {"cpu_allocator": None, "mmap_threshold_mb": None}  # the allocator is the launcher's business
RENAMED_VALUES = {"activation_checkpointing": {True: "full", False: "none"}}


def config_from_json(path: str) -> TrainConfig:
    """A config saved by `save_config` (also by an earlier release); ConfigError naming the file when it cannot
    be read or used."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ConfigError("not a table of settings")
        data = {key: value for key, value in data.items() if key not in RETIRED_SETTINGS}
        for key, renamed in RENAMED_VALUES.items():
            if isinstance(data.get(key), bool):
                data[key] = renamed[data[key]]
        return from_dict(TrainConfig, data)
    except (OSError, ValueError) as error:  # ConfigError is a ValueError, and so is malformed JSON
        raise ConfigError(f"{path} is not a readable run config ({error}); fix or delete it") from None
