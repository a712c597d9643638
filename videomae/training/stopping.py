"""Stop on SIGTERM or SIGINT after the current optimizer step, with a checkpoint, so resuming loses nothing.

SLURM and Kubernetes stop a job with SIGTERM (then SIGKILL after a grace period); Ctrl-C sends SIGINT. Inside
`with StopSignals()`, the first of them only sets a flag, which the engine reads once per step through
`agreed()`: a one-integer all-reduce, so every process stops after the same step and writes the checkpoint
together. A second Ctrl-C stops at once (KeyboardInterrupt).
"""

from __future__ import annotations

import signal
import threading
import time

from videomae.training.distributed import Dist, max_across

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# torchrun passes the terminal's Ctrl-C on to its workers, which so see one Ctrl-C twice within milliseconds.
REPEAT_AFTER_S = 1.0


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal after writing its checkpoint; the same command resumes it.

    A KeyboardInterrupt, so that `except Exception` does not swallow it."""

    def __init__(self, signum: int, step: int, checkpoint: str):
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after step {step}, checkpoint {checkpoint}; "
            f"run the same command to resume"
        )
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by that signal


class StopSignals:
    """Within `with`, SIGTERM and SIGINT ask the run to stop at the next step; the handlers that were there
    before come back on exit. Python runs signal handlers in the main thread only: elsewhere this does nothing."""

    def __init__(self):
        self.signum = 0
        self.first_at = 0.0
        self.previous = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self.receive) for sig in SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python

    def receive(self, signum: int, frame) -> None:
        if not self.signum:
            self.signum, self.first_at = signum, time.monotonic()
        elif signum == signal.SIGINT and time.monotonic() - self.first_at >= REPEAT_AFTER_S:
            raise KeyboardInterrupt

    def agreed(self, d: Dist) -> int:
        """The signal any process received (0: none); the same answer on every process (collective)."""
        return max_across(self.signum, d)
