"""The official multi-view merge (§5.3) against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from videomae.training.evaluation import compute_metrics, merge_views, write_results


def softmax(values):
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def test_merge_averages_softmax_over_views_and_counts_top_k(tmp_path):
    # video 0 (label 2): view logits favour class 0 once strongly and class 2 twice mildly
    # video 1 (label 1): both views favour class 1.
    views = {
        (0, 0): (2, np.array([4.0, 0.0, 0.0])),
        (0, 1): (2, np.array([0.0, 0.0, 1.0])),
        (0, 2): (2, np.array([0.0, 0.0, 1.0])),
        (1, 0): (1, np.array([0.0, 2.0, 0.0])),
        (1, 1): (1, np.array([1.0, 3.0, 0.0])),
    }
    merged = merge_views(views)
    videos, labels, probs = merged
    p0 = np.mean([softmax([4, 0, 0]), softmax([0, 0, 1]), softmax([0, 0, 1])], axis=0)
    np.testing.assert_allclose(probs[0], p0, rtol=1e-12)
    assert videos == [0, 1] and labels.tolist() == [2, 1]
    # by hand: p0 = [(0.9647+0.2119+0.2119)/3, ..] -> class 0 wins (0.463 > 0.434): video 0 is wrong
    assert probs[0].argmax() == 0
    metrics = compute_metrics(views, merged, num_classes=3)
    assert metrics["acc1"] == 50.0  # video 1 right, video 0 wrong
    assert metrics["view_acc1"] == pytest.approx(100 * 4 / 5)  # only view (0, 0) is wrong
    assert metrics["acc5"] == 100.0  # top-k with k = min(5, classes)
    assert metrics["confusion"] == [[0, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert metrics["per_class_acc1"] == [None, 100.0, 0.0]
    write_results(metrics, merged, str(tmp_path), ["a", "b"], ["x", "y", "z"])
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert '"video_id": "a"' in lines[0] and '"prediction": 0' in lines[0] and '"prediction_name": "y"' in lines[1]
    assert (tmp_path / "metrics.json").exists()
