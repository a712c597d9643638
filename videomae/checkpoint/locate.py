"""One rule for what "a checkpoint" is, shared by `create_model(pretrained=...)`, recipes and every command.

A checkpoint argument may be:
- a file: an official `.pth`/`.pt`/`.bin`, or a `.safetensors` state dict;
- a directory in our format (`config.json` with `"format": "videomae"`, written by `videomae convert` or a run's
  export), a Hugging Face VideoMAE directory (`"model_type": "videomae"`), or one of OpenGVLab's custom-code
  VideoMAEv2 directories (`"model_type": "VideoMAEv2_Base"` with a `model_config`; read without running its code);
- a training run directory (`output_dir` of `videomae pretrain/finetune/...`): its `export/` (the final model),
  else `checkpoints/best` (best validation), else the newest `checkpoints/step_*`, saying which;
- one training checkpoint `checkpoints/step_*` (weights plus `meta.json` with the architecture);
- a DeepSpeed checkpoint directory (`latest` file or `mp_rank_00_model_states.pt`);
- `hf-hub:OWNER/REPO[/PATH/IN/REPO][@REVISION]`: downloaded (or found in the Hugging Face cache), then any of the
  above (`videomae.checkpoint.hub`);
- a URL (`s3://`, `gs://`, `http(s)://`) of a file or a folder (an export): downloaded once per version into
  `~/.cache/videomae/remote` (`videomae.data.remote.download`), then any of the above;
- a zoo name (`vit_g_hybrid_pt_1200e_k710_ft`, `VideoMAEv2-Base`, ...): its `hf-hub:` source
  (`videomae.checkpoint.zoo`). A local path of the same name wins.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from videomae.checkpoint.hub import fetch, is_hub_ref, parse_hub_ref
from videomae.checkpoint.preprocessing import FILE as PREPROCESSING_FILE
from videomae.checkpoint.preprocessing import Preprocessing, read_preprocessing_file
from videomae.checkpoint.zoo import missing_checkpoint_hint, zoo_entry
from videomae.data import remote
from videomae.errors import CheckpointError, DataError

LABELS_FILE = "labels.txt"  # class names beside an exported classifier, one per line
OPENGVLAB_MODEL_TYPE = "VideoMAEv2"  # OpenGVLab/VideoMAEv2-*: model_type "VideoMAEv2_Base" for every size
STEP_DIR = re.compile(r"^step_\d{8}$")


@dataclass(frozen=True)
class Location:
    """Where the weights named by a checkpoint argument are.

    Attributes:
        path: the file or directory to read.
        kind: "file", "videomae", "hf", "opengvlab", "step" (a training checkpoint) or "deepspeed".
        run_dir: the training run it belongs to, when it does.
        note: how a run directory or a zoo name was resolved (said to the user), or None.
        trained: the test preprocessing a zoo entry is known for, when its files carry none.
    """

    path: Path
    kind: str
    run_dir: Path | None = None
    note: str | None = None
    trained: Preprocessing | None = None


def read_json(path: Path) -> dict:
    """A JSON object from a checkpoint directory; a malformed file is a one-line CheckpointError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); restore or delete the file") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} should hold a JSON object, found {type(data).__name__}")
    return data


def is_opengvlab_config(config: dict) -> bool:
    """config.json of an OpenGVLab custom-code VideoMAEv2 repository."""
    return str(config.get("model_type", "")).startswith(OPENGVLAB_MODEL_TYPE) and isinstance(
        config.get("model_config"), dict
    )


def is_run_config(config: dict) -> bool:
    """A training run's resolved TrainConfig (its config.json)."""
    return "stage" in config and "data" in config and "optim" in config


def enclosing_run(path: Path) -> Path | None:
    """The training run holding `path` (`RUN/export`, `RUN/checkpoints/best`, `RUN/checkpoints/step_*`), if any."""
    for candidate in (path.parent, path.parent.parent):
        try:
            if is_run_config(json.loads((candidate / "config.json").read_text(encoding="utf-8"))):
                return candidate
        except (OSError, ValueError, UnicodeDecodeError, TypeError):
            continue  # not a run directory
    return None


def step_checkpoints(run_dir: Path) -> list[Path]:
    """Complete `checkpoints/step_*` directories of a run, oldest first."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    return [p for p in sorted(root.iterdir()) if STEP_DIR.match(p.name) and (p / "meta.json").is_file()]


def _locate_in_run(run_dir: Path) -> Location:
    export, best = run_dir / "export", run_dir / "checkpoints" / "best"
    if (export / "config.json").is_file():
        return Location(export, "videomae", run_dir, f"training run {run_dir}: using export/ (the final model)")
    if (best / "config.json").is_file():
        return Location(
            best,
            "videomae",
            run_dir,
            f"training run {run_dir}: using checkpoints/best (best validation; the run has no export yet)",
        )
    steps = step_checkpoints(run_dir)
    if steps:
        return Location(
            steps[-1],
            "step",
            run_dir,
            f"training run {run_dir}: using checkpoints/{steps[-1].name} (the newest training "
            f"checkpoint; the run has no export yet)",
        )
    raise CheckpointError(
        f"training run {run_dir} has no export/ and no checkpoint yet; let it train until it "
        f"saves one, or point at another checkpoint"
    )


def locate(path: str | Path) -> Location:
    """Resolve a checkpoint argument (module docstring) to the weights to read."""
    if is_hub_ref(path):
        return locate(fetch(parse_hub_ref(str(path))))
    if remote.is_remote(path):
        try:
            local = remote.download(str(path))
        except DataError as error:  # a missing package, a missing file, a store that cannot be reached
            raise CheckpointError(f"checkpoint {error}") from None
        found = locate(local)
        return dataclasses.replace(found, note="; ".join(filter(None, [f"{path}: downloaded to {local}", found.note])))
    path = Path(path)
    if not path.exists():
        entry = zoo_entry(str(path))
        if entry is None:
            raise CheckpointError(f"checkpoint {path} does not exist{missing_checkpoint_hint(path)}")
        return dataclasses.replace(
            locate(entry.source), note=f"{entry.name}: {entry.source}", trained=entry.preprocessing
        )
    if path.is_file():
        return Location(path, "file")
    if (path / "config.json").is_file():
        config = read_json(path / "config.json")
        if config.get("format") == "videomae":
            return Location(path, "videomae", enclosing_run(path))
        if config.get("model_type") == "videomae":
            return Location(path, "hf")
        if is_opengvlab_config(config):
            return Location(path, "opengvlab")
        if is_run_config(config):
            return _locate_in_run(path)
        raise CheckpointError(
            f"{path / 'config.json'} is neither a videomae config (format: videomae), a Hugging Face "
            f"VideoMAE config (model_type: videomae), an OpenGVLab VideoMAEv2 config nor a "
            f"training run's config; model_type={config.get('model_type')!r}"
        )
    if (path / "meta.json").is_file() and (path / "model.safetensors").is_file():
        return Location(path, "step", enclosing_run(path))
    if (path / "export").is_dir() or (path / "checkpoints").is_dir():
        return _locate_in_run(path)
    return Location(path, "deepspeed")


def _sidecar_dirs(location: Location) -> list[Path]:
    """Where files that travel with the weights may be: beside them, then in their training run."""
    own = location.path if location.path.is_dir() else location.path.parent
    return [own] + ([location.run_dir] if location.run_dir is not None else [])


def read_labels(location: Location) -> list[str] | None:
    """Class names from `labels.txt` beside the weights or in their run directory, else from a Hugging Face
    directory's id2label (unless it holds only the LABEL_i placeholders), if any."""
    for folder in _sidecar_dirs(location):
        if (folder / LABELS_FILE).is_file():
            lines = (folder / LABELS_FILE).read_text(encoding="utf-8").splitlines()
            return [line.strip() for line in lines if line.strip()]
    if location.kind == "hf":
        from videomae.checkpoint.hf import labels_from_hf  # torch-free callers of locate stay torch-free

        return labels_from_hf(read_json(location.path / "config.json"))
    return None


def read_preprocessing(location: Location) -> tuple[Preprocessing, Path] | None:
    """The training preprocessing of a checkpoint and the file it came from, if recorded.

    `preprocessing.json` beside the weights wins; otherwise a training run's config.json (`data` section);
    otherwise what the zoo knows of the checkpoint's test protocol (then the file is the weights).
    """
    for folder in _sidecar_dirs(location):
        if (folder / PREPROCESSING_FILE).is_file():
            return read_preprocessing_file(folder / PREPROCESSING_FILE), folder / PREPROCESSING_FILE
    if location.run_dir is not None and (location.run_dir / "config.json").is_file():
        config = read_json(location.run_dir / "config.json")
        if is_run_config(config) and isinstance(config["data"], dict):
            return Preprocessing.from_fields(config["data"]), location.run_dir / "config.json"
    if location.trained is not None:
        return location.trained, location.path
    return None
