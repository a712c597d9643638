"""Deterministic randomness: every random draw is a function of (seed, epoch, sample index, view).

A run's results then do not depend on how many DataLoader workers or processes share the work:
sample 17 of epoch 3 gets the same crop and the same masks wherever it is loaded.
"""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed mixed from `seed` and any number of integer keys (epoch, index, view, ...)."""
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF] + [int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def torch_generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator seeded from (seed, *keys)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, *keys))
    return generator


def numpy_generator(seed: int, *keys: int) -> np.random.Generator:
    """A numpy Generator seeded from (seed, *keys)."""
    return np.random.default_rng(derive_seed(seed, *keys))
