"""The model card (README.md) of an exported Hugging Face directory: metadata, architecture, training and usage.

Written from what the export knows: the model's config, its class names, its training preprocessing and, for an
export of a training run, the run's resolved config. Nothing is invented: what is unknown is left out.
"""

from __future__ import annotations

from videomae.checkpoint.preprocessing import Preprocessing
from videomae.models.config import ModelConfig

MAX_LISTED_LABELS = 10
# Training settings worth a line in the card: run-config path -> label.
TRAINING_FIELDS = {
    ("stage",): "stage",
    ("model",): "model",
    ("pretrained",): "initial weights",
    ("data", "manifest"): "training data",
    ("epochs",): "epochs",
    ("batch_size",): "batch size per process",
    ("accum_steps",): "gradient accumulation",
    ("optim", "lr"): "base learning rate",
    ("optim", "weight_decay"): "weight decay",
    ("optim", "layer_decay"): "layer-wise lr decay",
    ("distill", "teacher"): "distillation teacher",
}


def model_card(
    config: ModelConfig, labels: list[str] | None, preprocessing: Preprocessing | None, training: dict | None
) -> str:
    """README.md text with YAML metadata, for `save_hf`.

    Args:
        config: the exported model's architecture.
        labels: class names (classifiers).
        preprocessing: how its inputs were prepared in training, if recorded.
        training: the training run's resolved config (config.json of the run), if the export comes from one.
    """
    classifier = config.kind == "classifier" and config.num_classes > 0
    sections = [
        _front_matter(classifier),
        f"# VideoMAE V2 {_kind(config)}\n",
        "Exported by videomae (VideoMAE V2 in PyTorch) in the transformers VideoMAE layout: "
        "`transformers` loads it without custom code.\n",
        "## Model\n",
        _architecture(config, labels),
    ]
    if training:
        sections += ["## Training\n", _training(training)]
    if preprocessing:
        sections += ["## Preprocessing (as trained)\n", _preprocessing(preprocessing)]
    sections += ["## Usage\n", _usage(classifier, preprocessing)]
    return "\n".join(sections)


def _front_matter(classifier: bool) -> str:
    lines = ["---", "library_name: transformers", "tags:", "- video-classification", "- videomae", "- videomae-v2"]
    if classifier:
        lines.append("pipeline_tag: video-classification")
    return "\n".join(lines + ["---", ""])


def _kind(config: ModelConfig) -> str:
    if config.kind == "pretrain":
        return "pretraining model (encoder and decoder)"
    return f"video classifier ({config.num_classes} classes)" if config.num_classes else "video encoder"


def _architecture(config: ModelConfig, labels: list[str] | None) -> str:
    height, width = config.image_hw
    rows = [
        (
            "architecture",
            f"ViT, embed_dim {config.embed_dim}, depth {config.depth}, {config.num_heads} heads, "
            f"patch {config.patch_size}, tubelet {config.tubelet_size}",
        ),
        ("input", f"{config.num_frames} frames of {height}x{width} RGB"),
    ]
    if config.kind == "pretrain":
        rows.append(("decoder", f"width {config.decoder_embed_dim}, depth {config.decoder_depth}"))
    if labels:
        shown = ", ".join(labels[:MAX_LISTED_LABELS]) + (", ..." if len(labels) > MAX_LISTED_LABELS else "")
        rows.append(("classes", f"{len(labels)}: {shown}"))
    return _table(rows)


def _training(training: dict) -> str:
    rows = []
    for path, label in TRAINING_FIELDS.items():
        value = training
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, "", {}):
            rows.append((label, str(value)))
    return _table(rows)


def _preprocessing(p: Preprocessing) -> str:
    sampling = (
        f"{p.num_frames} segments, one frame each"
        if p.sparse
        else f"{p.num_frames} frames, frame interval {p.sampling_rate}"
    )
    return _table(
        [
            ("clip", sampling),
            ("resize", f"short side {p.short_side_size}"),
            ("crop", f"{p.input_size}x{p.input_size}"),
            ("normalization", f"mean {list(p.mean)}, std {list(p.std)}"),
            ("test views", f"{p.test_num_segment} clips x {p.test_num_crop} crops, softmax averaged"),
        ]
    )


def _usage(classifier: bool, preprocessing: Preprocessing | None) -> str:
    if not classifier:
        return '```python\nfrom transformers import AutoModel\n\nmodel = AutoModel.from_pretrained("OWNER/REPO")\n```\n'
    rate = f", frame_sampling_rate={preprocessing.sampling_rate}" if preprocessing and not preprocessing.sparse else ""
    return (
        "```python\nfrom transformers import pipeline\n\n"
        'classify = pipeline("video-classification", model="OWNER/REPO")\n'
        f'classify("video.mp4"{rate})\n```\n\n'
        "With the test views it was evaluated with (videomae):\n\n"
        '```python\nimport videomae\n\npredictor = videomae.Predictor("hf-hub:OWNER/REPO")\n'
        'predictor("video.mp4")\n```\n'
    )


def _table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| | |", "|---|---|"] + [f"| {name} | {value} |" for name, value in rows]) + "\n"
