import sys

import pytest

from videomae.training.memory import limit_heap_slack


def test_zero_keeps_the_default():
    assert limit_heap_slack(0) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_threshold_is_applied_on_glibc():
    assert limit_heap_slack(1) is True
