"""How a model's inputs were prepared in training, carried by its export so inference repeats it.

`preprocessing.json` beside an exported model holds the clip geometry (frames, sampling rate or segments,
crop and short side), pixel statistics, the test views and the pretraining masks. `predict`, `visualize`,
`extract` and `eval` default to it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from videomae.constants import IMAGENET_MEAN, IMAGENET_STD
from videomae.errors import CheckpointError

FILE = "preprocessing.json"


@dataclass(frozen=True)
class Preprocessing:
    """Attributes mirror the `DataConfig` fields of the same name.

    Attributes:
        num_frames: frames per clip.
        sampling_rate: frames between sampled frames (dense sampling).
        sparse: one frame per equal segment instead of a dense clip (SSv2-style).
        input_size: side of the square crop the model sees.
        short_side_size: short side after resizing, before the test crops.
        mean: per-channel pixel mean the clips were normalized with (pixels in [0, 1]).
        std: per-channel pixel standard deviation.
        test_num_segment: temporal test views per video.
        test_num_crop: spatial test views per temporal view.
        mask_type: encoder mask of pretraining.
        mask_ratio: encoder mask ratio of pretraining.
        decoder_mask_type: decoder mask of pretraining.
        decoder_mask_ratio: decoder mask ratio of pretraining (0 = all hidden tokens reconstructed).
    """

    num_frames: int = 16
    sampling_rate: int = 4
    sparse: bool = False
    input_size: int = 224
    short_side_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    test_num_segment: int = 5
    test_num_crop: int = 3
    mask_type: str = "tube"
    mask_ratio: float = 0.9
    decoder_mask_type: str = "running_cell"
    decoder_mask_ratio: float = 0.5

    @classmethod
    def from_fields(cls, fields: dict) -> Preprocessing:
        """From a dict holding at least these fields (a DataConfig's, or preprocessing.json); others are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {
            key: tuple(value) if key in ("mean", "std") else value for key, value in fields.items() if key in known
        }
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def write_preprocessing(preprocessing: Preprocessing, directory: str | Path) -> None:
    (Path(directory) / FILE).write_text(json.dumps(preprocessing.to_dict(), indent=2) + "\n", encoding="utf-8")


def read_preprocessing_file(path: Path) -> Preprocessing:
    try:
        return Preprocessing.from_fields(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{path} is not a valid preprocessing record ({error}); delete it to use the command's defaults"
        ) from None
