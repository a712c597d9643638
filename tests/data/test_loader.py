"""Sampler sharding, determinism and exact resume; the view collate."""

from __future__ import annotations

import torch

from videomae.data import ShardedSampler, collate_views


def indices(sampler):
    return [index for _, index in sampler]


def test_ranks_partition_one_permutation():
    ranks = [ShardedSampler(10, shuffle=True, seed=1, rank=r, world_size=3) for r in range(3)]
    for sampler in ranks:
        sampler.set_epoch(4)
    parts = [indices(s) for s in ranks]
    assert all(len(p) == 4 for p in parts)  # padded to 12 by wrapping
    assert set(sum(parts, [])) == set(range(10))


def test_epochs_differ_and_repeat():
    sampler = ShardedSampler(20, shuffle=True, seed=0)
    sampler.set_epoch(0)
    first = indices(sampler)
    sampler.set_epoch(1)
    assert indices(sampler) != first
    sampler.set_epoch(0)
    assert indices(sampler) == first
    assert all(epoch == 0 for epoch, _ in sampler)


def test_drop_last_cuts_tail():
    assert len(indices(ShardedSampler(10, shuffle=False, rank=1, world_size=3, drop_last=True))) == 3


def test_resume_skips_consumed_samples_once():
    full = ShardedSampler(16, shuffle=True, seed=2, rank=1, world_size=2)
    full.set_epoch(3)
    expected = indices(full)
    resumed = ShardedSampler(16, shuffle=True, seed=2, rank=1, world_size=2, start_index=5)
    resumed.set_epoch(3)
    assert len(resumed) == 3
    assert indices(resumed) == expected[5:]
    assert indices(resumed) == expected  # the next iteration is a full epoch again


def test_collate_views_order():
    batch = [
        {"video": torch.tensor([[0], [1]]), "label": torch.tensor([7, 7])},
        {"video": torch.tensor([[10], [11]]), "label": torch.tensor([8, 8])},
    ]
    out = collate_views(batch)
    assert out["video"].flatten().tolist() == [0, 1, 10, 11] and out["label"].tolist() == [7, 7, 8, 8]
