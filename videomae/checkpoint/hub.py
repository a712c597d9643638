"""Checkpoints by name from the Hugging Face Hub: `hf-hub:OWNER/REPO[/PATH/IN/REPO][@REVISION]`.

`hf-hub:OWNER/REPO` is a whole model repository (our layout, the transformers layout or OpenGVLab's custom-code
VideoMAEv2 layout); `hf-hub:OWNER/REPO/PATH/IN/REPO.pth` is one file of a repository (an official `.pth`);
`@REVISION` pins a branch, tag or commit. `fetch` downloads through huggingface_hub, so its cache, progress bars,
`HF_HUB_OFFLINE`, `HF_ENDPOINT` and token apply, and returns the local path; `locate` then applies the usual rule
to it. `upload` publishes an exported directory (`videomae push`). The Hub is reached only here; object storage and
HTTP data only through `videomae.data.remote`.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from videomae.errors import CheckpointError

PREFIX = "hf-hub:"
INSTALL_HINT = 'pip install "videomae[hf]"'
# What a repository download takes, at its top: config, class names, preprocessing and safetensors weights (single
# or sharded); never code, other frameworks' weights or anything in subfolders.
REPO_PATTERNS = [
    "config.json",
    "labels.txt",
    "preprocessing.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
]
SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = "pytorch_model.bin"  # older transformers repositories; fetched only when there is no safetensors


@dataclass(frozen=True)
class HubRef:
    """A parsed `hf-hub:` reference; `filename` is None for a whole repository."""

    repo_id: str
    filename: str | None = None
    revision: str | None = None

    def __str__(self) -> str:
        path = f"/{self.filename}" if self.filename else ""
        return f"{PREFIX}{self.repo_id}{path}" + (f"@{self.revision}" if self.revision else "")


def is_hub_ref(text: str | Path) -> bool:
    return str(text).startswith(PREFIX)


def parse_hub_ref(text: str) -> HubRef:
    """`hf-hub:OWNER/REPO[/PATH][@REVISION]` -> HubRef; the revision follows the last `@`."""
    body = text[len(PREFIX) :]
    body, at, revision = body.rpartition("@") if "@" in body else (body, "", "")
    parts = body.split("/")
    if len(parts) < 2 or not all(parts) or (at and not revision):
        raise CheckpointError(
            f"{text!r} is not a Hugging Face reference; expected hf-hub:OWNER/REPO, "
            f"hf-hub:OWNER/REPO/PATH/IN/REPO or either followed by @REVISION"
        )
    return HubRef("/".join(parts[:2]), "/".join(parts[2:]) or None, revision or None)


@functools.cache  # one download check per process, however many times a command locates it
def fetch(ref: HubRef) -> Path:
    """Download what `ref` names (or find it in the cache) and return its local path.

    A repository becomes its snapshot folder holding config.json, the side files videomae reads and the weights;
    a file becomes its cached path.

    Raises:
        CheckpointError: huggingface_hub is not installed, or the repository, revision or file does not exist, or
            it is not cached while the Hub cannot be reached (one line naming what and what to do).
    """
    hub = _import_huggingface_hub(ref)
    with _hub_errors(ref, hub):
        if ref.filename:
            return Path(hub.hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision))
        return _fetch_repository(ref, hub)


def _fetch_repository(ref: HubRef, hub) -> Path:
    folder = Path(hub.snapshot_download(ref.repo_id, revision=ref.revision, allow_patterns=REPO_PATTERNS))
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{ref} has no config.json at its top, so it is not a model repository videomae reads; "
            f"name one checkpoint file in it instead: hf-hub:{ref.repo_id}/PATH/IN/REPO.pth "
            f"(`videomae models` lists the released ones)"
        )
    if not any((folder / name).is_file() for name in SAFETENSORS_WEIGHTS):
        try:  # the snapshot folder is named by its commit: the weights come from the same version
            hub.hf_hub_download(ref.repo_id, PICKLE_WEIGHTS, revision=folder.name)
        except hub.utils.LocalEntryNotFoundError:
            raise  # not cached while offline: said by _hub_errors
        except hub.utils.EntryNotFoundError:
            raise CheckpointError(
                f"{ref} has a config.json but no weights ({' or '.join(SAFETENSORS_WEIGHTS)} or {PICKLE_WEIGHTS})"
            ) from None
    return folder


def _import_huggingface_hub(ref: HubRef):
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401  (lazily exposed submodules: the cache and offline settings,
        import huggingface_hub.utils  # noqa: F401  and the error classes)
    except ImportError:
        raise CheckpointError(
            f"{ref} is on the Hugging Face Hub, which needs huggingface_hub: {INSTALL_HINT}"
        ) from None
    return huggingface_hub


@contextmanager
def _hub_errors(ref: HubRef, hub):
    """huggingface_hub's errors (multi-line, OSError subclasses) as one-line CheckpointErrors saying what to do."""
    errors = hub.utils
    where = f"revision {ref.revision}" if ref.revision else "its default branch"
    try:
        yield
    except errors.GatedRepoError:
        raise CheckpointError(
            f"{ref}: {ref.repo_id} is gated; accept its terms on the Hub, then log in (`hf auth login`) or set HF_TOKEN"
        ) from None
    except errors.RepositoryNotFoundError:
        raise CheckpointError(
            f"{ref}: no Hugging Face repository {ref.repo_id} (or it is private: log in with "
            f"`hf auth login` or set HF_TOKEN); check the name"
        ) from None
    except errors.RevisionNotFoundError:
        raise CheckpointError(
            f"{ref}: {ref.repo_id} has no revision {ref.revision!r}; give an existing branch, tag or commit"
        ) from None
    except errors.LocalEntryNotFoundError:  # before EntryNotFoundError, its base class
        offline = " (HF_HUB_OFFLINE is set)" if hub.constants.HF_HUB_OFFLINE else ""
        raise CheckpointError(
            f"{ref} is not in the Hugging Face cache ({hub.constants.HF_HUB_CACHE}) and the Hub "
            f"cannot be reached{offline}; download it once while online, or connect"
        ) from None
    except errors.EntryNotFoundError:
        raise CheckpointError(f"{ref}: {ref.repo_id} has no file {ref.filename} at {where}; check the path") from None
    except errors.HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "an error"
        raise CheckpointError(
            f"{ref}: the Hub answered {status} ({str(error).splitlines()[0]}); try again later"
        ) from None


def upload(
    directory: Path, repo_id: str, private: bool = False, revision: str | None = None, message: str | None = None
) -> str:
    """Upload every file of `directory` to the model repository `repo_id` (created if needed) in one commit.

    Returns:
        The commit's URL.

    Raises:
        CheckpointError: huggingface_hub is missing, the user is not logged in or may not write there, or the Hub
            refused (one line).
    """
    ref = HubRef(repo_id, revision=revision)
    hub = _import_huggingface_hub(ref)
    files = sorted(path for path in directory.rglob("*") if path.is_file() and not path.name.startswith("."))
    operations = [hub.CommitOperationAdd(path.relative_to(directory).as_posix(), str(path)) for path in files]
    api = hub.HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.create_commit(
            repo_id,
            operations,
            revision=revision,
            commit_message=message or f"Upload {len(files)} files with videomae push",
        )
    except hub.utils.HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            raise CheckpointError(
                f"cannot write to {repo_id} on the Hub ({status}): log in with a token that may "
                f"write there (`hf auth login`, or HF_TOKEN)"
            ) from None
        raise CheckpointError(
            f"uploading to {repo_id} failed: the Hub answered {status} ({str(error).splitlines()[0]})"
        ) from None
    return commit.commit_url
