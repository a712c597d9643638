"""`videomae predict VIDEO... --checkpoint CKPT`: class names and probabilities, averaged over test views
(a thin layer over `videomae.Predictor`)."""

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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every video was classified, 1 when some could not be read (each is reported)."""
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
