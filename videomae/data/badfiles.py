"""Bad files never stop a run silently: each is logged once, counted, reported, and replaced.

Every DataLoader worker holds its own `BadFileReport`; they share the report file
`report_dir/bad_files.jsonl` (one JSON object per line, appended), so a file found bad by one worker is known
to the others and the stop threshold counts bad files over the whole run.
"""

from __future__ import annotations

import json
import logging
import os

from videomae.errors import DataError
from videomae.seeding import numpy_generator

logger = logging.getLogger("videomae.data")

REPORT_NAME = "bad_files.jsonl"


def read_bad_paths(report_file: str) -> dict[str, str]:
    """path -> reason from a JSON-lines report (our own format; lines that do not parse are skipped)."""
    found: dict[str, str] = {}
    if not os.path.isfile(report_file):
        return found
    with open(report_file, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
                found[str(entry["path"])] = str(entry.get("reason", ""))
            except (ValueError, KeyError, TypeError):
                continue
    return found


class BadFileReport:
    """Counts bad files, logs each once, appends it to the report, and stops past `max_fraction`.

    Args:
        num_samples: size of the dataset (the denominator of the bad fraction).
        max_fraction: stop when more than this fraction of the dataset's files is bad (0 = stop on the first).
        report_dir: folder of `bad_files.jsonl`; None keeps the report in memory only.
    """

    def __init__(self, num_samples: int, max_fraction: float, report_dir: str | None = None):
        self.num_samples, self.max_fraction = num_samples, max_fraction
        self.report_file = os.path.join(report_dir, REPORT_NAME) if report_dir else None
        if report_dir:
            os.makedirs(report_dir, exist_ok=True)
        self.reasons: dict[str, str] = {}
        self.failures = 0  # load attempts that failed, including known-bad files met again

    def is_known_bad(self, path: str) -> bool:
        """Whether `path` already failed in this process."""
        return path in self.reasons

    def record(self, path: str, reason: str, index: int) -> None:
        """Note one failure of `path`; raises `DataError` once too many distinct files are bad."""
        self.failures += 1
        if path not in self.reasons and self.report_file:
            self.reasons.update(read_bad_paths(self.report_file))  # other workers may know it already
        if path not in self.reasons:
            self.reasons[path] = reason
            logger.warning("bad video %s (sample %d): %s; using another sample instead", path, index, reason)
            self._append(path, reason, index)
        limit = self.max_fraction * self.num_samples
        if len(self.reasons) > limit:
            where = f"; see {self.report_file}" if self.report_file else ""
            raise DataError(
                f"{len(self.reasons)} of {self.num_samples} videos are bad, more than "
                f"max_bad_fraction={self.max_fraction}{where}. Last: {path}: {reason}. "
                f"Run `videomae data scan` on the manifest to list them all."
            )

    def _append(self, path: str, reason: str, index: int) -> None:
        if self.report_file:
            with open(self.report_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"path": path, "reason": reason, "index": index}) + "\n")

    def summary(self) -> dict[str, object]:
        """Counts for logs: distinct bad files, failed loads, and the reasons."""
        return {"bad_files": len(self.reasons), "failed_loads": self.failures, "reasons": dict(self.reasons)}


def replacement_index(seed: int, epoch: int, index: int, attempt: int, num_samples: int) -> int:
    """A deterministic other sample for a failed `index` (never `index` itself when there is another)."""
    if num_samples < 2:
        return index
    offset = int(numpy_generator(seed, epoch, index, attempt, 0x0BAD).integers(1, num_samples))
    return (index + offset) % num_samples
