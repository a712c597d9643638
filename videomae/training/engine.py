"""One training loop for every stage: the stage (stages.py) supplies model, loss and data; this does the rest.

Per optimizer step: set LR/WD from the per-iteration schedules, `accum_steps` micro-batches (forward under
autocast, fp32 loss, backward with gradient sync only on the last), skip the step if the global loss or the
gradient norm is not finite, clip, step, update the EMA, and checkpoint on schedule.

A steady-state step never waits for the device: batches arrive on it already (`DevicePrefetcher`), masks come
as static-shape indices from the loader workers, and the loss, gradient norm and the decision to skip a step stay
on the device (the fused optimizer skips a non-finite step itself). The host reads them every `log_every` steps,
at checkpoints and at validation, when it writes `metrics.jsonl` and counts skipped steps.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from videomae.checkpoint import Preprocessing
from videomae.data import build_loader
from videomae.data.loader import prefetch_for_memory, run_batches
from videomae.devices import autocast, autocast_dtype, tf32_matmuls
from videomae.errors import ConfigError
from videomae.models import build_model
from videomae.seeding import derive_seed, numpy_generator
from videomae.training.config import TrainConfig, config_from_json, save_config
from videomae.training.distributed import Dist, everywhere, init_distributed, on_main, sum_across
from videomae.training.monitor import MetricsLog, ProgressBar, append_json_line, finite_or_none
from videomae.training.optim import build_optimizer, build_schedules, scaled_lr
from videomae.training.parallelize import gradient_sync, parallelize, unwrap
from videomae.training.run_dir import claimed_output_dir, refuse_to_restart
from videomae.training.stages import Task, build_task
from videomae.training.state import (
    DivergenceError,
    checkpoint_dir,
    load_newest_checkpoint,
    save_checkpoint,
    save_model_dir,
    step_path,
)
from videomae.training.stopping import Interrupted, StopSignals

MIX_STREAM = 0x4D4958  # the stage's own draws (Mixup/CutMix), apart from the model's dropout/drop-path draws
RESUME_NEUTRAL = {
    "max_steps",
    "save_every",
    "keep_last",
    "output_dir",
    "log_every",
    "tensorboard",
    "resume",
    "dist_timeout_s",
}


def named_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers by name (the same names with activation checkpointing and in-place compile)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def found_inf_for(params: list[torch.Tensor], finite: torch.Tensor) -> torch.Tensor:
    """The fused optimizer's skip flag (1 = skip), shaped like its parameters' kind. Under FSDP2 the parameters are
    DTensors: the flag, already the same on every process, joins them as a replicated DTensor (given as a plain
    tensor, DTensor dispatch reconciles it across processes with a collective of its own that the process group
    may still be waiting on at exit)."""
    found_inf = (~finite).float()
    mesh = getattr(params[0], "device_mesh", None) if params else None
    if mesh is None:
        return found_inf
    from torch.distributed.tensor import DTensor, Replicate

    return DTensor.from_local(found_inf, mesh, [Replicate()] * mesh.ndim)


class ModelEma:
    """Exponential moving average of the weights (timm ModelEma): ema = decay·ema + (1 − decay)·model.

    The average lives in a fresh model built from the model's config and loaded with a copy of its weights: a
    plain module in eval mode. A deep copy of the trained model would not do once `parallelize` has compiled
    its blocks: the copy's compiled forward would still run the original's weights."""

    def __init__(self, model: nn.Module, decay: float):
        self.module = build_model(model.config).to(next(model.parameters()).device)
        self.module.load_state_dict(model.state_dict())
        self.module.eval().requires_grad_(False)
        self.decay = decay
        ema = named_tensors(self.module)
        self.averaged = {name: t for name, t in ema.items() if t.is_floating_point()}
        self.copied = {name: t for name, t in ema.items() if not t.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One averaging step towards `model`'s current weights (one fused op over all of them)."""
        current = named_tensors(model)
        torch._foreach_lerp_(
            list(self.averaged.values()), [current[name].detach() for name in self.averaged], 1.0 - self.decay
        )
        if self.copied:
            torch._foreach_copy_(list(self.copied.values()), [current[name] for name in self.copied])


@dataclass
class StepStats:
    """One optimizer step's results, left on the device until they are logged (reading them waits for it)."""

    step: int  # optimizer steps done, this one included
    samples: int  # training samples seen over all processes, this step included
    lr: float
    weight_decay: float
    clips: int  # clips of this step over all processes
    loss: torch.Tensor  # global mean, 0-d
    grad_norm: torch.Tensor  # before clipping, 0-d
    stepped: torch.Tensor  # bool 0-d: the optimizer applied the step (loss and gradients finite)


@dataclass
class RunResult:
    """What a run returns. `losses` are the logged (global-mean) losses of the steps this call ran."""

    output_dir: str
    step: int
    losses: list[float | None] = field(default_factory=list)
    skipped: int = 0
    val: dict | None = None
    test: dict | None = None


def log(d: Dist, message: str) -> None:
    if d.is_main:
        print(message, file=sys.stderr, flush=True)


def headline(metrics: dict, names: tuple[str, ...]) -> str:
    """A task's named metrics: 'acc1 81.20 acc5 95.10' (classification), 'mAP 26.70' (detection)."""
    return " ".join(f"{name} {metrics[name]:.2f}" for name in names)


def test_line(metrics: dict, names: tuple[str, ...], clips: int) -> str:
    """The test result, with the per-view accuracy when videos have several views (classification)."""
    if "view_acc1" not in metrics:
        return f"test ({clips} clips): {headline(metrics, names)}"
    return (
        f"test ({metrics['num_videos']} videos, {metrics['num_views']} views): {headline(metrics, names)} "
        f"(per view {metrics['view_acc1']:.2f} / {metrics['view_acc5']:.2f})"
    )


def warn_config_changes(cfg: TrainConfig, path: str, d: Dist) -> None:
    """Resuming with different settings is allowed but not exact: say which ones changed."""
    if not os.path.exists(path):
        return
    old, new = config_from_json(path).to_dict(), cfg.to_dict()
    changed = sorted(k for k in new if k not in RESUME_NEUTRAL and old.get(k) != new[k])
    if changed:
        log(
            d,
            f"warning: resuming with changed settings ({', '.join(changed)}); results will differ from an "
            f"uninterrupted run",
        )


class Trainer:
    """`Trainer(config).fit() -> RunResult`: trains one stage, resuming from `output_dir` when it holds a checkpoint.

    `fresh=True` (the command line's `--fresh`) first moves an earlier run in `output_dir` aside. `task` replaces
    what the config's stage would build (model, datasets, loss): in-memory data, as the demo's, trains through the
    same loop, checkpoints, resume and exports."""

    def __init__(self, cfg: TrainConfig, *, fresh: bool = False, task: Task | None = None):
        self.cfg = cfg.validate()
        self.fresh = fresh
        self.given_task = task
        if cfg.stage == "eval":
            raise ConfigError("the eval stage does not train; use videomae.training.run or evaluate_run")

    # ------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        self.d = d = init_distributed(cfg.dist_timeout_s)
        if cfg.parallel == "fsdp" and d.enabled and cfg.ema_decay:
            raise ConfigError("model EMA is not supported with FSDP; set ema_decay=0 or parallel=ddp")
        torch.manual_seed(cfg.seed)  # the same initial weights on every process and every run
        report_dir = cfg.output_dir if d.is_main else None
        # Process 0 also writes the data report: a failure there must stop the others too, before DDP's first
        # collective.
        self.task: Task = everywhere(lambda: self.given_task or build_task(cfg, d.device, report_dir=report_dir), d)
        self.model = self.task.model
        dtype = autocast_dtype(cfg.precision, d.device)
        self.net = parallelize(
            self.model,
            d,
            parallel=cfg.parallel,
            activation_checkpointing=cfg.activation_checkpointing,
            compile=cfg.compile,
            param_dtype=dtype,
        )
        self.model = unwrap(self.net)
        self.ema = ModelEma(self.model, cfg.ema_decay) if cfg.ema_decay else None
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.autocast = functools.partial(autocast, cfg.precision, d.device)
        fp16 = dtype == torch.float16
        self.scaler = torch.amp.GradScaler(d.device.type) if fp16 else None

        self.global_batch = per_step = cfg.batch_size * cfg.accum_steps * d.world_size  # videos per optimizer step
        self.steps_per_epoch = len(self.task.train_set) // per_step
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"the training set has {len(self.task.train_set)} videos, fewer than one global "
                f"batch of {per_step}; lower batch_size or accum_steps"
            )
        total = cfg.epochs * self.steps_per_epoch
        self.end = min(total, cfg.max_steps) if cfg.max_steps else total
        views = self.task.data.num_sample
        lr, min_lr = scaled_lr(cfg.optim, per_step, views)
        self.schedules = build_schedules(cfg.optim, lr, min_lr, total, self.steps_per_epoch)
        log(
            d,
            f"{cfg.stage}: {cfg.model}, {sum(p.numel() for p in self.model.parameters()) / 1e6:.2f}M parameters, "
            f"{d.world_size} process(es) on {d.device.type}",
        )
        log(
            d,
            f"global batch {cfg.batch_size} videos/process x {cfg.accum_steps} accumulation x {d.world_size} "
            f"processes x {views} views = {per_step * views} clips per step; lr {cfg.optim.lr:g} -> {lr:.4g} "
            f"({cfg.optim.lr_rule} rule, base batch {cfg.optim.base_batch}); {self.steps_per_epoch} steps/epoch, "
            f"schedule {total} steps, running to {self.end}",
        )

    def resume(self) -> dict:
        cfg, d = self.cfg, self.d
        config_path = os.path.join(cfg.output_dir, "config.json")
        meta = {"step": 0, "skipped": 0, "consecutive_nonfinite": 0, "best_acc1": None}
        found = load_newest_checkpoint(cfg.output_dir, d, self.model, self.optimizer, scaler=self.scaler, ema=self.ema)
        if found:
            path, meta = found
            on_main(lambda: warn_config_changes(cfg, config_path, d), d)
            log(d, f"resumed from {path} (step {meta['step']})")
            meta = dict(meta, saved_step=meta["step"], step=self.resume_step(meta))
        else:
            on_main(lambda: refuse_to_restart(cfg.output_dir), d)
        on_main(lambda: save_config(cfg, config_path), d)
        return meta

    def resume_step(self, meta: dict) -> int:
        """The step to continue from. With another global batch (other number of processes, batch size or
        accumulation) the position is kept in samples: the same epoch, the same place in its sample order, and the
        same fraction of the LR schedule (rounded down to a whole step: under one global batch of samples is seen
        twice). Checkpoints of earlier releases hold no global batch: they resume as saved. A streamed training set
        resumes exactly only with the data layout it was read with."""
        layout = meta.get("data_layout", self.data_layout)
        if getattr(self.task.train_set, "streamed", False) and layout != self.data_layout:
            log(
                self.d,
                f"warning: the streamed shards were read with {layout}, now with {self.data_layout}: the run "
                f"continues at the same place in the epoch, but not with the samples of an uninterrupted run",
            )
        saved = meta.get("global_batch", self.global_batch)
        if saved == self.global_batch:
            return meta["step"]
        into = meta["samples_into_epoch"]
        step = meta["epoch"] * self.steps_per_epoch + into // self.global_batch
        log(
            self.d,
            f"the global batch changed from {saved} to {self.global_batch} videos: continuing epoch "
            f"{meta['epoch']} after its first {into // self.global_batch * self.global_batch} samples, at step "
            f"{step} of {self.end}; the LR follows the new global batch ({self.cfg.optim.lr_rule} rule)",
        )
        return step

    # ------------------------------------------------------------------------------------------------
    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def optimizer_step(self, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unscale, measure (and clip) the gradient norm, step unless the loss or the norm is not finite.

        Returns the norm and whether the step was applied, both on the device: the fused optimizer takes the
        skip decision as its `found_inf` tensor, as it does under a GradScaler, so nothing waits for the device.
        """
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP2 returns a DTensor
        if self.cfg.optim.clip_grad:
            torch.nn.utils.clip_grads_with_norm_(params, self.cfg.optim.clip_grad, norm, foreach=True)
        finite = torch.isfinite(loss) & torch.isfinite(norm)
        if self.scaler:
            self.scaler.step(self.optimizer)  # skips by itself on inf/nan gradients
            self.scaler.update()
        else:
            self.optimizer.found_inf = found_inf_for(params, finite)
            self.optimizer.step()
        return norm, finite

    def train_step(self, batches, step: int) -> StepStats:
        """One optimizer step over `accum_steps` micro-batches, with nothing read back from the device."""
        cfg, d = self.cfg, self.d
        torch.manual_seed(derive_seed(cfg.seed, step, d.rank))  # dropout / drop-path draws = f(seed, step, rank)
        rng = numpy_generator(cfg.seed, step, d.rank, MIX_STREAM)
        lr = self.schedules.apply(self.optimizer, step)
        micro_batches = [next(batches) for _ in range(cfg.accum_steps)]  # on the device already
        counts = [
            torch.as_tensor(self.task.count(batch), dtype=torch.float32, device=d.device) for batch in micro_batches
        ]
        global_count = sum_across(torch.stack(counts).sum(), d).float().clamp_min(1.0)
        loss_total = torch.zeros((), dtype=torch.float64, device=d.device)
        for micro, (batch, count) in enumerate(zip(micro_batches, counts)):
            with gradient_sync(self.net, micro == cfg.accum_steps - 1):
                with self.autocast():
                    loss = self.task.loss(self.net, batch, rng)
                share = loss * (count / global_count)  # this batch's part of the global mean
                self.backward(share * d.world_size)  # gradient sync averages over processes
            loss_total += share.detach()
        loss_total = sum_across(loss_total, d)
        norm, stepped = self.optimizer_step(loss_total)
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        clips = sum(batch["video"].shape[0] for batch in micro_batches) * d.world_size
        return StepStats(
            step + 1,
            (step + 1) * self.global_batch,
            lr,
            self.schedules.weight_decay_at(step),
            clips,
            loss_total,
            norm,
            stepped,
        )

    def write_logs(
        self, pending: list[StepStats], meta: dict, metrics: MetricsLog, bar: ProgressBar, result: RunResult
    ) -> None:
        """Read the pending steps' results from the device (one wait), write their metrics lines, count skipped
        steps (stopping a diverged run) and show progress."""
        if not pending:
            return
        values = torch.stack(
            [torch.stack([s.loss.double(), s.grad_norm.double(), s.stepped.double()]) for s in pending]
        ).tolist()
        now = time.perf_counter()
        clips_per_s = sum(s.clips for s in pending) / max(now - self.logged_at, 1e-9)
        self.logged_at = now
        for stats, (loss, norm, stepped) in zip(pending, values):
            record = {
                "step": stats.step,
                "epoch": (stats.step - 1) // self.steps_per_epoch,
                "samples": stats.samples,
                "loss": finite_or_none(loss) if stepped else None,
                "lr": stats.lr,
                "weight_decay": stats.weight_decay,
                "grad_norm": finite_or_none(norm),
                "clips_per_s": clips_per_s,
                "stepped": bool(stepped),
            }
            if self.scaler:
                record["loss_scale"] = self.scaler.get_scale()
            self.count_nonfinite(record, meta)
            metrics.write(record)
            result.losses.append(record["loss"])
        bar.update(record["step"], record["loss"], record["lr"], clips_per_s, self.d.device)
        pending.clear()

    def count_nonfinite(self, record: dict, meta: dict) -> None:
        if record["stepped"]:
            meta["consecutive_nonfinite"] = 0
            return
        meta["skipped"] += 1
        meta["consecutive_nonfinite"] += 1
        if meta["consecutive_nonfinite"] >= self.cfg.max_nonfinite:
            raise DivergenceError(
                f"{meta['consecutive_nonfinite']} optimizer steps in a row had a non-finite loss "
                f"or gradient (last at step {record['step']}); lower optim.lr, set "
                f"optim.clip_grad, or use precision=bf16/fp32"
            )

    # ------------------------------------------------------------------------------------------------
    def validate(self, meta: dict, step: int) -> dict:
        metrics = self.task.evaluate(
            self.model,
            self.task.val_set,
            self.d,
            batch_size=self.cfg.batch_size,
            num_workers=self.task.data.num_workers,
            autocast=self.autocast,
        )
        names = self.task.metrics
        summary = {"step": step, **{name: metrics[name] for name in names}}
        # "best_acc1" holds the best of the task's first metric (the name is what earlier runs saved)
        if meta["best_acc1"] is None or metrics[names[0]] > meta["best_acc1"]:
            meta["best_acc1"] = metrics[names[0]]
            save_model_dir(
                os.path.join(checkpoint_dir(self.cfg.output_dir), "best"),
                self.d,
                self.model,
                summary,
                class_names=self.class_names,
                preprocessing=self.preprocessing,
            )
        on_main(lambda: append_json_line(os.path.join(self.cfg.output_dir, "val_metrics.jsonl"), summary), self.d)
        log(self.d, f"\nvalidation at step {step}: {headline(metrics, names)}")
        return metrics

    @property
    def class_names(self) -> list[str] | None:
        """Names of the training set's classes, when the data has them (written beside exported models)."""
        return getattr(self.task.train_set, "class_names", None)

    @property
    def preprocessing(self) -> Preprocessing:
        """How this run prepares its clips (exported beside the model)."""
        return Preprocessing.from_fields(dataclasses.asdict(self.task.data))

    def should_save(self, step: int) -> bool:
        every = self.cfg.save_every or self.steps_per_epoch
        return step % every == 0 or step == self.end

    def save(self, meta: dict, step: int) -> None:
        meta = dict(
            meta,
            step=step,
            epoch=step // self.steps_per_epoch,
            samples_into_epoch=(step % self.steps_per_epoch) * self.global_batch,  # over all processes
            global_batch=self.global_batch,
            world_size=self.d.world_size,
            data_layout=self.data_layout,
            model_config=self.model.config.to_dict(),
        )
        meta.pop("saved_step", None)
        save_checkpoint(
            self.cfg.output_dir,
            self.d,
            self.model,
            self.optimizer,
            meta=meta,
            scaler=self.scaler,
            ema=self.ema,
            keep_last=self.cfg.keep_last,
        )

    @property
    def data_layout(self) -> dict:
        """What a streamed training set's order depends on besides (seed, epoch) (see `videomae.data.stream`)."""
        cfg = self.cfg
        return {
            "world_size": self.d.world_size,
            "batch_size": cfg.batch_size,
            "accum_steps": cfg.accum_steps,
            "num_workers": self.task.data.num_workers,
        }

    def build_train_loader(self, step: int):
        """One loader for the whole run, positioned at `step`: each rank takes exactly its steps' worth of each
        epoch, and as many batches are prepared ahead as `data.prefetch_memory_gb` holds. A streamed training set
        (`data.stream`) plans its shard reads from the same position."""
        cfg, data = self.cfg, self.task.data
        pixel_bytes = getattr(self.task.train_set, "pixel_bytes", 4)  # uint8 or float32 clips
        clip_bytes = 3 * data.num_frames * data.input_size**2 * pixel_bytes
        batch_bytes = cfg.batch_size * data.num_sample * clip_bytes
        return build_loader(
            self.task.train_set,
            cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            num_workers=data.num_workers,
            drop_last=True,
            rank=self.d.rank,
            world_size=self.d.world_size,
            prefetch_factor=prefetch_for_memory(batch_bytes, data.num_workers, int(data.prefetch_memory_gb * 2**30)),
            samples_per_rank=self.steps_per_epoch * cfg.batch_size * cfg.accum_steps,
            start_sample=step % self.steps_per_epoch * self.global_batch,
        )

    def fit(self) -> RunResult:
        """Train holding `output_dir` (one run at a time); SIGTERM/SIGINT stop after the current step with a
        checkpoint and raise `Interrupted`."""
        d = init_distributed(self.cfg.dist_timeout_s)
        with (
            StopSignals() as self.stop,
            claimed_output_dir(self.cfg.output_dir, d, resume=self.cfg.resume, fresh=self.fresh),
        ):
            try:
                result = self._fit()
                signum = self.stop.agreed(d)  # a signal during the final export or test: the run is done, say so
                if signum:
                    raise Interrupted(signum, result.step, step_path(self.cfg.output_dir, result.step))
                return result
            except Interrupted as stop:
                log(d, str(stop))  # after the progress bar's last line
                raise

    def _fit(self) -> RunResult:
        self.setup()
        cfg, d = self.cfg, self.d
        meta = self.resume()
        step = meta["step"]
        result = RunResult(cfg.output_dir, step)
        metrics = MetricsLog(
            os.path.join(cfg.output_dir, "metrics.jsonl"),
            meta.get("saved_step", step),
            d.is_main,
            os.path.join(cfg.output_dir, "tensorboard") if cfg.tensorboard else None,
        )
        bar = ProgressBar(self.end, step, cfg.log_every, d.is_main)
        pending: list[StepStats] = []
        self.logged_at = time.perf_counter()
        try:
            with run_batches(self.build_train_loader(step), step // self.steps_per_epoch, d.device) as batches:
                while step < self.end:
                    pending.append(self.train_step(batches, step))
                    step += 1
                    validate_now = self.task.val_set is not None and step % (self.steps_per_epoch * cfg.val_every) == 0
                    save_now = self.should_save(step)
                    log_now = step % cfg.log_every == 0 or step == self.end or save_now or validate_now
                    # one process checks the signal flag every step; several agree on it when they meet anyway
                    stop = self.stop.agreed(d) if log_now or not d.enabled else 0
                    if log_now or stop:
                        self.write_logs(pending, meta, metrics, bar, result)
                    if validate_now:
                        result.val = self.validate(meta, step)
                    if save_now or stop:
                        self.save(meta, step)
                    if stop:
                        raise Interrupted(stop, step, step_path(cfg.output_dir, step))
        finally:
            bar.close()
            metrics.close()
        result.step, result.skipped = step, meta["skipped"]
        save_model_dir(
            os.path.join(cfg.output_dir, "export"),
            d,
            self.model,
            {"step": step, "stage": cfg.stage},
            class_names=self.class_names,
            preprocessing=self.preprocessing,
        )
        if self.ema is not None:
            save_model_dir(
                os.path.join(cfg.output_dir, "export_ema"),
                d,
                self.ema.module,
                {"step": step},
                class_names=self.class_names,
                preprocessing=self.preprocessing,
            )
        if self.task.test_set is not None and cfg.test_at_end:
            result.test = self.task.evaluate(
                self.model,
                self.task.test_set,
                d,
                batch_size=cfg.batch_size,
                num_workers=self.task.data.num_workers,
                autocast=self.autocast,
                out_dir=os.path.join(cfg.output_dir, "test"),
            )
            log(d, test_line(result.test, self.task.metrics, len(self.task.test_set)))
        return result


def save_eval_config(cfg: TrainConfig) -> None:
    os.makedirs(cfg.output_dir, exist_ok=True)
    save_config(cfg, os.path.join(cfg.output_dir, "config.json"))


def evaluate_run(cfg: TrainConfig) -> dict:
    """The eval stage: multi-view test of `cfg.pretrained` on the recipe's test data; writes `output_dir/test/`."""
    cfg = dataclasses.replace(cfg, stage="eval").validate()
    d = init_distributed(cfg.dist_timeout_s)
    on_main(functools.partial(save_eval_config, cfg), d)  # what was tested, and how
    report_dir = cfg.output_dir if d.is_main else None
    task = everywhere(lambda: build_task(cfg, d.device, report_dir=report_dir), d)
    model = task.model.to(d.device)
    with tf32_matmuls(d.device):  # fp32 matrix products on tensor cores (GPUs): inference needs no more
        metrics = task.evaluate(
            model,
            task.test_set,
            d,
            batch_size=cfg.batch_size,
            num_workers=task.data.num_workers,
            autocast=functools.partial(autocast, cfg.precision, d.device),
            out_dir=os.path.join(cfg.output_dir, "test"),
        )
    log(d, test_line(metrics, task.metrics, len(task.test_set)))
    return metrics


def run(cfg: TrainConfig, *, fresh: bool = False) -> RunResult | dict:
    """Run a config's stage: training stages return a `RunResult`, "eval" returns the test metrics.
    `fresh`: move an earlier run in `output_dir` aside first (training stages)."""
    cfg.require_weights()
    return evaluate_run(cfg) if cfg.stage == "eval" else Trainer(cfg, fresh=fresh).fit()
