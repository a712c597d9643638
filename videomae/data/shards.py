"""Tar shards for sets of millions of clips: few large files instead of millions of small ones.

A shard is a plain POSIX (ustar) tar (`shard-000000.tar`, ...) in the WebDataset layout: each sample's members
are named `<key>.<ext>`, the encoded video (`<key>.mp4`) then its class index as text (`<key>.cls`, when
labelled); keys have no dot in their last part, so the `webdataset` library groups the members as we do. Beside
the shards, `index.csv` (header `key,shard,offset,size,label`) gives each video's byte range: a map-style dataset
reads one video with one seek and one read, a streamed one (`videomae.data.stream`) plans its reads from it.
The index is a manifest: point `DataConfig.manifest` at it. `index_shards` writes one for shards made elsewhere.
"""

from __future__ import annotations

import csv
import io
import os
import tarfile
from collections.abc import Iterable, Iterator

from videomae.data import remote
from videomae.data.manifests import SHARD_INDEX_HEADER, VIDEO_EXTENSIONS
from videomae.errors import DataError

INDEX_NAME = "index.csv"


class ShardWriter:
    """Writes videos into numbered tar shards and records their byte ranges in `index.csv`.

    Args:
        out_dir: folder of the shards and the index (created).
        max_per_shard: videos per shard before a new one is started.
    """

    def __init__(self, out_dir: str, max_per_shard: int = 1000):
        os.makedirs(out_dir, exist_ok=True)
        self.out_dir, self.max_per_shard = out_dir, max_per_shard
        self._rows: list[list[object]] = []
        self._tar: tarfile.TarFile | None = None
        self._shard_name, self._count, self._shards = "", 0, 0
        self._keys: set[str] = set()

    def _next_shard(self) -> None:
        self._close_shard()
        self._shard_name = f"shard-{self._shards:06d}.tar"
        # ustar: one 512-byte header per member (no extension headers), names up to 255 bytes
        self._tar = tarfile.open(os.path.join(self.out_dir, self._shard_name), "w", format=tarfile.USTAR_FORMAT)
        self._shards += 1
        self._count = 0

    def _close_shard(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def add(self, key: str, data: bytes, label: int = -1, extension: str = ".mp4") -> None:
        """Append one encoded video (and its label as `<key>.cls`)."""
        if "." in key.rsplit("/", 1)[-1] or key in self._keys:
            raise DataError(
                f"shard key {key!r} is {'repeated' if key in self._keys else 'dotted'}; keys are unique "
                f"and have no '.' in their last part (WebDataset splits names at the first dot)"
            )
        if self._tar is None or self._count >= self.max_per_shard:
            self._next_shard()
        offset = self._add_member(f"{key}{extension}", data)
        if label >= 0:
            self._add_member(f"{key}.cls", str(label).encode())
        self._rows.append([key, self._shard_name, offset, len(data), label])
        self._keys.add(key)
        self._count += 1

    def _add_member(self, name: str, data: bytes) -> int:
        """Append a member; returns the offset of its data (right after its one header block)."""
        info = tarfile.TarInfo(name=name)
        info.size = len(data)
        offset = self._tar.offset + tarfile.BLOCKSIZE
        try:
            self._tar.addfile(info, io.BytesIO(data))
        except ValueError as error:  # a name over 255 bytes
            raise DataError(f"shard member {name!r}: {error}; use shorter keys") from None
        return offset

    def close(self) -> str:
        """Finish the last shard and write the index; returns the index path."""
        self._close_shard()
        index = os.path.join(self.out_dir, INDEX_NAME)
        with open(index, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(SHARD_INDEX_HEADER)
            writer.writerows(self._rows)
        return index


def write_shards(items: Iterable[tuple[str, bytes, int]], out_dir: str, max_per_shard: int = 1000) -> str:
    """Write `(key, encoded video bytes, label)` items to shards; returns the index path."""
    writer = ShardWriter(out_dir, max_per_shard)
    for key, data, label in items:
        writer.add(key, data, label)
    return writer.close()


def shard_key(relative_path: str) -> str:
    """The shard key of a prepared video: its path without the extension, folders joined by `__`, dots as `_`."""
    return os.path.splitext(relative_path)[0].replace(os.sep, "__").replace(".", "_")


def iterate_shard(path: str) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """Stream `(member, bytes)` of one shard (local or remote) front to back, never seeking."""
    with remote.SequentialReader(path, 0, remote.file_size(path)) as reader:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    yield member, tar.extractfile(member).read()


def sample_key(name: str) -> tuple[str, str]:
    """(key, extension) of a member name, as WebDataset splits it: at the first dot of the last part."""
    folder, _, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), extension


def index_shards(shards: list[str], index: str) -> str:
    """Write a shard index for WebDataset-style shards made elsewhere (read once, front to back).

    Each sample's video is its first member with a video extension; its label is the integer in `<key>.cls`
    (text), else -1. Other members are skipped (never unpickled). Shards inside the index's folder are named
    relative to it, others by their full path or URL. Returns the index path.
    """
    remote.refuse_remote_output(index, "the index")
    base = remote.parent(index)
    rows = []
    for shard in shards:
        shard = remote.absolute(shard)
        separator = "/" if remote.is_remote(shard) else os.sep
        name = shard[len(base) + 1 :] if shard.startswith(base + separator) else shard
        found: dict[str, list] = {}
        for member, data in iterate_shard(shard):
            key, extension = sample_key(member.name)
            row = found.setdefault(key, [key, name, -1, 0, -1])
            if extension.lower() == "cls":
                row[4] = _class_index(data, shard, member.name)
            elif row[2] < 0 and ("." + extension.lower()).endswith(VIDEO_EXTENSIONS):
                row[2], row[3] = member.offset_data, member.size
        rows += [row for row in found.values() if row[2] >= 0]
    if not rows:
        raise DataError(f"no videos found in {len(shards)} shards; members are named <key>.mp4 (or another video type)")
    with open(index, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SHARD_INDEX_HEADER)
        writer.writerows(rows)
    return index


def _class_index(data: bytes, shard: str, name: str) -> int:
    try:
        return int(data.decode("utf-8").strip())
    except ValueError:
        raise DataError(f"{shard}: {name} should hold a class index as text, got {data[:20]!r}") from None
