"""Precision names and TF32 for inference: "auto" per device, and TF32 only inside the block that asked for it."""

from __future__ import annotations

import pytest
import torch

from videomae.devices import resolved_precision, tf32_matmuls
from videomae.errors import ConfigError


def test_auto_precision_is_bf16_on_gpus_and_fp32_on_the_cpu():
    assert resolved_precision("auto", torch.device("cuda")) == "bf16"
    assert resolved_precision("auto", torch.device("cpu")) == "fp32"
    assert resolved_precision("fp16", torch.device("cpu")) == "fp16"
    with pytest.raises(ConfigError, match="precision must be one of"):
        resolved_precision("tf32", torch.device("cpu"))


@pytest.mark.parametrize("before", ["none", "ieee", "tf32"])
def test_tf32_is_on_inside_the_block_and_as_before_after(before):
    """The setting is torch's process-wide flag: it must come back exactly, also when the block raises. (Setting
    it needs no GPU.)"""
    matmul = torch.backends.cuda.matmul
    saved = matmul.fp32_precision
    try:
        matmul.fp32_precision = before
        with tf32_matmuls(torch.device("cuda")):
            assert matmul.fp32_precision == "tf32"
        assert matmul.fp32_precision == before
        with pytest.raises(KeyError), tf32_matmuls(torch.device("cuda")):
            raise KeyError
        assert matmul.fp32_precision == before
        with tf32_matmuls(torch.device("cpu")):
            assert matmul.fp32_precision == before
    finally:
        matmul.fp32_precision = saved
