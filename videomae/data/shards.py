"""Tar shards for sets of millions of clips: few large files instead of millions of small ones.

A shard is a plain POSIX tar (`shard-000000.tar`, ...) holding the encoded videos as members named
`<key>.<ext>`. Beside the shards, `index.csv` (header `key,shard,offset,size,label`) gives each video's byte
range, so a map-style dataset reads one video with one seek and one read, and keeps exact per-sample
randomness and resume. The index is a manifest: point `DataConfig.manifest` at it.
"""

from __future__ import annotations

import csv
import io
import os
import tarfile
from collections.abc import Iterable

from videomae.data.manifests import SHARD_INDEX_HEADER

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

    def _next_shard(self) -> None:
        self._close_shard()
        self._shard_name = f"shard-{self._shards:06d}.tar"
        self._tar = tarfile.open(os.path.join(self.out_dir, self._shard_name), "w")
        self._shards += 1
        self._count = 0

    def _close_shard(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def add(self, key: str, data: bytes, label: int = -1, extension: str = ".mp4") -> None:
        """Append one encoded video."""
        if self._tar is None or self._count >= self.max_per_shard:
            self._next_shard()
        info = tarfile.TarInfo(name=f"{key}{extension}")
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))
        # The data follows the member's 512-byte header; tarfile tracks where the next header goes.
        offset = self._tar.offset - tarfile.BLOCKSIZE * ((len(data) + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE)
        self._rows.append([key, self._shard_name, offset, len(data), label])
        self._count += 1

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


def iterate_shard(path: str) -> Iterable[tuple[str, bytes]]:
    """Stream `(member name, bytes)` from one shard in order, for sequential consumers."""
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read()
