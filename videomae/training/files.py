"""Writing into a run directory: JSON that stays valid, disk faults in one line, names that do not clash."""

from __future__ import annotations

import contextlib
import json
import math
import os

from videomae.errors import VideoMAEError


class OutputDirError(VideoMAEError):
    """The output directory cannot be used: another run holds it, it holds earlier work, or it cannot be written."""


def json_safe(value):
    """`value` with every non-finite float replaced by None: JSON has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def json_text(value, **kwargs) -> str:
    """Strict JSON (non-finite floats as null; `NaN` tokens would make the file unreadable to most parsers)."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


def one_line(error: BaseException) -> str:
    """An error's message on one line (torch and safetensors messages span several)."""
    return " ".join(str(error).split())


@contextlib.contextmanager
def writing(path: str, errors: tuple[type[BaseException], ...] = (OSError,)):
    """Turn a failed write under `path` (read-only or full disk) into one line naming the file."""
    try:
        yield
    except errors as error:
        if isinstance(error, OSError) and error.strerror:
            raise OutputDirError(f"cannot write {error.filename or path}: {error.strerror}") from error
        # torch.save says "unexpected pos 576 vs 534" when the disk fills up
        raise OutputDirError(f"cannot write {path} (is its disk read-only or full?): {one_line(error)}") from error


def unused_path(path: str) -> str:
    """`path`, else `path-2`, `path-3`, ...: the first name not taken (a rename never replaces anything)."""
    candidate, number = path, 1
    while os.path.lexists(candidate):
        number += 1
        candidate = f"{path}-{number}"
    return candidate
