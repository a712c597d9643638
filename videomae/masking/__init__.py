"""Encoder and decoder token masks (tube, random, frame, running cell, none)."""

from videomae.masking.generators import (
    MASK_GENERATORS,
    RUNNING_CELL_RATIOS,
    Grid,
    MaskSpec,
    MaskType,
    frame_mask,
    kept_indices,
    make_mask,
    mask_indices,
    no_mask,
    random_mask,
    running_cell_mask,
    token_grid,
    tube_mask,
)

__all__ = [
    "MASK_GENERATORS",
    "MaskSpec",
    "MaskType",
    "RUNNING_CELL_RATIOS",
    "Grid",
    "frame_mask",
    "kept_indices",
    "make_mask",
    "mask_indices",
    "no_mask",
    "random_mask",
    "running_cell_mask",
    "token_grid",
    "tube_mask",
]
