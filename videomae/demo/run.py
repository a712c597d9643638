"""`videomae demo`: does VideoMAE V2 pretraining help? Measured end to end on a laptop-sized problem.

1. Build moving-digit videos (`videomae.demo.digits`): a large unlabelled pool, a small labelled
   training set (a few clips per class) and a held-out test set. Classes are motions, so a single frame
   is not enough.
2. Pretrain a tiny VideoMAE V2 on the pool with dual masking (tube encoder mask, running-cell decoder mask).
3. Fine-tune it on the labelled clips; train the same architecture from scratch with the same budget.
4. Evaluate both on the test set and write results.json, report.md, loss curves and reconstruction pictures.

Each stage is a run of the training engine (`Trainer` with an in-memory `Task`) in `DIR/runs/<stage>`, so the
demo trains, checkpoints, exports and tests exactly as `videomae pretrain`/`finetune` do; only the clips come
from memory (decoding thousands of files every epoch would dominate a CPU run).

A rerun into the same folder continues the runs when they were made with the same settings (kept in
`runs/demo.json`): the engine resumes an interrupted run from its last checkpoint and keeps a finished one.
Runs of other settings are deleted first, with every output made from them. Ctrl-C stops the current run after
its step, with a checkpoint; results.json is written last, so it is there only when every output belongs to
the runs beside it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import Dataset

from videomae.apps.plots import line_plot
from videomae.apps.visualize import grid_image, reconstruct, save_gif
from videomae.data import DataConfig
from videomae.data.synthetic import encode_video
from videomae.data.transforms import normalize, to_tchw
from videomae.demo.digits import CLASS_NAMES, DigitClips, DigitsConfig, glyph_bank, make_digit_clips
from videomae.factory import create_model
from videomae.masking import MaskSpec, MaskType, mask_indices, token_grid
from videomae.seeding import numpy_generator, torch_generator
from videomae.training.config import OptimConfig, TrainConfig
from videomae.training.engine import RunResult, Trainer
from videomae.training.files import json_text
from videomae.training.run_dir import RunLock
from videomae.training.stages import (
    Targets,
    Task,
    classification_objective,
    count_clips,
    data_for,
    loss_token_count,
    model_args,
    reconstruction_objective,
)
from videomae.training.state import list_checkpoints

POOL_STREAM, TRAIN_STREAM, TEST_STREAM = 2, 0, 1  # independent clip sets from one seed
PRETRAIN_MODEL, CLASSIFIER_MODEL = "pretrain_videomae_small_patch16_224", "vit_small_patch16_224"  # sized by arch
SIZED_BY_DATA = ("img_size", "num_frames")  # arch keys a run takes from its data config
RUNS = "runs"
SETTINGS = os.path.join(RUNS, "demo.json")  # the demo settings the runs beside it were made with
PRETRAIN, FINETUNE_PRETRAINED, FINETUNE_SCRATCH = "pretrain", "finetune_pretrained", "finetune_scratch"
SUMMARY = ("results.json", "report.md")
PICTURES = ("pretrain_loss.png", "finetune_loss.png", "reconstructions.png", "reconstruction.gif")
SAMPLES = "samples"


@dataclass
class StageConfig:
    """One training stage of the demo.

    Attributes:
        epochs: passes over the stage's data.
        batch_size: clips per step.
        optim: optimizer and schedule (LR used as given).
    """

    epochs: int
    batch_size: int
    optim: OptimConfig


@dataclass
class DemoConfig:
    """Everything the demo does. The defaults are the measured configuration reported in the README.

    Attributes:
        seed: every draw (data, init, masks, order) derives from it.
        pool_size: unlabelled clips for pretraining.
        train_per_class: labelled clips per class for fine-tuning.
        test_per_class: held-out clips per class.
        digits: how clips look and move.
        arch: model size (official keyword names); the pretraining model adds its decoder.
        mask_ratio: tube encoder mask ratio.
        decoder_mask_type: decoder mask ("running_cell", or "frame", "random" as the paper's ablations).
        decoder_mask_ratio: decoder mask ratio (0 = decode every hidden token, VideoMAE v1).
        loss_on_all_decoded: the pretraining loss also counts decoded tokens the encoder saw (an ablation).
        pretrain: pretraining stage.
        finetune: fine-tuning stage, the same recipe and number of steps for the pretrained and the scratch
            model. Few labelled clips and many epochs: with 15 clips per class and 60 epochs, the model trained
            from scratch reached 78% on seed 1 against the pretrained model's 43%; with fewer labels, what
            pretraining learned from the unlabelled pool matters more. No layer decay: removing it raised the
            pretrained model's mean top-1 from 35% to 42% over seeds 0-4 (BENCHMARKS.md, "Demo").
        drop_path_rate: stochastic depth in fine-tuning.
        label_smoothing: fine-tuning targets.
        max_shift: random translation (pixels, same for all frames) in fine-tuning; no flips, which would
            swap left/right and clockwise/anticlockwise.
        threads: torch CPU threads (0 = torch's default). One by default: the model is so small that a second
            thread gains little, and on a machine shared with other jobs, waiting threads can make it many
            times slower.
    """

    seed: int = 0
    pool_size: int = 3000
    train_per_class: int = 6
    test_per_class: int = 50
    digits: DigitsConfig = field(default_factory=DigitsConfig)
    arch: dict = field(
        default_factory=lambda: dict(
            img_size=32,
            patch_size=8,
            num_frames=8,
            tubelet_size=2,
            embed_dim=96,
            depth=4,
            num_heads=3,
            decoder_embed_dim=64,
            decoder_depth=2,
            decoder_num_heads=2,
        )
    )
    mask_ratio: float = 0.75
    decoder_mask_type: MaskType = "running_cell"
    decoder_mask_ratio: float = 0.5
    loss_on_all_decoded: bool = False
    pretrain: StageConfig = field(
        default_factory=lambda: StageConfig(
            epochs=15,
            batch_size=64,
            optim=OptimConfig(
                lr=1.5e-3, min_lr=1e-5, warmup_epochs=1, betas=(0.9, 0.95), weight_decay=0.05, lr_rule="none"
            ),
        )
    )
    finetune: StageConfig = field(
        default_factory=lambda: StageConfig(
            epochs=200,
            batch_size=16,
            optim=OptimConfig(lr=1e-3, min_lr=1e-6, warmup_epochs=6, weight_decay=0.05, lr_rule="none"),
        )
    )
    drop_path_rate: float = 0.1
    label_smoothing: float = 0.1
    max_shift: int = 4
    threads: int = 1

    @property
    def data(self) -> DataConfig:
        """The clips as the runs record them: exports carry it (preprocessing.json), so `videomae predict` and
        `visualize` read the samples as the models were trained. Augmentation is the datasets' own (`max_shift`)."""
        arch = self.arch
        return DataConfig(
            num_frames=arch["num_frames"],
            sampling_rate=1,
            input_size=arch["img_size"],
            short_side_size=arch["img_size"],
            test_num_segment=1,
            test_num_crop=1,
            flip=False,
            rand_augment=None,
            reprob=0.0,
            mixup=0.0,
            cutmix=0.0,
            label_smoothing=self.label_smoothing,
            mask_type="tube",
            mask_ratio=self.mask_ratio,
            decoder_mask_type=self.decoder_mask_type,
            decoder_mask_ratio=self.decoder_mask_ratio,
            tubelet_size=arch["tubelet_size"],
            patch_size=arch["patch_size"],
            num_workers=0,
        )

    @property
    def masks(self) -> MaskSpec:
        """Tube encoder mask and the decoder mask at the demo's ratios."""
        return self.data.masks

    @classmethod
    def quick(cls, seed: int = 0) -> DemoConfig:
        """A seconds-long run of the same pipeline (tests, smoke checks); its accuracies mean nothing."""
        return cls(
            seed=seed,
            pool_size=128,
            train_per_class=3,
            test_per_class=3,
            digits=DigitsConfig(glyphs_per_digit=2),
            arch=dict(
                img_size=32,
                patch_size=8,
                num_frames=8,
                tubelet_size=2,
                embed_dim=32,
                depth=2,
                num_heads=2,
                decoder_embed_dim=32,
                decoder_depth=1,
                decoder_num_heads=2,
            ),
            pretrain=StageConfig(2, 32, OptimConfig(lr=1e-3, warmup_epochs=0, lr_rule="none")),
            finetune=StageConfig(2, 8, OptimConfig(lr=1e-3, warmup_epochs=0, layer_decay=0.75, lr_rule="none")),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---- data ----------------------------------------------------------------------------------------------------


class ClipDataset(Dataset):
    """In-memory clips with the item layout of the engine's datasets (one view per item).

    Classification items: {"video": (1, 3, T, H, W), "label": (1,), "video_index": (1,), "view": (1,)}.
    With `masks` set (pretraining), items carry {"video", "encoder_mask": (1, N), "decoder_mask": (1, N)}.

    Args:
        clips: the generated clips.
        seed: base seed of the per-(epoch, index) draws.
        max_shift: random translation in pixels (0 = none).
        masks: (token grid, masks) for pretraining items; None for classification.
    """

    def __init__(
        self,
        clips: DigitClips,
        seed: int,
        max_shift: int = 0,
        masks: tuple[tuple[int, int, int], MaskSpec] | None = None,
    ):
        self.clips, self.seed, self.max_shift, self.masks = clips, seed, max_shift, masks
        self.epoch = 0
        self.num_classes = len(CLASS_NAMES)
        self.class_names = list(CLASS_NAMES) if masks is None else None  # the pool is unlabelled: no labels.txt
        self.video_ids = [f"clip_{i:05d}" for i in range(len(clips))]

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        epoch, index = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (self.epoch, int(key))
        video = normalize(to_tchw(self.clips.frames[index]))  # (3, T, H, W)
        if self.max_shift:
            dy, dx = numpy_generator(self.seed, epoch, index).integers(-self.max_shift, self.max_shift + 1, 2)
            video = torch.roll(video, (int(dy), int(dx)), dims=(2, 3))  # the same shift in every frame
        if self.masks is not None:
            grid, spec = self.masks
            encoder_mask, decoder_mask = spec.sample(1, grid, generator=torch_generator(self.seed, epoch, index))
            masks = {"encoder_mask": encoder_mask, "decoder_mask": decoder_mask}
            return {"video": video[None], **masks, **mask_indices(encoder_mask, decoder_mask)}
        return {
            "video": video[None],
            "label": self.clips.labels[index : index + 1],
            "video_index": torch.tensor([index]),
            "view": torch.tensor([0]),
        }


@dataclass
class DemoData:
    pool: DigitClips
    train: DigitClips
    test: DigitClips


def build_data(cfg: DemoConfig) -> DemoData:
    """Pool, labelled train and test clips; all three share the glyph bank but no clip."""
    bank = glyph_bank(cfg.digits, cfg.seed)
    classes = len(CLASS_NAMES)
    return DemoData(
        pool=make_digit_clips(cfg.pool_size, cfg.digits, cfg.seed, stream=POOL_STREAM, glyphs=bank),
        train=make_digit_clips(cfg.train_per_class * classes, cfg.digits, cfg.seed, stream=TRAIN_STREAM, glyphs=bank),
        test=make_digit_clips(cfg.test_per_class * classes, cfg.digits, cfg.seed, stream=TEST_STREAM, glyphs=bank),
    )


# ---- the output folder ---------------------------------------------------------------------------------------


def run_dir(out_dir: str, stage: str) -> str:
    return os.path.join(out_dir, RUNS, stage)


def read_settings(out_dir: str) -> dict | None:
    try:
        with open(os.path.join(out_dir, SETTINGS), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):  # none yet, or cut by a kill: the runs are not known to be ours
        return None


def write_atomically(path: str, text: str) -> None:
    """Replace `path` in one step, so a kill leaves the old file or the new one."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def remove_outputs(out_dir: str) -> None:
    """Delete what the demo writes. The summary goes first and the settings before the runs, so that an
    interrupted removal never leaves a summary of missing runs, nor half-deleted runs taken for resumable."""
    for name in SUMMARY + (SETTINGS,) + PICTURES:
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            os.remove(path)
    for name in (RUNS, SAMPLES):
        shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)


def prepare_folder(cfg: DemoConfig, out_dir: str, log=print) -> None:
    """Leave in `out_dir` only runs made with `cfg`, which the engine then resumes or keeps as they are.

    Runs of other settings go, with every output made from them. So does a run without a checkpoint (killed
    before its first): there is nothing to resume, and the engine refuses to start over its earlier work."""
    settings = json.loads(json_text(cfg.to_dict()))  # as it reads back
    if read_settings(out_dir) != settings:
        if os.path.exists(os.path.join(out_dir, RUNS)):
            log(f"{out_dir} holds a demo with other settings: deleting it and starting over")
        remove_outputs(out_dir)
        os.makedirs(os.path.join(out_dir, RUNS))
        write_atomically(os.path.join(out_dir, SETTINGS), json_text(settings, indent=1))
        return
    for stage in (PRETRAIN, FINETUNE_PRETRAINED, FINETUNE_SCRATCH):
        path = run_dir(out_dir, stage)
        if os.path.isdir(path) and not list_checkpoints(path):
            shutil.rmtree(path)


# ---- training: one engine run per stage ----------------------------------------------------------------------


def run_config(cfg: DemoConfig, budget: StageConfig, output_dir: str, clips: int, **fields) -> TrainConfig:
    """An engine run on in-memory clips: fp32, no TensorBoard, a progress line and a checkpoint every tenth of the
    run (a checkpoint of these models costs as much as a step or two: one per epoch would slow the demo down)."""
    tenth = max(1, budget.epochs * (clips // budget.batch_size) // 10)
    return TrainConfig(
        data=cfg.data,
        optim=budget.optim,
        output_dir=output_dir,
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        precision="fp32",
        activation_checkpointing="none",  # a tiny model: recomputing activations would only cost time
        val_every=0,
        log_every=tenth,
        save_every=tenth,
        tensorboard=False,
        **fields,
    )


def architecture(cfg: DemoConfig, **extra) -> dict:
    """The run's `model_args`: the demo's arch without the clip size, which comes from the data config."""
    return {**{k: v for k, v in cfg.arch.items() if k not in SIZED_BY_DATA}, **extra}


def pretrain_task(run: TrainConfig, clips: DigitClips, seed: int) -> Task:
    """What `stages.build_pretrain` builds, on the in-memory pool."""
    torch.manual_seed(run.seed)  # as the engine seeds before it builds a stage's model
    model = create_model(run.model, **model_args(run))
    data = data_for(model, run)
    c = model.config
    grid = token_grid(c.num_frames, c.image_hw, c.tubelet_size, c.patch_size)
    pool = ClipDataset(clips, seed, masks=(grid, data.masks))
    all_decoded = run.loss_on_all_decoded
    loss = reconstruction_objective(data.tubelet_size, data.patch_size, run.normalize_target, all_decoded)
    return Task(model, data, pool, None, None, loss, loss_token_count(all_decoded))


def classifier_task(run: TrainConfig, data: DemoData, seed: int, max_shift: int) -> Task:
    """What `stages.build_classifier_stage` builds for fine-tuning, on the in-memory labelled and test clips."""
    torch.manual_seed(run.seed)  # the same head init for the pretrained and the scratch run
    model = create_model(run.model, pretrained=run.pretrained, **model_args(run, len(CLASS_NAMES)))
    config = data_for(model, run)
    train = ClipDataset(data.train, seed, max_shift=max_shift)
    loss = classification_objective(Targets(len(CLASS_NAMES), config))
    return Task(model, config, train, None, ClipDataset(data.test, seed), loss, count_clips)


def pretrain_run(cfg: DemoConfig, pool_size: int, out_dir: str, **arch) -> TrainConfig:
    """The pretraining run's config; `arch` adds model settings (the study counts FLOPs with fused_attn=False)."""
    return run_config(
        cfg,
        cfg.pretrain,
        run_dir(out_dir, PRETRAIN),
        pool_size,
        stage="pretrain",
        model=PRETRAIN_MODEL,
        model_args=architecture(cfg, **arch),
        seed=cfg.seed,
        loss_on_all_decoded=cfg.loss_on_all_decoded,
    )


def pretrain(cfg: DemoConfig, data: DemoData, out_dir: str) -> RunResult:
    """Dual-masking pretraining on the unlabelled pool."""
    run = pretrain_run(cfg, len(data.pool), out_dir)
    return Trainer(run, task=pretrain_task(run, data.pool, cfg.seed)).fit()


def finetune(cfg: DemoConfig, data: DemoData, out_dir: str, from_pretrained: bool) -> RunResult:
    """Fine-tune the pretraining run's encoder (run directories are checkpoints), or the same network from
    scratch; the engine tests it on the held-out clips."""
    run = run_config(
        cfg,
        cfg.finetune,
        run_dir(out_dir, FINETUNE_PRETRAINED if from_pretrained else FINETUNE_SCRATCH),
        len(data.train),
        stage="finetune",
        model=CLASSIFIER_MODEL,
        model_args=architecture(cfg, drop_path_rate=cfg.drop_path_rate),
        pretrained=run_dir(out_dir, PRETRAIN) if from_pretrained else None,
        seed=cfg.seed + 1,  # the same head init, order and drop-path draws for both runs
    )
    return Trainer(run, task=classifier_task(run, data, cfg.seed, cfg.max_shift)).fit()


def logged_losses(result: RunResult) -> list[float | None]:
    """The loss of every step of the run, also of steps an earlier, resumed call took (metrics.jsonl)."""
    with open(os.path.join(result.output_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line)["loss"] for line in handle]


def run_summary(result: RunResult, out_dir: str) -> dict:
    """Where the run is, its steps, and the step this call resumed it from (0: trained now from the start)."""
    return {
        "dir": os.path.relpath(result.output_dir, out_dir),
        "steps": result.step,
        "resumed_from_step": result.step - len(result.losses),
    }


# ---- outputs ---------------------------------------------------------------------------------------------------


def save_reconstructions(model: nn.Module, data: DemoData, cfg: DemoConfig, out_dir: str) -> list[str]:
    """reconstructions.png (one test clip per class, stacked) and reconstruction.gif (the first)."""
    masks = cfg.masks
    model.eval()
    grids, first = [], None
    for label in range(min(4, len(CLASS_NAMES))):
        index = int(torch.nonzero(data.test.labels == label)[0])
        result = reconstruct(model, normalize(to_tchw(data.test.frames[index]))[None], masks, cfg.seed)
        grids.append(grid_image(result, title=f"test clip {index}: {CLASS_NAMES[label]} (loss {result.loss:.3f})"))
        first = result if first is None else first
    stacked = np.concatenate([np.asarray(g) for g in grids], axis=0)
    png, gif = os.path.join(out_dir, "reconstructions.png"), os.path.join(out_dir, "reconstruction.gif")
    Image.fromarray(stacked).save(png)
    save_gif(first, gif)
    return [png, gif]


def save_samples(data: DemoData, out_dir: str) -> str:
    """One test clip per class as .mp4 in a folder-per-class tree, to try `videomae predict` on."""
    root = os.path.join(out_dir, SAMPLES)
    for label, name in enumerate(CLASS_NAMES):
        index = int(torch.nonzero(data.test.labels == label)[0])
        folder = os.path.join(root, name.replace(" ", "_"))
        os.makedirs(folder, exist_ok=True)
        encode_video(
            os.path.join(folder, f"test_{index:05d}.mp4"), data.test.frames[index].numpy(), options={"crf": "12"}
        )
    return root


def save_curves(out_dir: str, pretrain_losses: list[float], finetune_losses: dict[str, list[float]]) -> list[str]:
    pretrain_png = os.path.join(out_dir, "pretrain_loss.png")
    finetune_png = os.path.join(out_dir, "finetune_loss.png")
    line_plot(
        {"reconstruction loss": pretrain_losses},
        pretrain_png,
        title="Pretraining (dual masking)",
        xlabel="step",
        ylabel="MSE, normalized pixels",
        smooth=max(1, len(pretrain_losses) // 60),
    )
    smooth = max(1, len(next(iter(finetune_losses.values()))) // 40)
    line_plot(
        finetune_losses,
        finetune_png,
        title="Fine-tuning on the labelled clips",
        xlabel="step",
        ylabel="cross-entropy",
        smooth=smooth,
    )
    return [pretrain_png, finetune_png]


def resumed_text(runs: dict) -> str:
    """Which runs this call continued (an earlier demo with the same settings took their first steps)."""
    resumed = [f"{name} from step {run['resumed_from_step']}" for name, run in runs.items() if run["resumed_from_step"]]
    return f" Continued runs of an earlier call: {', '.join(resumed)}." if resumed else ""


def write_report(path: str, results: dict) -> None:
    """A short Markdown report of one demo run."""
    r = results
    lines = [
        "# VideoMAE V2 demo: pretraining vs. training from scratch",
        "",
        f"Task: {len(CLASS_NAMES)} motion classes of moving handwritten-style digits ({', '.join(CLASS_NAMES)}); "
        f"a single frame does not tell them apart. Chance is {r['chance']:.1f}%.",
        "",
        f"- unlabelled pretraining pool: {r['data']['pool']} clips; labelled training clips: {r['data']['train']} "
        f"({r['data']['train'] // len(CLASS_NAMES)} per class); held-out test clips: {r['data']['test']}",
        f"- model: ViT with embed {r['config']['arch']['embed_dim']}, depth {r['config']['arch']['depth']}, "
        f"{r['config']['arch']['num_frames']}x{r['config']['arch']['img_size']}x{r['config']['arch']['img_size']} "
        f"input, patch {r['config']['arch']['patch_size']}, tubelet {r['config']['arch']['tubelet_size']}",
        f"- pretraining: tube mask {r['config']['mask_ratio']}, {r['config']['decoder_mask_type']} decoder mask "
        f"{r['config']['decoder_mask_ratio']}, {r['config']['pretrain']['epochs']} epochs",
        f"- fine-tuning (both models, same recipe and number of steps): {r['config']['finetune']['epochs']} epochs, "
        f"batch {r['config']['finetune']['batch_size']}, layer decay {r['config']['finetune']['optim']['layer_decay']}",
        f"- training runs (checkpoints, metrics.jsonl, export/): {', '.join(run['dir'] for run in r['runs'].values())}",
        "",
        "| model | test top-1 (%) |",
        "|---|---|",
        f"| pretrained (VideoMAE V2) + fine-tuned | {r['accuracy_pretrained']:.1f} |",
        f"| same model from scratch | {r['accuracy_scratch']:.1f} |",
        "",
        "Accuracy per class (% of its test clips):",
        "",
        "| class | pretrained | from scratch |",
        "|---|---|---|",
        *(
            f"| {name} | {pretrained:.1f} | {scratch:.1f} |"
            for name, pretrained, scratch in zip(r["class_names"], r["per_class_pretrained"], r["per_class_scratch"])
        ),
        "",
        f"Gain from pretraining: {r['gain']:+.1f} points. Wall time {r['seconds']['total']:.0f} s "
        f"(data {r['seconds']['data']:.0f}, pretraining {r['seconds']['pretrain']:.0f}, fine-tuning "
        f"{r['seconds']['finetune_pretrained']:.0f} + {r['seconds']['finetune_scratch']:.0f} s)."
        + resumed_text(r["runs"]),
        "",
        "![pretraining loss](pretrain_loss.png) ![fine-tuning loss](finetune_loss.png)",
        "",
        "Reconstructions of held-out clips (rows: original, encoder input, decoder targets, reconstruction, error):",
        "",
        "![reconstructions](reconstructions.png)",
        "",
        f"Try the models: `videomae predict samples --checkpoint {r['runs'][FINETUNE_PRETRAINED]['dir']}` and "
        f"`videomae visualize samples/move_left/*.mp4 --checkpoint {r['runs'][PRETRAIN]['dir']}`.",
        "",
    ]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def run_demo(cfg: DemoConfig, out_dir: str, log=print) -> dict:
    """Run the whole demo and write its outputs to `out_dir`; returns the results (also in results.json).

    Holds `out_dir/run.lock` meanwhile: a second demo on the folder refuses instead of deleting runs in use."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    os.makedirs(out_dir, exist_ok=True)
    lock = RunLock(out_dir)
    lock.acquire()
    try:
        return train_and_compare(cfg, out_dir, log)
    finally:
        lock.release()


def train_and_compare(cfg: DemoConfig, out_dir: str, log=print) -> dict:
    seconds: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name], clock = now - clock, now

    prepare_folder(cfg, out_dir, log)
    data = build_data(cfg)
    lap("data")
    log(
        f"data: {len(data.pool)} unlabelled clips, {len(data.train)} labelled, {len(data.test)} test "
        f"({seconds['data']:.0f} s)"
    )
    pretrained = pretrain(cfg, data, out_dir)
    losses = {PRETRAIN: logged_losses(pretrained)}
    lap("pretrain")
    log(
        f"pretrained {pretrained.step} steps, loss {losses[PRETRAIN][0]:.3f} -> {losses[PRETRAIN][-1]:.3f} "
        f"({seconds['pretrain']:.0f} s)"
    )
    pictures = save_reconstructions(create_model(pretrained=pretrained.output_dir), data, cfg, out_dir)
    runs = {PRETRAIN: pretrained}
    for name, from_pretrained in ((FINETUNE_PRETRAINED, True), (FINETUNE_SCRATCH, False)):
        runs[name] = finetune(cfg, data, out_dir, from_pretrained)
        losses[name] = logged_losses(runs[name])
        lap(name)
        log(f"{name}: test top-1 {runs[name].test['acc1']:.1f}% ({seconds[name]:.0f} s)")
    curves = save_curves(
        out_dir,
        losses[PRETRAIN],
        {"from pretrained": losses[FINETUNE_PRETRAINED], "from scratch": losses[FINETUNE_SCRATCH]},
    )
    save_samples(data, out_dir)
    seconds["total"] = time.perf_counter() - start
    tested = {"pretrained": runs[FINETUNE_PRETRAINED].test, "scratch": runs[FINETUNE_SCRATCH].test}
    results = {
        "accuracy_pretrained": tested["pretrained"]["acc1"],
        "accuracy_scratch": tested["scratch"]["acc1"],
        "gain": tested["pretrained"]["acc1"] - tested["scratch"]["acc1"],
        "chance": 100.0 / len(CLASS_NAMES),
        "class_names": list(CLASS_NAMES),
        "per_class_pretrained": tested["pretrained"]["per_class_acc1"],
        "per_class_scratch": tested["scratch"]["per_class_acc1"],
        "confusion_pretrained": tested["pretrained"]["confusion"],
        "confusion_scratch": tested["scratch"]["confusion"],
        "final_loss": {name: values[-1] for name, values in losses.items()},
        "runs": {name: run_summary(run, out_dir) for name, run in runs.items()},
        "data": {"pool": len(data.pool), "train": len(data.train), "test": len(data.test)},
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "files": [os.path.relpath(p, out_dir) for p in pictures + curves] + ["report.md"],
        "config": cfg.to_dict(),
    }
    write_report(os.path.join(out_dir, "report.md"), results)
    write_atomically(os.path.join(out_dir, "results.json"), json_text(results, indent=1))  # last: the demo is complete
    return results
