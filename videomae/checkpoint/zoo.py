"""The released VideoMAE V2 and VideoMAE (V1, transformers) checkpoints, by name.

A zoo name (`vit_g_hybrid_pt_1200e_k710_ft`, `VideoMAEv2-Base`, `videomae-base-finetuned-kinetics`, ...) works
wherever a checkpoint is accepted: `locate` turns it into its `hf-hub:` source, downloaded on first use. The name
is the file's stem in OpenGVLab/VideoMAE2, the repository's name otherwise; `mae-b/l/h` hold one file each, named
here as the official scripts name those start points. docs/checkpoints.md says which facts were confirmed where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from videomae.checkpoint.preprocessing import Preprocessing
from videomae.models.config import ModelConfig, get_config

OPENGVLAB_FILES = "hf-hub:OpenGVLab/VideoMAE2"
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")  # OWNER/REPO, as transformers users write Hub repositories


@dataclass(frozen=True)
class ZooEntry:
    """One released checkpoint.

    Attributes:
        name: the zoo name.
        model: our model name of its architecture.
        stage: "pretrain" (encoder and decoder), "encoder" (pretrained encoder, no decoder), "finetune" or "distill".
        classes: classifier outputs (0: none).
        dataset: what it was trained on.
        size: download size.
        source: where it is (`hf-hub:` reference).
        settings: architecture settings the model name does not imply, as (field, value) pairs.
    """

    name: str
    model: str
    stage: str
    classes: int
    dataset: str
    size: str
    source: str
    settings: tuple[tuple[str, object], ...] = ()

    @property
    def preprocessing(self) -> Preprocessing | None:
        """How a classifier was tested, which its files do not record: 16 frames at 224, every 4th frame, 5 clips x
        3 crops; SSv2 one frame per 16 segments, 2 clips x 3 crops (MODEL_ZOO.md, reference §6.2)."""
        if not self.classes:
            return None
        return Preprocessing(sparse=True, test_num_segment=2) if self.dataset == "SSv2" else Preprocessing()

    def model_config(self) -> ModelConfig:
        """The architecture of the checkpoint's weights."""
        overrides = dict(self.settings)
        if get_config(self.model).kind == "classifier":
            overrides["num_classes"] = self.classes
        return get_config(self.model, **overrides)


def _v2_file(
    name: str, folder: str, model: str, stage: str, classes: int, dataset: str, size: str, file: str | None = None
) -> ZooEntry:
    return ZooEntry(name, model, stage, classes, dataset, size, f"{OPENGVLAB_FILES}/{folder}/{file or name + '.pth'}")


def _v2_repo(size_name: str, model: str, size: str) -> ZooEntry:
    name = f"VideoMAEv2-{size_name}"
    return ZooEntry(name, model, "encoder", 0, "UnlabeledHybrid", size, f"hf-hub:OpenGVLab/{name}")


def _v1_repo(
    name: str,
    model: str,
    stage: str,
    classes: int,
    dataset: str,
    size: str,
    settings: tuple[tuple[str, object], ...] = (),
) -> ZooEntry:
    return ZooEntry(name, model, stage, classes, dataset, size, f"hf-hub:MCG-NJU/{name}", settings)


ZOO: tuple[ZooEntry, ...] = (
    # OpenGVLab/VideoMAE2: the official VideoMAE V2 files (.pth state dicts; fine-tuned giants and students are fp16)
    _v2_file(
        "vit_g_hybrid_pt_1200e",
        "mae-g",
        "pretrain_videomae_giant_patch14_224",
        "pretrain",
        0,
        "UnlabeledHybrid",
        "4.11 GB",
    ),
    _v2_file("vit_g_hybrid_pt_1200e_k710_ft", "mae-g", "vit_giant_patch14_224", "finetune", 710, "K710", "2.03 GB"),
    _v2_file("vit_g_hybrid_pt_1200e_ssv2_ft", "mae-g", "vit_giant_patch14_224", "finetune", 174, "SSv2", "2.02 GB"),
    _v2_file("vit_s_k710_dl_from_giant", "distill", "vit_small_patch16_224", "distill", 710, "K710", "44.3 MB"),
    _v2_file("vit_b_k710_dl_from_giant", "distill", "vit_base_patch16_224", "distill", 710, "K710", "174 MB"),
    _v2_file(
        "vit_b_hybrid_pt_800e",
        "mae-b",
        "vit_base_patch16_224",
        "encoder",
        0,
        "UnlabeledHybrid",
        "0.69 GB",
        "pytorch_model.bin",
    ),
    _v2_file(
        "vit_l_hybrid_pt_1200e",
        "mae-l",
        "vit_large_patch16_224",
        "encoder",
        0,
        "UnlabeledHybrid",
        "2.43 GB",
        "pytorch_model.bin",
    ),
    _v2_file(
        "vit_h_hybrid_pt_1200e",
        "mae-h",
        "vit_huge_patch16_224",
        "encoder",
        0,
        "UnlabeledHybrid",
        "5.05 GB",
        "pytorch_model.bin",
    ),
    # OpenGVLab/VideoMAEv2-*: encoders in the custom-code layout (config.json + model.safetensors), read without it
    _v2_repo("Base", "vit_base_patch16_224", "345 MB"),
    _v2_repo("Large", "vit_large_patch16_224", "1.22 GB"),
    _v2_repo("Huge", "vit_huge_patch16_224", "2.53 GB"),
    _v2_repo("giant", "vit_giant_patch14_224", "4.05 GB"),
    # MCG-NJU/videomae-*: VideoMAE (V1) in the transformers layout
    _v1_repo("videomae-small-finetuned-kinetics", "vit_small_patch16_224", "finetune", 400, "K400", "88 MB"),
    _v1_repo("videomae-small-finetuned-ssv2", "vit_small_patch16_224", "finetune", 174, "SSv2", "88 MB"),
    _v1_repo("videomae-base", "pretrain_videomae_base_patch16_224", "pretrain", 0, "K400", "377 MB"),
    _v1_repo("videomae-base-short", "pretrain_videomae_base_patch16_224", "pretrain", 0, "K400", "377 MB"),
    _v1_repo("videomae-base-ssv2", "pretrain_videomae_base_patch16_224", "pretrain", 0, "SSv2", "377 MB"),
    _v1_repo("videomae-base-short-ssv2", "pretrain_videomae_base_patch16_224", "pretrain", 0, "SSv2", "377 MB"),
    _v1_repo("videomae-base-finetuned-kinetics", "vit_base_patch16_224", "finetune", 400, "K400", "346 MB"),
    _v1_repo("videomae-base-short-finetuned-kinetics", "vit_base_patch16_224", "finetune", 400, "K400", "346 MB"),
    _v1_repo("videomae-base-finetuned-ssv2", "vit_base_patch16_224", "finetune", 174, "SSv2", "345 MB"),
    _v1_repo("videomae-base-short-finetuned-ssv2", "vit_base_patch16_224", "finetune", 174, "SSv2", "345 MB"),
    _v1_repo(
        "videomae-large",
        "pretrain_videomae_large_patch16_224",
        "pretrain",
        0,
        "K400",
        "1.37 GB",
        (("decoder_depth", 12),),
    ),  # VideoMAE V1 ViT-L pretraining has a 12-block decoder
    _v1_repo("videomae-large-finetuned-kinetics", "vit_large_patch16_224", "finetune", 400, "K400", "1.22 GB"),
    _v1_repo("videomae-huge-finetuned-kinetics", "vit_huge_patch16_224", "finetune", 400, "K400", "2.53 GB"),
)
_BY_NAME = {entry.name: entry for entry in ZOO}

# Start points the official scripts name that OpenGVLab did not publish, and what to do instead.
UNRELEASED = {
    "vit_b_k710_post_pretrained": "the K710 fine-tuned ViT-B the paper's students start from was not released; "
    "fine-tune one first (recipe vit_b_k710_ft) and point at that run",
    "vit_s_k710_post_pretrained": "the K710 fine-tuned ViT-S the paper's students start from was not released; "
    "start from the released student vit_s_k710_dl_from_giant instead",
}


def list_pretrained() -> list[ZooEntry]:
    """Every released checkpoint videomae knows by name (see docs/checkpoints.md)."""
    return list(ZOO)


def zoo_entry(name: str) -> ZooEntry | None:
    return _BY_NAME.get(name)


def missing_checkpoint_hint(path: Path) -> str:
    """What to say about a checkpoint path that does not exist: the zoo name it looks like, if any."""
    stem = path.name.removesuffix(path.suffix) if path.suffix in (".pth", ".pt", ".bin") else path.name
    if stem in _BY_NAME:
        return f"; it is the released checkpoint {stem!r}: use that name, which downloads {_BY_NAME[stem].source}"
    if stem in UNRELEASED:
        return f"; {UNRELEASED[stem]}"
    if REPO_ID.fullmatch(path.as_posix()):
        return f"; for the Hugging Face repository, write hf-hub:{path.as_posix()}"
    return "; give a file, a directory, a zoo name (`videomae models`) or hf-hub:OWNER/REPO"
