"""`videomae demo`: does VideoMAE V2 pretraining help? Measured end to end on a laptop-sized problem.

1. Build moving-digit videos (`videomae.demo.digits`): a large unlabelled pool, a small labelled
   training set (a few clips per class) and a held-out test set. Classes are motions, so a single frame
   is not enough.
2. Pretrain a tiny VideoMAE V2 on the pool with dual masking (tube encoder mask, running-cell decoder mask).
3. Fine-tune it on the labelled clips; train the same architecture from scratch with the same budget.
4. Evaluate both on the test set and write results.json, report.md, loss curves and reconstruction pictures.

Clips live in memory (decoding thousands of files every epoch would dominate a CPU run); the steps use the
training engine's parts: optimizer groups with layer decay, per-step schedules, the pretraining and
classification losses, the loader and the multi-view evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import Dataset

from videomae.apps.plots import line_plot
from videomae.apps.visualize import grid_image, reconstruct, save_gif
from videomae.checkpoint import save_pretrained
from videomae.data import DataConfig, build_loader
from videomae.data.synthetic import encode_video
from videomae.data.transforms import normalize, to_tchw
from videomae.demo.digits import CLASS_NAMES, DigitClips, DigitsConfig, glyph_bank, make_digit_clips
from videomae.factory import create_model
from videomae.masking import MaskSpec, mask_indices
from videomae.seeding import numpy_generator, torch_generator
from videomae.training.config import OptimConfig
from videomae.training.distributed import Dist
from videomae.training.evaluation import evaluate
from videomae.training.optim import build_optimizer, build_schedules
from videomae.training.stages import Targets, classification_objective, reconstruction_objective

POOL_STREAM, TRAIN_STREAM, TEST_STREAM = 2, 0, 1  # independent clip sets from one seed


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
        decoder_mask_ratio: running-cell decoder mask ratio.
        pretrain: pretraining stage.
        finetune: fine-tuning stage (the same for the pretrained and the scratch model).
        scratch_layer_decay: layer decay of the scratch run. Layer decay protects pretrained lower layers; a
            randomly initialized model has none to protect, so the baseline trains every layer at the full LR.
            All other fine-tuning settings and the number of steps are the same for both runs.
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
    train_per_class: int = 15
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
    decoder_mask_ratio: float = 0.5
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
            epochs=60,
            batch_size=24,
            optim=OptimConfig(
                lr=1e-3, min_lr=1e-6, warmup_epochs=6, weight_decay=0.05, layer_decay=0.75, lr_rule="none"
            ),
        )
    )
    scratch_layer_decay: float = 1.0
    drop_path_rate: float = 0.1
    label_smoothing: float = 0.1
    max_shift: int = 4
    threads: int = 1

    @property
    def masks(self) -> MaskSpec:
        """Tube encoder mask and running-cell decoder mask at the demo's ratios."""
        return MaskSpec("tube", self.mask_ratio, "running_cell", self.decoder_mask_ratio)

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
    With `mask_grid` set (pretraining), items carry {"video", "encoder_mask": (1, N), "decoder_mask": (1, N)}.

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
        self.num_classes, self.class_names = len(CLASS_NAMES), list(CLASS_NAMES)
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


# ---- training --------------------------------------------------------------------------------------------------


def train_stage(
    model: nn.Module, dataset: ClipDataset, loss_fn, stage: StageConfig, seed: int, name: str, log=print
) -> list[float]:
    """Train `model` on `dataset` for the stage's epochs with the engine's optimizer and schedules.

    Logs about ten progress lines through `log`.

    Returns:
        The loss of every step.
    """
    loader = build_loader(dataset, stage.batch_size, shuffle=True, seed=seed, num_workers=0, drop_last=True)
    steps_per_epoch = len(loader)
    total = stage.epochs * steps_per_epoch
    optimizer = build_optimizer(model, stage.optim)
    schedules = build_schedules(stage.optim, stage.optim.lr, stage.optim.min_lr, total, steps_per_epoch)
    model.train()
    losses, step = [], 0
    for epoch in range(stage.epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            schedules.apply(optimizer, step)
            torch.manual_seed(seed + step)  # drop-path draws, reproducible per step
            loss = loss_fn(model, batch, torch_generator(seed, step))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
        if (epoch + 1) % max(1, stage.epochs // 10) == 0 or epoch + 1 == stage.epochs:
            recent = losses[-steps_per_epoch:]
            log(f"  {name} epoch {epoch + 1}/{stage.epochs}: loss {sum(recent) / len(recent):.4f}")
    return losses


def pretrain(cfg: DemoConfig, data: DemoData, log=print) -> tuple[nn.Module, list[float]]:
    """Dual-masking pretraining on the unlabelled pool."""
    torch.manual_seed(cfg.seed)
    model = create_model("pretrain_videomae_small_patch16_224", **cfg.arch)
    grid = model.encoder.token_grid(
        torch.zeros(1, 3, cfg.arch["num_frames"], cfg.arch["img_size"], cfg.arch["img_size"])
    )
    dataset = ClipDataset(data.pool, cfg.seed, masks=(grid, cfg.masks))
    loss_fn = reconstruction_objective(cfg.arch["tubelet_size"], cfg.arch["patch_size"], normalize=True)
    return model, train_stage(model, dataset, loss_fn, cfg.pretrain, cfg.seed, "pretrain", log)


def finetune(cfg: DemoConfig, data: DemoData, pretrained: str | None, log=print) -> tuple[nn.Module, list[float]]:
    """Fine-tune from a pretraining checkpoint (encoder weights), or from scratch when `pretrained` is None."""
    torch.manual_seed(cfg.seed + 1)  # the same head init and drop-path draws for both runs
    head = dict(kind="classifier", num_classes=len(CLASS_NAMES), drop_path_rate=cfg.drop_path_rate)
    if pretrained:
        model = create_model(pretrained=pretrained, **head)
    else:
        model = create_model("vit_small_patch16_224", **{**cfg.arch, **head})
    targets = Targets(len(CLASS_NAMES), DataConfig(mixup=0.0, cutmix=0.0, label_smoothing=cfg.label_smoothing))
    dataset = ClipDataset(data.train, cfg.seed, max_shift=cfg.max_shift)
    stage, name = cfg.finetune, "fine-tune (pretrained)"
    if not pretrained:
        stage = dataclasses.replace(stage, optim=dataclasses.replace(stage.optim, layer_decay=cfg.scratch_layer_decay))
        name = "train from scratch"
    return model, train_stage(model, dataset, classification_objective(targets), stage, cfg.seed + 1, name, log)


def test_accuracy(model: nn.Module, data: DemoData, cfg: DemoConfig) -> dict:
    """Top-1 (%), per-class accuracy and confusion on the held-out clips (the engine's evaluation)."""
    single_process = Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    return evaluate(model, ClipDataset(data.test, cfg.seed), single_process, batch_size=100)


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
    root = os.path.join(out_dir, "samples")
    for label, name in enumerate(CLASS_NAMES):
        index = int(torch.nonzero(data.test.labels == label)[0])
        folder = os.path.join(root, name.replace(" ", "_"))
        os.makedirs(folder, exist_ok=True)
        encode_video(
            os.path.join(folder, f"test_{index:05d}.mp4"), data.test.frames[index].numpy(), options={"crf": "12"}
        )
    return root


def save_classifier(model: nn.Module, path: str) -> None:
    """Our checkpoint format plus labels.txt, so `videomae predict --checkpoint path` prints class names."""
    save_pretrained(model, path)
    with open(os.path.join(path, "labels.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(CLASS_NAMES) + "\n")


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
        f"- pretraining: tube mask {r['config']['mask_ratio']}, running-cell decoder mask "
        f"{r['config']['decoder_mask_ratio']}, {r['config']['pretrain']['epochs']} epochs",
        f"- fine-tuning (both models, same recipe and number of steps): {r['config']['finetune']['epochs']} epochs; "
        f"layer decay {r['config']['finetune']['optim']['layer_decay']} for the pretrained model, "
        f"{r['config']['scratch_layer_decay']} from scratch",
        "",
        "| model | test top-1 (%) |",
        "|---|---|",
        f"| pretrained (VideoMAE V2) + fine-tuned | {r['accuracy_pretrained']:.1f} |",
        f"| same model from scratch | {r['accuracy_scratch']:.1f} |",
        "",
        f"Gain from pretraining: {r['gain']:+.1f} points. Wall time {r['seconds']['total']:.0f} s "
        f"(data {r['seconds']['data']:.0f}, pretraining {r['seconds']['pretrain']:.0f}, fine-tuning "
        f"{r['seconds']['finetune_pretrained']:.0f} + {r['seconds']['finetune_scratch']:.0f} s).",
        "",
        "![pretraining loss](pretrain_loss.png) ![fine-tuning loss](finetune_loss.png)",
        "",
        "Reconstructions of held-out clips (rows: original, encoder input, decoder targets, reconstruction, error):",
        "",
        "![reconstructions](reconstructions.png)",
        "",
        "Try the models: `videomae predict samples --checkpoint finetuned_pretrained --clips 1 --crops 1 "
        "--sampling-rate 1` and "
        "`videomae visualize samples/move_left/*.mp4 --checkpoint pretrained --sampling-rate 1 "
        f"--mask-ratio {r['config']['mask_ratio']}`.",
        "",
    ]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def run_demo(cfg: DemoConfig, out_dir: str, log=print) -> dict:
    """Run the whole demo and write its outputs to `out_dir`; returns the results (also in results.json)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    os.makedirs(out_dir, exist_ok=True)
    seconds: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name], clock = now - clock, now

    data = build_data(cfg)
    lap("data")
    log(
        f"data: {len(data.pool)} unlabelled clips, {len(data.train)} labelled, {len(data.test)} test "
        f"({seconds['data']:.0f} s)"
    )
    pretrained, pretrain_losses = pretrain(cfg, data, log)
    pretrained_dir = os.path.join(out_dir, "pretrained")
    save_pretrained(pretrained, pretrained_dir)
    lap("pretrain")
    log(
        f"pretrained {len(pretrain_losses)} steps, loss {pretrain_losses[0]:.3f} -> {pretrain_losses[-1]:.3f} "
        f"({seconds['pretrain']:.0f} s)"
    )
    pictures = save_reconstructions(pretrained, data, cfg, out_dir)
    runs = {}
    for name, source in (("pretrained", pretrained_dir), ("scratch", None)):
        model, losses = finetune(cfg, data, source, log)
        metrics = test_accuracy(model, data, cfg)
        save_classifier(model, os.path.join(out_dir, f"finetuned_{name}"))
        runs[name] = {"losses": losses, "metrics": metrics}
        lap(f"finetune_{name}")
        log(f"fine-tuned {name}: test top-1 {metrics['acc1']:.1f}% ({seconds[f'finetune_{name}']:.0f} s)")
    curves = save_curves(
        out_dir,
        pretrain_losses,
        {"from pretrained": runs["pretrained"]["losses"], "from scratch": runs["scratch"]["losses"]},
    )
    save_samples(data, out_dir)
    seconds["total"] = time.perf_counter() - start
    results = {
        "accuracy_pretrained": runs["pretrained"]["metrics"]["acc1"],
        "accuracy_scratch": runs["scratch"]["metrics"]["acc1"],
        "gain": runs["pretrained"]["metrics"]["acc1"] - runs["scratch"]["metrics"]["acc1"],
        "chance": 100.0 / len(CLASS_NAMES),
        "class_names": list(CLASS_NAMES),
        "per_class_pretrained": runs["pretrained"]["metrics"]["per_class_acc1"],
        "per_class_scratch": runs["scratch"]["metrics"]["per_class_acc1"],
        "confusion_pretrained": runs["pretrained"]["metrics"]["confusion"],
        "confusion_scratch": runs["scratch"]["metrics"]["confusion"],
        "final_loss": {
            "pretrain": pretrain_losses[-1],
            "finetune_pretrained": runs["pretrained"]["losses"][-1],
            "finetune_scratch": runs["scratch"]["losses"][-1],
        },
        "data": {"pool": len(data.pool), "train": len(data.train), "test": len(data.test)},
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "files": [os.path.relpath(p, out_dir) for p in pictures + curves] + ["report.md"],
        "config": cfg.to_dict(),
    }
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    write_report(os.path.join(out_dir, "report.md"), results)
    return results
