"""Process-level memory policy of a training run: hand freed activations back to the OS."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger("videomae.training")

_M_MMAP_THRESHOLD = -3  # glibc mallopt() parameter number
# PyTorch puts tensors of 2 MiB or more on huge pages: from the same size on, every mapped tensor is on them
AUTO_THRESHOLD_MB = 2


def thp_tensors() -> bool:
    """Whether PyTorch places CPU tensors of 2 MB or more on transparent huge pages (THP_MEM_ALLOC_ENABLE,
    which `import videomae` sets when it comes before `import torch`)."""
    value = os.environ.get("THP_MEM_ALLOC_ENABLE", "0").strip()
    return value.isdigit() and int(value) != 0


def resolve_threshold(threshold_mb: int | None) -> int:
    """The mmap threshold to use: as given, or for None (auto) 2 MiB when tensors are on huge pages, else 0."""
    if threshold_mb is not None:
        return threshold_mb
    return AUTO_THRESHOLD_MB if thp_tensors() else 0


def limit_heap_slack(threshold_mb: int | None) -> bool:
    """Serve CPU allocations of at least `threshold_mb` MiB with mmap, so freed tensors go back to the OS.

    glibc raises its mmap threshold on the fly (up to 32 MiB) after the first large free; activations of a
    few MiB then come from the heap, which fragments and holds peak RSS well above the memory actually live.
    With a fixed threshold every large allocation faults its pages in afresh instead. Measured on the ViT-B
    pretraining step (2-core CPU, tensors on huge pages, 18 steps): glibc's default 2.70 GB; 2 MiB (every
    mapped tensor on huge pages) 2.51 GB for +8% step time; 1 MiB 2.39 GB for +17% (tensors just under
    2 MiB then fault 4 KiB pages). None = auto (2 MiB with huge pages, else the C library's default);
    0 = the C library's default. Returns whether a threshold was set (False off glibc).
    """
    threshold_mb = resolve_threshold(threshold_mb)
    if threshold_mb <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_mb << 20))
    if applied:
        logger.debug("allocations >= %d MiB are served by mmap (tensors on huge pages: %s)", threshold_mb,
                     thp_tensors())
    return applied
