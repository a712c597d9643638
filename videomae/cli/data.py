"""`videomae data scan`, `videomae data prepare` and `videomae data index`."""

from __future__ import annotations

import argparse
import json
import os
import sys

from videomae.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `data scan`, `data prepare` and `data index`."""
    data = subparsers.add_parser("data", help="check and prepare video datasets")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    commands.required = True

    scan = commands.add_parser("scan", help="decode every file of a manifest and report the bad ones")
    scan.add_argument("manifest", help="list file, CSV, shard index, or folder-per-class tree (a path or a URL)")
    scan.add_argument("--report", help="write one JSON line per bad file here")
    scan.add_argument(
        "--root",
        default="",
        help="folder that relative manifest paths are joined to (default: the manifest's own folder)",
    )
    scan.add_argument(
        "--stage",
        choices=("pretrain", "finetune"),
        help="how 3-column official rows are read (default: guessed from the first row)",
    )
    scan.add_argument("--backend", default="pyav", help="pyav, decord, torchcodec or auto")
    scan.add_argument("--frame-template", default="img_{:05}.jpg", help="file names inside frame folders")
    scan.add_argument("--start-index", type=int, default=1, help="number of the first frame file")
    scan.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    scan.set_defaults(func=run_scan)

    prepare = commands.add_parser("prepare", help="re-encode a folder of videos to a small short side")
    prepare.add_argument("src", help="folder of videos (class folders give labels)")
    prepare.add_argument(
        "dst", help="output folder (outside SRC): .mp4 names kept, others get .mp4 appended; plus manifest.csv"
    )
    prepare.add_argument("--short-side", type=int, default=320, help="short side in pixels (never enlarged)")
    prepare.add_argument("--crf", type=int, default=23, help="H.264 quality (lower = better, larger)")
    prepare.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    prepare.add_argument(
        "--shards",
        type=int,
        default=0,
        metavar="N",
        help="also pack the videos into tar shards of N videos under DST/shards/",
    )
    prepare.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="also split into DST/train.csv and DST/val.csv, F of each class to val (0 < F < 1)",
    )
    prepare.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    prepare.set_defaults(func=run_prepare)

    index = commands.add_parser("index", help="write the shard index of WebDataset-style tar shards made elsewhere")
    index.add_argument("shards", nargs="+", help="tar shards (paths or URLs: s3://, gs://, http(s)://)")
    index.add_argument(
        "--out", required=True, help="the index to write (a local file); shards beside it are named relatively"
    )
    index.set_defaults(func=run_index)


def run_scan(args: argparse.Namespace) -> int:
    """Exit 0 when every file decodes, 1 when some do not."""
    # imported here: the data stack (torchvision, PyAV) takes seconds to load, and `--help` needs none of it
    from videomae.data.build import split_manifest
    from videomae.data.decoders import resolve_backend
    from videomae.data.manifests import guess_stage, read_manifest, with_source
    from videomae.data.scan import scan_samples

    if args.workers < 1:
        raise DataError("--workers must be at least 1")
    backend = resolve_backend(args.backend)
    manifest_path = split_manifest(args.manifest, "train")
    stage = args.stage or guess_stage(manifest_path)
    samples = with_source(
        read_manifest(manifest_path, args.root, stage).samples, 1, args.frame_template, args.start_index
    )
    bad = scan_samples(samples, args.report, backend, args.workers)
    print(
        json.dumps(
            {
                "scanned": len(samples),
                "good": len(samples) - len(bad),
                "bad": len(bad),
                "backend": backend,
                "report": args.report,
            }
        )
    )
    for entry in bad:
        print(f"bad: {entry['path']}: {entry['reason']}")
    return 1 if bad else 0


def run_prepare(args: argparse.Namespace) -> int:
    """Exit 0 when every video was re-encoded, 1 when some failed (listed in DST/prepare_failures.jsonl)."""
    from videomae.data.prepare import PREPARE_FAILURES, prepare_videos

    if not os.path.isdir(args.src):
        raise DataError(f"source folder {args.src} does not exist")
    if args.short_side < 2 or args.workers < 1:
        raise DataError("--short-side must be at least 2 and --workers at least 1")
    result = prepare_videos(
        args.src, args.dst, args.short_side, args.workers, args.crf, args.shards, args.val_fraction, args.seed
    )
    for failure in result.failures:
        print(f"failed: {failure['path']}: {failure['reason']}", file=sys.stderr)
    if result.val == 0:
        print("val.csv is empty: no class has enough videos for this --val-fraction", file=sys.stderr)
    print(
        json.dumps(
            {
                "manifest": result.manifest,
                "videos": result.listed,
                "encoded": result.encoded,
                "skipped": result.skipped,
                "failed": len(result.failures),
                "failures": os.path.join(args.dst, PREPARE_FAILURES),
                "train": result.train,
                "val": result.val,
                "shards": result.shards,
            }
        )
    )
    return 1 if result.failures else 0


def run_index(args: argparse.Namespace) -> int:
    """Read each shard once, front to back, and write its index; exit 0."""
    from videomae.data.shards import index_shards

    print(json.dumps({"index": index_shards(args.shards, args.out), "shards": len(args.shards)}))
    return 0
