"""What loading a checkpoint did, and the one function that loads a cleaned state dict into a model.

Loading is strict by default: a missing, unexpected or mis-shaped key is an error, because a tensor left at
its random init without anyone noticing is the worst failure a checkpoint loader can have. Keys that are
dropped or freshly initialized *by design* (the decoder when a pretraining checkpoint seeds a classifier, a
head for another label set) are not errors, but they are always listed in the report and logged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from videomae.errors import CheckpointError

logger = logging.getLogger("videomae.checkpoint")
MAX_SHAPE_LINES = 8


@dataclass
class LoadReport:
    """The outcome of loading a checkpoint into a model.

    Attributes:
        source: the file or directory read.
        source_format: "official" (.pth / .safetensors state dict), "hf" (transformers), "opengvlab" (custom-code
            VideoMAEv2 repository) or "videomae" (ours).
        missing: model keys the checkpoint did not provide (left at their init).
        unexpected: checkpoint keys the model has no place for.
        mismatched: (key, checkpoint shape, model shape) of keys present on both sides with different shapes.
        dropped: checkpoint keys left out by design, with the reason (decoder of a pretraining checkpoint, ...).
        initialized: model keys freshly initialized by design (fc_norm and head of a classifier seeded from
            a pretraining encoder, a head re-initialized for a new label set).
        head_remap: how the classifier head rows were selected (K710 -> K400/600/700), if they were.
        notes: anything else worth knowing (dtype casts, inferred architecture, ...).
    """

    source: str = ""
    source_format: str = ""
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    initialized: dict[str, str] = field(default_factory=dict)
    head_remap: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every tensor the model has came from the checkpoint or was initialized by design."""
        return not (self.missing or self.unexpected or self.mismatched)

    def problems(self) -> str:
        """One line: what did not fit, with an example of each kind."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing (e.g. {self.missing[0]})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected (e.g. {self.unexpected[0]})")
        if self.mismatched:
            key, got, want = self.mismatched[0]
            parts.append(
                f"{len(self.mismatched)} mis-shaped (e.g. {key} is {list(got)} in the checkpoint, "
                f"{list(want)} in the model)"
            )
        return ", ".join(parts)

    def __str__(self) -> str:
        lines = [f"loaded {self.source} ({self.source_format})" + ("" if self.ok else " with problems")]
        if self.missing:
            lines.append(f"  missing (left at random init): {_compact(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected (not used): {_compact(self.unexpected)}")
        for key, got, want in self.mismatched[:MAX_SHAPE_LINES]:
            lines.append(f"  mis-shaped: {key} is {list(got)} in the checkpoint, {list(want)} in the model")
        if len(self.mismatched) > MAX_SHAPE_LINES:
            lines.append(f"  mis-shaped: ... and {len(self.mismatched) - MAX_SHAPE_LINES} more keys")
        for reason, keys in _by_reason(self.dropped).items():
            lines.append(f"  dropped ({reason}): {_compact(keys)}")
        for reason, keys in _by_reason(self.initialized).items():
            lines.append(f"  freshly initialized ({reason}): {_compact(keys)}")
        if self.head_remap:
            lines.append(f"  head: {self.head_remap}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _by_reason(keys: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, reason in keys.items():
        grouped[reason].append(key)
    return grouped


def _compact(keys: list[str], limit: int = 6) -> str:
    """Key list for humans: a module with many keys becomes `decoder.* (38 keys)`."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        groups[key.split(".")[0]].append(key)
    parts = [
        f"{top}.* ({len(members)} keys)" if len(members) > 2 else ", ".join(members) for top, members in groups.items()
    ]
    text = ", ".join(parts[:limit])
    return text + (f", ... ({len(parts) - limit} more groups)" if len(parts) > limit else "")


def load_into(model: nn.Module, state: dict[str, torch.Tensor], report: LoadReport, strict: bool = True) -> LoadReport:
    """Copy a cleaned state dict (our key names) into `model`, filling in `report`.

    Tensors are cast to the dtype of the model's tensor (official fine-tuned files are fp16). Keys already
    in `report.initialized` are expected to be absent. Mis-shaped tensors are never loaded.

    Args:
        model: the target network.
        state: checkpoint tensors under the model's key names.
        report: the report so far (dropped / initialized keys found while cleaning the checkpoint).
        strict: raise CheckpointError (carrying the report) on any missing, unexpected or mis-shaped key.

    Returns:
        The completed report.
    """
    own = model.state_dict()
    report.missing = [key for key in own if key not in state and key not in report.initialized]
    report.unexpected = [key for key in state if key not in own]
    report.mismatched = [
        (key, tuple(value.shape), tuple(own[key].shape))
        for key, value in state.items()
        if key in own and value.shape != own[key].shape
    ]
    if strict and not report.ok:
        logger.warning("%s", report)
        raise CheckpointError(
            f"{report.source} does not fit the model: {report.problems()} keys; give the model name "
            f"or architecture settings it was trained with, or load non-strictly to keep what fits"
        )
    bad = {key for key, _, _ in report.mismatched}
    casts = {
        f"{value.dtype} -> {own[key].dtype}"
        for key, value in state.items()
        if key in own and value.dtype != own[key].dtype
    }
    if casts:
        report.notes.append("cast " + ", ".join(sorted(casts)))
    fitting = {key: value.to(own[key].dtype) for key, value in state.items() if key in own and key not in bad}
    model.load_state_dict(fitting, strict=False)
    logger.log(logging.INFO if report.ok else logging.WARNING, "%s", report)
    return report
