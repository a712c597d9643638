"""Frame indices against direct transcriptions of the official formulas (reference §5)."""

from __future__ import annotations

import numpy as np
import pytest

from videomae.data import sampling

LENGTHS = [1, 3, 7, 15, 16, 31, 32, 63, 64, 65, 100, 300]


def official_pretrain(n, new_length, new_step, rng):
    """HybridVideoMAE._sample_train_indices + _video_TSN_decord_batch_loader, num_segments=1."""
    skip_length = new_length * new_step
    average_duration = (n - skip_length + 1) // 1
    offsets = [rng.integers(0, average_duration)] if average_duration > 0 else [0]
    frame_id_list = []
    for seg_ind in [o + 1 for o in offsets]:
        offset = int(seg_ind)
        for _ in range(0, skip_length, new_step):
            frame_id_list.append(offset - 1)
            if offset + new_step < n:
                offset += new_step
    return frame_id_list


def official_dense(n, clip_len, rate, mode, rng=None, num_segment=1):
    """VideoClsDataset.loadvideo_decord temporal part."""
    converted_len = int(clip_len * rate)
    seg_len = n // num_segment
    all_index = []
    for i in range(num_segment):
        if seg_len <= converted_len:
            index = np.linspace(0, seg_len, num=seg_len // rate)
            index = np.concatenate((index, np.ones(clip_len - seg_len // rate) * seg_len))
            index = np.clip(index, 0, seg_len - 1).astype(np.int64)
        else:
            if mode == "validation":
                end_idx = (converted_len + seg_len) // 2
            else:
                end_idx = rng.integers(converted_len, seg_len)
            str_idx = end_idx - converted_len
            index = np.linspace(str_idx, end_idx, num=clip_len)
            index = np.clip(index, str_idx, end_idx - 1).astype(np.int64)
        index = index + i * seg_len
        all_index.extend(list(index))
    return all_index


def official_dense_test(n, clip_len, rate, chunk_nb, test_num_segment):
    all_index = [x for x in range(0, n, rate)]
    while len(all_index) < clip_len:
        all_index.append(all_index[-1])
    temporal_step = max(1.0 * (len(all_index) - clip_len) / (test_num_segment - 1), 0)
    temporal_start = int(chunk_nb * temporal_step)
    return all_index[temporal_start : temporal_start + clip_len]


def official_rawframe(n, num_segment, mode, rng=None):
    average_duration = n // num_segment
    if average_duration > 0:
        if mode == "validation":
            return list(
                np.multiply(list(range(num_segment)), average_duration)
                + np.ones(num_segment, dtype=int) * (average_duration // 2)
            )
        return list(
            np.multiply(list(range(num_segment)), average_duration)
            + rng.integers(0, average_duration, size=num_segment)
        )
    return [0] * (num_segment - n) + list(range(n))


def official_sparse_test(n, num_segment, chunk_nb, test_num_segment):
    tick = n / float(num_segment)
    all_index = []
    for t_seg in range(test_num_segment):
        all_index.extend([int(t_seg * tick / test_num_segment + tick * x) for x in range(num_segment)])
    return list(np.sort(np.array(all_index)))[chunk_nb::test_num_segment]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("num_frames,rate", [(16, 4), (16, 2), (8, 8)])
def test_pretrain_indices_match_official(n, num_frames, rate):
    for draw in range(5):
        ours = sampling.pretrain_indices(n, num_frames, rate, np.random.default_rng(draw))
        assert ours.tolist() == official_pretrain(n, num_frames, rate, np.random.default_rng(draw))
        assert len(ours) == num_frames and ours.min() >= 0 and ours.max() < n


def test_pretrain_short_video_repeats_tail():
    assert sampling.pretrain_indices(10, 4, 4, np.random.default_rng(0)).tolist() == [0, 4, 8, 8]


@pytest.mark.parametrize("n", LENGTHS)
def test_dense_train_and_val_match_official(n):
    for draw in range(5):
        ours = sampling.dense_train_indices(n, 16, 4, np.random.default_rng(draw))
        assert ours.tolist() == official_dense(n, 16, 4, "train", np.random.default_rng(draw))
    assert sampling.dense_val_indices(n, 16, 4).tolist() == official_dense(n, 16, 4, "validation")


def test_dense_train_linspace_stride_and_exact_switch():
    assert sampling.dense_val_indices(64 + 64, 16, 4).tolist()[:6] == [32, 36, 40, 44, 49, 53]
    exact = sampling.dense_val_indices(128, 16, 4, linspace=False)
    assert np.diff(exact).tolist() == [4] * 15


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("views", [2, 5])
def test_dense_test_views_match_official(n, views):
    for chunk in range(views):
        assert sampling.dense_test_indices(n, 16, 4, chunk, views).tolist() == official_dense_test(
            n, 16, 4, chunk, views
        )


def test_dense_test_single_view_is_centred():
    assert sampling.dense_test_indices(100, 4, 4, 0, 1).tolist() == [40, 44, 48, 52]


@pytest.mark.parametrize("n", LENGTHS)
def test_segment_sampling_matches_official(n):
    for draw in range(3):
        ours = sampling.segment_indices(n, 16, np.random.default_rng(draw))
        assert ours.tolist() == official_rawframe(n, 16, "train", np.random.default_rng(draw))
    assert sampling.segment_indices(n, 16, None).tolist() == official_rawframe(n, 16, "validation")


@pytest.mark.parametrize("n", [32, 33, 40, 100, 300])
def test_video_sparse_matches_official_dense_code_with_span_one(n):
    for draw in range(3):
        ours = sampling.video_segment_indices(n, 16, np.random.default_rng(draw))
        assert ours.tolist() == official_dense(n, 1, 1, "train", np.random.default_rng(draw), num_segment=16)
    assert sampling.video_segment_indices(n, 16, None).tolist() == official_dense(n, 1, 1, "validation", num_segment=16)


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("views", [1, 2, 3])
def test_sparse_test_matches_official(n, views):
    for chunk in range(views):
        assert sampling.segment_test_indices(n, 8, chunk, views).tolist() == official_sparse_test(n, 8, chunk, views)
