"""`videomae predict VIDEO... --checkpoint CKPT`: class names and probabilities, averaged over test views
(a thin layer over `videomae.Predictor`); with `--boxes FILE`, the actions of the people in those boxes, drawn on
the video's keyframes (`videomae.detection.predict`)."""

from __future__ import annotations

import argparse
import sys

from videomae.cli.args import add_checkpoint_arguments, add_command, add_runtime_arguments

EXAMPLE = """\
examples:
  videomae predict cooking.mp4 --checkpoint vit_b_k400_ft.pth --model vit_base_patch16_224 --labels k400
  videomae predict clips/ --checkpoint runs/my_finetune --top-k 3 --json > predictions.json
  videomae predict a.mp4 --checkpoint CKPT --clips 2 --crops 3 --labels classes.txt
  videomae predict a.mp4 --checkpoint vit_b_k710_dl_from_giant --labels k710      # a name from `videomae models`
  videomae predict a.mp4 --checkpoint hf-hub:MCG-NJU/videomae-base-finetuned-kinetics
  videomae predict movie.mp4 --checkpoint runs/vit_b_ava_ft --boxes people.csv --output actions.png --gif actions.gif
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "predict",
        "classify videos: multi-view (clips x crops) probabilities with class names",
        "Classify videos with a fine-tuned model. Each video is cut into clips x crops test views (official "
        "protocol); their softmax probabilities are averaged.",
        EXAMPLE,
    )
    parser.add_argument("inputs", nargs="+", metavar="VIDEO", help="video files, frame folders or folders of them")
    add_checkpoint_arguments(parser, "fine-tuned classifier", "vit_base_patch16_224")
    parser.add_argument(
        "--labels",
        help="class names: k400, k600, k700, k710 or a file with one name per line "
        "(default: labels.txt beside the checkpoint, else Kinetics by class count)",
    )
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per video (default 5)")
    parser.add_argument("--clips", type=int, help="temporal views per video (default: as trained, else 5)")
    parser.add_argument("--crops", type=int, help="spatial views per clip (default: as trained, else 3)")
    parser.add_argument("--sampling-rate", type=int, help="frame interval inside a clip (default: as trained, else 4)")
    parser.add_argument(
        "--short-side",
        type=int,
        help="resize the short side to this (default: as trained, else the model's input size)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_runtime_arguments(parser, "views per forward pass (default 8)")
    boxes = parser.add_argument_group(
        "action detection (--boxes)",
        "classify the people in given boxes at given seconds of one video, with a detector from `videomae detect`",
    )
    boxes.add_argument(
        "--boxes",
        metavar="FILE",
        help="person boxes: CSV rows 'video_id,timestamp,x1,y1,x2,y2[,score]' (normalized corners, timestamp in "
        'seconds) or JSON {"video_id,timestamp": [[x1, y1, x2, y2, score], ...]}; rows of other videos are ignored',
    )
    boxes.add_argument("--output", "-o", default="detections.png", help="PNG grid of the keyframes (detections.png)")
    boxes.add_argument("--gif", help="also write an animated GIF of the clips with their boxes here")
    boxes.add_argument("--box-score", type=float, default=0.8, help="ignore boxes scoring below this (default 0.8)")
    boxes.add_argument("--min-score", type=float, default=0.3, help="show actions of at least this probability (0.3)")
    boxes.add_argument("--fps", type=float, default=30.0, help="frame rate of a frame folder (videos: their own; 30)")
    boxes.add_argument(
        "--timestamp-start", type=float, default=0.0, help="the second the first frame shows (default 0; AVA cuts: 900)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every video was classified, 1 when some could not be read (each is reported)."""
    if args.boxes:
        return run_boxes(args)
    from videomae.apps.inputs import discover_inputs
    from videomae.apps.loading import say
    from videomae.apps.predict import Predictor, check_counts, format_json, format_table

    check_counts(
        {
            f"--{name.replace('_', '-')}": getattr(args, name)
            for name in ("top_k", "clips", "crops", "sampling_rate", "batch_size", "short_side")
        }
    )
    videos = discover_inputs(args.inputs)
    predictor = Predictor(
        args.checkpoint,
        args.device,
        model=args.model,
        labels=args.labels,
        top_k=args.top_k,
        clips=args.clips,
        crops=args.crops,
        sampling_rate=args.sampling_rate,
        short_side=args.short_side,
        batch_size=args.batch_size,
        precision=args.precision,
        backend=args.backend,
        num_workers=args.num_workers,
    )
    predictions = []
    for prediction in predictor.predict_all(videos):  # one unreadable video does not stop the others
        if prediction.error is not None:
            say(f"failed: {prediction.video}: {prediction.error}")
        predictions.append(prediction)
    print(format_json(predictions) if args.json else format_table(predictions), file=sys.stdout)
    failed = sum(p.error is not None for p in predictions)
    if failed:
        say(f"{failed} of {len(predictions)} videos could not be read")
    return 1 if failed else 0


def run_boxes(args: argparse.Namespace) -> int:
    """Actions of the people in `--boxes` on one video: a table (or JSON) on stdout, the PNG grid and the GIF."""
    import os

    from videomae.apps.inputs import discover_inputs
    from videomae.apps.loading import say
    from videomae.apps.predict import check_counts
    from videomae.detection.drawing import save_gif
    from videomae.detection.predict import Detector, boxes_of_video, format_detections, pictures
    from videomae.errors import ConfigError, DataError

    check_counts({"--top-k": args.top_k, "--sampling-rate": args.sampling_rate, "--short-side": args.short_side})
    if not args.output.lower().endswith(".png"):
        raise ConfigError(f"--output must be a .png file, got {args.output!r}")
    videos = discover_inputs(args.inputs)
    if len(videos) != 1:
        raise DataError(f"--boxes takes one video file or frame folder, got {len(videos)}")
    video = videos[0]
    boxes = boxes_of_video(args.boxes, video.video_id, args.box_score)
    if not boxes:
        raise DataError(f"{args.boxes} has no box scoring {args.box_score:g} or more for {video.video_id!r}")
    detector = Detector(
        args.checkpoint,
        args.device,
        model=args.model,
        labels=args.labels,
        sampling_rate=args.sampling_rate,
        short_side=args.short_side,
        precision=args.precision,
    )
    detections = detector.detect(video, boxes, fps=args.fps, timestamp_start=args.timestamp_start, backend=args.backend)
    print(format_detections(video.path, detections, detector.names, args.top_k, args.min_score, args.json))
    grid, animation = pictures(detections, detector.names, args.top_k, args.min_score, os.path.basename(video.path))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    grid.save(args.output)
    say(f"wrote {args.output}")
    if args.gif:
        save_gif(animation, args.gif, fps=4.0)
        say(f"wrote {args.gif}")
    return 0
