"""What a run shows: a progress bar on stderr, `metrics.jsonl` (one line per optimizer step), TensorBoard."""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time

import torch

from videomae.training.files import json_text, writing


def memory_text(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}GiB"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f}GiB"  # peak RSS (Linux: KiB)


def duration_text(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """One status line: `step/total [bar] loss lr clips/s ETA mem`, redrawn in place on a terminal,
    printed every `every` steps otherwise (log files)."""

    def __init__(self, total: int, start: int, every: int, enabled: bool, stream=None):
        self.total, self.start, self.every, self.enabled = total, start, every, enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()

    def update(self, step: int, loss: float | None, lr: float, clips_per_s: float, device: torch.device) -> None:
        done = step - self.start
        if not self.enabled or (not self.tty and done % self.every and step != self.total):
            return
        eta = (time.perf_counter() - self.t0) / max(done, 1) * (self.total - step)
        filled = int(20 * step / max(self.total, 1))
        loss_text = "skipped" if loss is None else f"{loss:.4f}"
        line = (
            f"{step}/{self.total} [{'#' * filled}{'.' * (20 - filled)}] loss {loss_text} lr {lr:.3e} "
            f"{clips_per_s:.1f} clips/s ETA {duration_text(eta)} mem {memory_text(device)}"
        )
        self.stream.write(f"\r{line}\033[K" if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN/inf: a skipped step logs null."""
    return value if math.isfinite(value) else None


def append_json_line(path: str, record: dict) -> None:
    with writing(path), open(path, "a", encoding="utf-8") as handle:
        handle.write(json_text(record) + "\n")


class MetricsLog:
    """Appends JSON lines; on resume, first drops the lines past the checkpoint's step (they will be redone)."""

    def __init__(self, path: str, resume_step: int, enabled: bool, tensorboard_dir: str | None):
        self.path, self.enabled = path, enabled
        self.tb = None
        if not enabled:
            return
        with writing(path):
            self._truncate(resume_step)
            self.handle = open(path, "a", encoding="utf-8")
        if tensorboard_dir:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                return
            self.tb = SummaryWriter(tensorboard_dir, purge_step=resume_step + 1)

    def _truncate(self, step: int) -> None:
        if not os.path.exists(self.path):
            return
        kept = []
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill
                    continue
                if record["step"] <= step:
                    kept.append(line if line.endswith("\n") else line + "\n")
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(kept)
        os.replace(tmp, self.path)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with writing(self.path):
            self.handle.write(json_text(record) + "\n")
            self.handle.flush()
        if self.tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tb.add_scalar(f"train/{key}", value, record["step"])

    def close(self) -> None:
        if self.enabled:
            self.handle.close()
            if self.tb is not None:
                self.tb.close()
