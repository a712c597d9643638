"""Process-level memory policy of a training run: reuse or hand back freed activations, never hoard them.

Two policies (`TrainConfig.cpu_allocator`):
- "cache": large CPU tensors come from `cpu_cache.cpp`, a small caching allocator compiled on first use
  (g++ against the installed torch, cached under ~/.cache/videomae). Freed blocks are reused, so a training
  step stops faulting its activations in afresh, and the cache never maps more than the most memory ever
  in use, so peak RSS stays at the live peak.
- "glibc": no native code. Large allocations are served by mmap and returned to the OS when freed
  (`limit_heap_slack`), which keeps the peak low but faults every page in again each step.
"auto" is the cache for CPU training when it builds (Linux with a C++ compiler), else glibc.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from videomae.errors import ConfigError

logger = logging.getLogger("videomae.training")

CPU_ALLOCATORS = ("auto", "cache", "glibc")
CACHE_SOURCE = Path(__file__).with_name("cpu_cache.cpp")
CACHE_MIN_BYTES = 1 << 20  # smaller tensors stay with PyTorch's default allocator (glibc's heap)

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


# --------------------------------------------------------------------------------------------------
# The caching allocator for large CPU tensors
# --------------------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "videomae"


def build_cpu_cache() -> Path:
    """Compile cpu_cache.cpp against the installed torch, once per source, torch build and compiler.

    Returns the shared library's path; raises RuntimeError saying why it cannot be built.
    """
    import torch

    if not sys.platform.startswith("linux"):
        raise RuntimeError("the CPU tensor cache is Linux-only")
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise RuntimeError("no C++ compiler found (install g++, or set CXX)")
    torch_dir = Path(torch.__file__).parent
    abi = int(torch.compiled_with_cxx11_abi())
    source = CACHE_SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, torch.__version__.encode(), str(abi).encode(),
                                      compiler.encode()])).hexdigest()[:16]
    target = _cache_dir() / f"cpu_cache-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")  # concurrent ranks each build, the rename is atomic
    cmd = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
           f"-I{torch_dir / 'include'}", str(CACHE_SOURCE), "-o", str(partial),
           f"-L{torch_dir / 'lib'}", "-lc10", f"-Wl,-rpath,{torch_dir / 'lib'}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as err:  # CXX names no runnable compiler
        raise RuntimeError(f"cannot run the C++ compiler {compiler!r}: {err}") from err
    if done.returncode:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"compiling {CACHE_SOURCE} failed: {done.stderr.strip()[-500:]}")
    os.replace(partial, target)
    return target


_cache_lib: ctypes.CDLL | None = None


def install_cpu_cache() -> None:
    """Serve CPU tensors of 1 MiB or more from the cache from now on (process-wide; tensors that exist keep
    their allocator)."""
    global _cache_lib
    lib = ctypes.CDLL(str(build_cpu_cache()))
    lib.videomae_cpu_cache_install(ctypes.c_uint64(CACHE_MIN_BYTES))
    _cache_lib = lib
    logger.debug("CPU tensors of %d MiB or more come from the cache", CACHE_MIN_BYTES >> 20)


def cpu_cache_stats() -> dict | None:
    """Bytes cached (free), in use and most ever in use, and blocks mapped so far; None without the cache."""
    if _cache_lib is None:
        return None
    out = (ctypes.c_uint64 * 4)()
    _cache_lib.videomae_cpu_cache_stats(out)
    return dict(zip(("cached_bytes", "used_bytes", "high_water_bytes", "maps"), out))


def apply_memory_policy(allocator: str = "auto", mmap_threshold_mb: int | None = None,
                        device_type: str = "cpu") -> str:
    """Set the process's CPU memory policy (module docstring); returns the one in force, "cache" or "glibc".

    device_type: where the model trains. "auto" uses the cache only for CPU training: a GPU run's large CPU
    tensors are mostly its initial weights, which the cache would keep mapped after they move to the GPU.
    Once installed, the cache stays for the life of the process (tensors it serves must return to it).
    """
    if allocator not in CPU_ALLOCATORS:
        raise ConfigError(f"cpu_allocator must be one of {list(CPU_ALLOCATORS)}, got {allocator!r}")
    if _cache_lib is not None:
        if allocator == "glibc":
            logger.warning("cpu_allocator=glibc: the CPU tensor cache is already installed in this process")
        return "cache"
    if allocator == "cache" or (allocator == "auto" and device_type == "cpu"):
        try:
            install_cpu_cache()
            return "cache"
        except (RuntimeError, OSError) as err:
            if allocator == "cache":
                raise ConfigError(f"cpu_allocator='cache' is unavailable: {err}; "
                                  "set cpu_allocator=glibc to train without it") from err
            logger.info("CPU tensor cache unavailable (%s); using glibc's allocator", err)
    limit_heap_slack(mmap_threshold_mb)
    return "glibc"
