"""Data and weights where large runs keep them: `s3://`, `gs://` and `http(s)://` paths, read through fsspec.

Every function here takes a local path or a URL; local paths go straight to the OS, URLs to the fsspec filesystem
of their scheme (`s3fs`, `gcsfs`, fsspec's HTTP filesystem over `aiohttp`: optional extras `videomae[s3]`,
`videomae[gcs]`, `videomae[http]`). Credentials and endpoints come from each filesystem's usual settings
(environment variables such as `AWS_ACCESS_KEY_ID` and `AWS_ENDPOINT_URL`, config files, fsspec's
`FSSPEC_<PROTOCOL>_<OPTION>` variables).

A remote read has a time limit (no data for `VIDEOMAE_REMOTE_TIMEOUT_S` seconds fails it) and is retried with
exponential backoff on transient errors (connection resets, timeouts, server errors) up to
`VIDEOMAE_REMOTE_RETRIES` times; then it raises `RemoteError`, which the datasets report as a bad sample. A
missing file or a refused permission fails at once. Outputs (checkpoints, metrics, reports) are never written
here: they go to a local or mounted folder.
"""

from __future__ import annotations

import collections
import concurrent.futures
import gc
import hashlib
import importlib.util
import json
import logging
import os
import posixpath
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from videomae.errors import ConfigError, DataError

logger = logging.getLogger("videomae.data")

T = TypeVar("T")
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# scheme -> (extra, the package that implements it)
EXTRAS = {
    "s3": ("s3", "s3fs"),
    "s3a": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "http": ("http", "aiohttp"),
    "https": ("http", "aiohttp"),
}
PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
RETRY_STATUS = (408, 429)  # HTTP statuses worth retrying besides 5xx
BLOCK_SIZE = 8 * 2**20  # bytes per ranged request of a sequential read
BLOCKS_AHEAD = 2  # ranged requests in flight ahead of the reader


class RemoteError(DataError):
    """A remote read that failed for good: `reason` says why, `path` names the URL."""

    def __init__(self, reason: str, path: str):
        super().__init__(f"{path}: {reason}")
        self.reason, self.path = reason, path

    def __reduce__(self):  # pickling (worker processes) keeps both parts
        return type(self), (self.reason, self.path)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a remote read tries: `attempts` in all, `backoff_s` doubled after each failure, and each attempt
    failing after `timeout_s` seconds without data (read from `VIDEOMAE_REMOTE_RETRIES`, `_BACKOFF_S`,
    `_TIMEOUT_S`)."""

    attempts: int = 4
    backoff_s: float = 0.5
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        env = os.environ
        return cls(
            attempts=1 + int(env.get("VIDEOMAE_REMOTE_RETRIES", cls.attempts - 1)),
            backoff_s=float(env.get("VIDEOMAE_REMOTE_BACKOFF_S", cls.backoff_s)),
            timeout_s=float(env.get("VIDEOMAE_REMOTE_TIMEOUT_S", cls.timeout_s)),
        )


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` is a URL (`s3://`, `gs://`, `http(s)://`, any fsspec scheme) rather than a local path."""
    match = URL.match(str(path))
    return bool(match) and match.group(1).lower() != "file"


def refuse_remote_output(path: str, setting: str = "output_dir") -> None:
    """Outputs are written with local file operations (atomic renames, locks, appends): not to object storage."""
    if is_remote(path):
        raise ConfigError(
            f"{setting}={path} is remote; checkpoints, metrics and reports are written to a local or mounted "
            f"folder (copy them to object storage afterwards)"
        )


def _scheme(url: str) -> str:
    return URL.match(url).group(1).lower()


def _missing_extra(url: str) -> DataError:
    extra, package = EXTRAS.get(_scheme(url), (None, None))
    if extra is None:
        return DataError(f"reading {url} needs fsspec and a filesystem package for {_scheme(url)}://")
    return DataError(f"reading {url} needs fsspec and {package}: pip install 'videomae[{extra}]'")


def _default_options(protocol: str, timeout_s: float) -> dict:
    """Time limits per request, unless the user configured the filesystem's own (fsspec config wins)."""
    import fsspec.config

    configured = fsspec.config.conf.get(protocol, {})
    if protocol in ("http", "https") and "client_kwargs" not in configured:
        import aiohttp

        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(sock_connect=timeout_s, sock_read=timeout_s)}}
    if protocol in ("s3", "s3a") and "config_kwargs" not in configured:
        return {"config_kwargs": {"connect_timeout": timeout_s, "read_timeout": timeout_s}}
    if protocol in ("gs", "gcs") and "requests_timeout" not in configured:
        return {"requests_timeout": timeout_s}
    return {}


# Filesystems this process made, and what a forked child (a DataLoader worker) inherits of them: kept alive there,
# never collected, as they belong to the parent's event loop. Collecting them in the child (also garbage the parent
# had not collected yet) would close the parent's connections, unregistering its sockets from the epoll set both
# share, and crashes the child. So the parent's objects are frozen out of the child's garbage collection
# (`gc.freeze` at the fork) and the filesystems fsspec drops in the child are held here; fsspec itself starts a new
# loop in the child, and workers end with os._exit, which runs no finalizer.
_made: dict[int, object] = {}
_inherited: list[object] = []


def _keep_inherited_filesystems() -> None:
    _inherited.extend(_made.values())  # with them their event loop and sessions
    _made.clear()


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL; fsspec keeps one filesystem per process and settings."""
    scheme = _scheme(url)
    package = EXTRAS.get(scheme, (None, None))[1]
    if importlib.util.find_spec("fsspec") is None or (package and importlib.util.find_spec(package) is None):
        raise _missing_extra(url)
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(url, **_default_options(scheme, RetryPolicy.from_env().timeout_s))
    except ImportError:
        raise _missing_extra(url) from None
    if not _made and not _inherited:  # the first filesystem of this process tree
        os.register_at_fork(before=gc.freeze, after_in_parent=gc.unfreeze, after_in_child=_keep_inherited_filesystems)
    _made.setdefault(id(fs), fs)
    return fs, path


def is_transient(error: BaseException) -> bool:
    """Worth another try: time-outs, dropped connections and server errors; not a missing file or a refusal."""
    if isinstance(error, PERMANENT):
        return False
    status = getattr(error, "status", None)  # aiohttp's ClientResponseError
    if isinstance(status, int):
        return status >= 500 or status in RETRY_STATUS
    library = type(error).__module__.split(".")[0]
    return isinstance(error, (OSError, TimeoutError, EOFError)) or library in ("aiohttp", "botocore", "aiobotocore")


def _describe(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "missing file"
    if isinstance(error, PermissionError):
        return f"permission denied ({error})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def retried(action: Callable[[], T], url: str, policy: RetryPolicy | None = None) -> T:
    """`action()`, retried with exponential backoff on transient errors; `RemoteError` when it gives up."""
    policy = policy or RetryPolicy.from_env()
    for attempt in range(policy.attempts):
        try:
            return action()
        except (RemoteError, ConfigError):
            raise
        except Exception as error:  # the filesystems raise their own kinds; `is_transient` sorts them
            if not is_transient(error):
                raise RemoteError(_describe(error), url) from error
            if attempt == policy.attempts - 1:
                raise RemoteError(f"{_describe(error)} (gave up after {policy.attempts} attempts)", url) from error
            delay = policy.backoff_s * 2**attempt
            logger.warning("reading %s failed (%s); retrying in %.1f s", url, _describe(error), delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------------
# Paths: local paths through os, URLs through fsspec
# ------------------------------------------------------------------------------------------------


def join(base: str, relative: str) -> str:
    """`relative` inside `base` (a folder or URL); URLs and absolute paths are kept as they are."""
    if is_remote(relative) or os.path.isabs(relative):
        return relative
    if not is_remote(base):
        return os.path.join(base, relative)
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{posixpath.normpath(posixpath.join(rest, relative))}"


def parent(path: str) -> str:
    """The folder holding `path` (absolute for local paths)."""
    if is_remote(path):
        return posixpath.dirname(path.rstrip("/"))
    return os.path.dirname(os.path.abspath(path))


def absolute(path: str) -> str:
    return path if is_remote(path) else os.path.abspath(path)


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) if is_remote(path) else os.path.basename(path)


def isfile(path: str) -> bool:
    if not is_remote(path):
        return os.path.isfile(path)
    fs, inner = filesystem(path)
    return retried(lambda: fs.isfile(inner), path)


def isdir(path: str) -> bool:
    if not is_remote(path):
        return os.path.isdir(path)
    fs, inner = filesystem(path)
    return retried(lambda: fs.isdir(inner), path)


def listdir(path: str) -> list[tuple[str, bool]]:
    """Sorted (name, is a folder) entries of a folder."""
    if not is_remote(path):
        return sorted((entry.name, entry.is_dir()) for entry in os.scandir(path))
    fs, inner = filesystem(path)
    entries = retried(lambda: fs.ls(inner, detail=True), path)
    found = {posixpath.basename(e["name"].rstrip("/")): e["type"] == "directory" for e in entries}
    return sorted((name, is_dir) for name, is_dir in found.items() if name)


def file_size(path: str) -> int:
    if not is_remote(path):
        return os.path.getsize(path)
    fs, inner = filesystem(path)
    return int(retried(lambda: fs.size(inner), path))


def read_bytes(path: str, offset: int = 0, size: int | None = None) -> bytes:
    """`size` bytes of a file from `offset` (all of it by default): one ranged request for a URL.

    Raises:
        FileNotFoundError, OSError: a local file that cannot be read.
        RemoteError: a URL that cannot be read (after the retries), or a server that ignores byte ranges.
    """
    if not is_remote(path):
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read() if size is None else handle.read(size)
    fs, inner = filesystem(path)
    end = None if size is None else offset + size
    data = retried(lambda: fs.cat_file(inner, start=offset or None, end=end), path)
    if size is not None and len(data) > size:
        raise RemoteError(f"the server ignored the byte range {offset}-{end - 1}; serve range requests", path)
    return data


class SequentialReader:
    """Bytes [start, end) of a file read front to back, never seeking: `read(n)` as a file. For a URL, blocks of
    `block_size` bytes are fetched by ranged requests, `ahead` of them in flight while the consumer works; each
    block is retried on its own, so a dropped connection costs one block, not the shard."""

    def __init__(self, path: str, start: int, end: int, block_size: int = BLOCK_SIZE, ahead: int = BLOCKS_AHEAD):
        self.path, self.position, self.end = path, start, end
        self._next_block, self._block_size = start, block_size
        self._buffer = memoryview(b"")
        self._local = None if is_remote(path) else open(path, "rb")
        if self._local is not None:
            self._local.seek(start)
            return
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="videomae-read")
        self._pending: collections.deque = collections.deque()
        for _ in range(ahead):
            self._request_block()

    def _request_block(self) -> None:
        if self._next_block < self.end:
            size = min(self._block_size, self.end - self._next_block)
            self._pending.append(self._pool.submit(read_bytes, self.path, self._next_block, size))
            self._next_block += size

    def read(self, size: int = -1) -> bytes:
        size = self.end - self.position if size is None or size < 0 else min(size, self.end - self.position)
        if size <= 0:
            return b""
        if self._local is not None:
            data = self._local.read(size)
        else:
            data = self._read_blocks(size)
        self.position += len(data)
        return data

    def _read_blocks(self, size: int) -> bytes:
        parts = []
        while size > 0 and (self._buffer or self._pending):
            if not self._buffer:
                self._buffer = memoryview(self._pending.popleft().result())
                self._request_block()
            part, self._buffer = self._buffer[:size], self._buffer[size:]
            parts.append(bytes(part))
            size -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            return
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=False)

    def __enter__(self) -> SequentialReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------
# Weights: a local copy, cached
# ------------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """Where remote weights are kept: `$VIDEOMAE_CACHE/remote`, default `~/.cache/videomae/remote`."""
    base = os.environ.get("VIDEOMAE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "videomae"
    )
    return Path(base) / "remote"


def download(url: str) -> Path:
    """A local copy of a remote file or folder (weights, an export), downloaded once per version.

    The copy is kept under `cache_root()` by the URL and what the store says of the version (size, ETag or
    modification time), so a changed remote file is downloaded again; it appears under its name only when
    complete.
    """
    fs, inner = filesystem(url)
    info = retried(lambda: fs.info(inner), url)
    files = _remote_files(fs, inner, url) if info.get("type") == "directory" else {"": info}
    stamp = json.dumps({name: _version(entry) for name, entry in sorted(files.items())}, sort_keys=True, default=str)
    folder = cache_root() / hashlib.sha256(f"{url}\n{stamp}".encode()).hexdigest()[:24]
    target = folder / (basename(url) or "download")
    if target.exists():
        return target
    partial = folder / f".partial-{os.getpid()}"
    for name, entry in files.items():
        local = partial / name if name else partial
        local.parent.mkdir(parents=True, exist_ok=True)
        logger.info("downloading %s", join(url, name) if name else url)
        retried(lambda entry=entry, local=local: fs.get_file(entry["name"], str(local)), url)
    try:
        os.replace(partial, target)
    except OSError:  # a folder another process completed first
        if not target.exists():
            raise
        shutil.rmtree(partial)
    return target


def _remote_files(fs, inner: str, url: str) -> dict[str, dict]:
    """Files under a remote folder by relative name."""
    found = retried(lambda: fs.find(inner, detail=True), url)
    root = inner.rstrip("/") + "/"
    return {name[len(root) :]: entry for name, entry in found.items() if name.startswith(root)}


def _version(info: dict) -> list:
    return [info.get(key) for key in ("size", "ETag", "etag", "LastModified", "mtime", "md5Hash") if info.get(key)]
