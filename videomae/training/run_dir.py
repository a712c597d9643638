"""One run per output directory, and nothing an earlier run left in it is lost.

While a run trains, its process 0 holds `output_dir/run.lock`: created with O_CREAT|O_EXCL (atomic, also
on NFS), it names its owner (host, pid, start time, SLURM job) and a daemon thread touches it every
`HEARTBEAT_S`. A second run on the directory refuses to start. A lock whose owner is known to be gone is
taken over: same host and the pid ended; the same SLURM job, requeued; another host whose heartbeat
stopped `STALE_AFTER_S` ago. Before training, process 0 also removes what killed writes left behind, and
refuses to start from scratch over an earlier run's work unless asked (`--fresh` moves the run aside).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import socket
import sys
import threading
import time

from videomae.training.distributed import Dist, on_main
from videomae.training.files import OutputDirError, json_text, unused_path, writing
from videomae.training.state import checkpoint_dir

LOCK_NAME = "run.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # ten missed heartbeats: room for NFS attribute caching and clock skew between hosts
# The temporary names of our own writers: `.tmp-NAME-PID` (and `.old`, the version it replaces) from
# state.py's atomic directories; `NAME.tmpPID` from the config and metrics rewrites; a lock taken over.
LEFTOVER = re.compile(
    r"^\.tmp-(?P<final>step_\d{8}|best|export|export_ema)-\d+(?P<old>\.old)?$"
    r"|^(config\.json|metrics\.jsonl)\.tmp\d+$|^run\.lock\.stale-\d+$"
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def slurm_restart_count() -> int:
    return int(os.environ.get("SLURM_RESTART_COUNT", 0))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def started_after(pid: int, moment: float) -> bool:
    """Whether process `pid` started after `moment` (so it is not the process that took a lock then: its pid
    was reused, e.g. after a reboot). False when unknown (no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22: start time, clock ticks after boot
        with open("/proc/stat", encoding="ascii") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return boot + ticks / os.sysconf("SC_CLK_TCK") > moment + 1.0


def stale_reason(owner: dict, age_s: float) -> str | None:
    """Why a lock's owner is known to be gone, or None while it may still be running."""
    job = os.environ.get("SLURM_JOB_ID")
    if job and owner.get("slurm_job_id") == job and (owner.get("slurm_restart_count") or 0) < slurm_restart_count():
        return f"its SLURM job {job} was requeued"
    if owner.get("host") == socket.gethostname():
        pid = owner.get("pid")
        # Our own pid in a lock we have not taken: a restarted container, whose pids start over.
        if not isinstance(pid, int) or not process_alive(pid) or pid == os.getpid():
            return f"process {pid} has ended"
        since = owner.get("since")
        if isinstance(since, (int, float)) and started_after(pid, since):
            return f"process {pid} has ended (its pid now belongs to another process)"
        return None
    if age_s > STALE_AFTER_S:
        return f"its heartbeat stopped {age_s / 60:.0f} minutes ago"
    return None


def parse_owner(text: str) -> dict:
    """A lock's owner; {} while the lock is being written, or when damaged (then its heartbeat age decides)."""
    try:
        owner = json.loads(text)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def describe(owner: dict) -> str:
    text = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {owner.get('started', '?')}"
    return text + (f", SLURM job {owner['slurm_job_id']}" if owner.get("slurm_job_id") else "")


class RunLock:
    """`output_dir/run.lock`, held by process 0 for the whole run."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, LOCK_NAME)
        now = time.time()
        self.text = json_text(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": now,
                "started": datetime.datetime.fromtimestamp(now).isoformat(timespec="seconds"),
                "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "slurm_restart_count": slurm_restart_count(),
            }
        )
        self.stop_heartbeat = threading.Event()
        self.heartbeat: threading.Thread | None = None

    def acquire(self) -> None:
        """Create the lock, taking over a stale one; raises OutputDirError while another run holds it."""
        while not self.create():
            try:
                with open(self.path, encoding="utf-8") as handle:
                    text = handle.read()
                age_s = time.time() - os.stat(self.path).st_mtime
            except FileNotFoundError:  # released meanwhile: try again
                continue
            owner = parse_owner(text)
            reason = stale_reason(owner, age_s)
            if reason is None:
                raise OutputDirError(
                    f"{self.output_dir} is in use by another run ({describe(owner)}); wait for it "
                    f"to end or stop it, or choose another output_dir (if that run is gone, delete "
                    f"{self.path})"
                )
            self.take_over(text, f"taking over {self.path} from {describe(owner)}: {reason}")
        if self.heartbeat is None:
            self.heartbeat = threading.Thread(target=self.beat, name="videomae-run-lock", daemon=True)
            self.heartbeat.start()

    def create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.text)
        return True

    def take_over(self, stale_text: str, message: str) -> None:
        """Remove the stale lock, unless another starting run took it over first (then it is put back and
        `acquire` judges it again)."""
        aside = f"{self.path}.stale-{os.getpid()}"
        os.rename(self.path, aside)
        with open(aside, encoding="utf-8") as handle:
            if handle.read() != stale_text:
                os.rename(aside, self.path)
                return
        os.remove(aside)
        say(message)

    def beat(self) -> None:
        while not self.stop_heartbeat.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):  # a flaky disk must not stop the run; the write that fails will
                os.utime(self.path)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still ours."""
        self.stop_heartbeat.set()
        if self.heartbeat is not None:
            self.heartbeat.join()
        with contextlib.suppress(OSError):  # unreadable now: left for the next run to find stale
            with open(self.path, encoding="utf-8") as handle:
                ours = handle.read() == self.text
            if ours:
                os.remove(self.path)


def contents(output_dir: str) -> list[str]:
    """What the directory holds besides our lock."""
    return sorted(set(os.listdir(output_dir)) - {LOCK_NAME})


def listing(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def remove_leftovers(output_dir: str) -> None:
    """Delete the temporary files and directories of killed writes (only our own names); put back a model
    directory whose replacement was cut between its two renames."""
    for folder in (output_dir, checkpoint_dir(output_dir)):
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            match = LEFTOVER.match(name)
            if not match:
                continue
            path, final = os.path.join(folder, name), os.path.join(folder, match["final"] or name)
            if match["old"] and not os.path.exists(final):
                os.rename(path, final)
                say(f"restored {final}, whose replacement was interrupted")
                continue
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            say(f"removed {path}, left by an interrupted write")


def earlier_work(output_dir: str) -> list[str]:
    """What an earlier run left that starting from scratch would overwrite (paths inside output_dir)."""
    root = checkpoint_dir(output_dir)
    work = (
        [f"checkpoints/{name}" for name in sorted(os.listdir(root)) if name.startswith("step_")]
        if os.path.isdir(root)
        else []
    )
    metrics = os.path.join(output_dir, "metrics.jsonl")
    if os.path.isfile(metrics) and os.path.getsize(metrics):
        work.append("metrics.jsonl")
    if os.path.isdir(os.path.join(output_dir, "export")):
        work.append("export")
    return work


def refuse_to_restart(output_dir: str) -> None:
    """Called when no checkpoint was found: starting from step 0 must not overwrite an earlier run."""
    work = earlier_work(output_dir)
    if work:
        raise OutputDirError(
            f"{output_dir} holds an earlier run ({listing(work)}) but no checkpoint to resume from; "
            f"pass --fresh to move it aside and start again, or choose another output_dir"
        )


def move_aside(output_dir: str, lock: RunLock) -> None:
    """`--fresh`: rename the directory to `output_dir.old-DATE-TIME` and continue in a new, empty one."""
    if not contents(output_dir):
        return
    aside = unused_path(f"{output_dir}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(output_dir, aside)  # our lock moves along and keeps other runs out until the new one exists
    os.makedirs(output_dir)
    lock.acquire()
    os.remove(os.path.join(aside, LOCK_NAME))
    say(f"moved the earlier run in {output_dir} to {aside}; starting afresh")


def claim(output_dir: str, *, resume: bool, fresh: bool) -> RunLock:
    """Lock `output_dir` for this run and make it ready (process 0). Returns the held lock."""
    with writing(output_dir):
        os.makedirs(output_dir, exist_ok=True)
        lock = RunLock(output_dir)
        lock.acquire()
        try:
            if fresh:
                move_aside(output_dir, lock)
            elif not resume and contents(output_dir):
                raise OutputDirError(
                    f"resume=false but {output_dir} is not empty ({listing(contents(output_dir))}); "
                    f"pass --fresh to move it aside, or choose another output_dir"
                )
            remove_leftovers(output_dir)
        except BaseException:
            lock.release()
            raise
    return lock


@contextlib.contextmanager
def claimed_output_dir(output_dir: str, d: Dist, *, resume: bool = True, fresh: bool = False):
    """Hold `output_dir` for the `with` block (collective: process 0 claims it, every process learns the outcome)."""
    lock = on_main(lambda: claim(os.path.normpath(output_dir), resume=resume, fresh=fresh), d)
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
