"""How many CPU threads torch uses, chosen once per command: `--num_threads`, else `OMP_NUM_THREADS`, else the cores
this process may use (`os.sched_getaffinity`; shared out between the local ranks of a multi-process run).

Under load, the default stays fast because of how idle threads wait, not how many there are: torch's kernels (the
oneDNN LSTM above all) split each time step between their threads and meet at a barrier. With libgomp's default, a
thread that arrives early spins for a few milliseconds, and when another process keeps one of two cores busy, that
spinning takes the time slices its partner (sharing the busy core) needs: 2 threads then ran 3-4x slower than 1.
the commands set `OMP_WAIT_POLICY=PASSIVE` before torch loads ([`wait_passively`], called by `vaelm.cli`), so waiting
threads sleep; `import vaelm` itself changes no environment. Even so, a
thread that shares a core with a busy process slows its partners at every barrier, so the default also leaves out
the cores that other processes keep busy, sampled from /proc/stat for a quarter of a second at start (README
"Speed"). The choice is logged.
"""

import logging
import os
import time
from dataclasses import field

logger = logging.getLogger(__name__)

NUM_THREADS_HELP = "CPU threads for torch (default: OMP_NUM_THREADS if set, else the cores this process may use)."


def wait_passively() -> None:
    """
    Make idle OpenMP threads sleep instead of spinning (`OMP_WAIT_POLICY=PASSIVE`; a value the user set is kept): a
    spinning thread steals the core that its partner shares with a busy process, and training with 2 threads then
    ran at a third of the 1-thread speed (docs "Speed"). libgomp reads it once, when torch loads it, so a command calls
    this before its first torch import.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def num_threads_field():
    """The `num_threads` field of a command's argument dataclass (one help text for every command)."""
    return field(default=None, metadata={"help": NUM_THREADS_HELP})


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. under `taskset` or a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _core_times(cores: set[int]) -> dict[int, tuple[int, int]]:
    """`(busy, total)` clock ticks of each of `cores` since boot, from /proc/stat (empty where unreadable)."""
    times = {}
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
                    ticks = [int(value) for value in fields[:8]]
                    idle = ticks[3] + ticks[4]  # idle + iowait
                    times[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    except (OSError, ValueError, IndexError):
        return {}
    return times


def busy_cores(seconds: float = 0.25) -> float:
    """
    How many of this process's usable cores other processes keep busy, sampled over `seconds` (0 where /proc/stat
    cannot be read). This process sleeps meanwhile, so the busy time is theirs.
    """
    try:
        cores = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return 0.0
    before = _core_times(cores)
    if not before:
        return 0.0
    time.sleep(seconds)
    after = _core_times(cores)
    busy = 0.0
    for core, (busy_before, total_before) in before.items():
        if core in after and after[core][1] > total_before:
            busy += (after[core][0] - busy_before) / (after[core][1] - total_before)
    return busy


def choose_num_threads(requested: int | None = None) -> tuple[int, str]:
    """
    The thread count for this process and why it was chosen.

    Args:
        requested (`int`, *optional*): `--num_threads`; wins when given.

    Returns:
        `(threads, reason)`.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--num_threads must be a positive integer, got {requested}.")
        return requested, "--num_threads"
    environment = os.environ.get("OMP_NUM_THREADS", "").strip()
    if environment:
        try:
            threads = int(environment)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"OMP_NUM_THREADS={environment!r} is not a positive integer: unset it or give a number.")
        return threads, "OMP_NUM_THREADS"
    cores = usable_cores()
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    if local_processes > 1:  # accelerate/torchrun ranks on this host share its cores
        return max(1, cores // local_processes), f"{cores} usable cores shared by {local_processes} local processes"
    busy = round(busy_cores()) if cores > 1 else 0
    if busy:
        # A thread on a busy core holds up its partners at every barrier: beside a process keeping one of two
        # cores busy, 1 thread trained 1.64 steps/s and 2 passive threads 1.56 (medians of three rounds of
        # a contention study, docs/speed.md; spinning threads 1.15).
        threads = max(1, cores - busy)
        return threads, f"{cores} usable cores, {min(busy, cores)} kept busy by other processes"
    return cores, f"{cores} usable cores"


def configure_threads(requested: int | None = None) -> int:
    """
    Set torch's intra-op threads (and Arrow's CPU count) for this command (see [`choose_num_threads`]) and log the choice.

    Args:
        requested (`int`, *optional*): `--num_threads`.

    Returns:
        `int`: the thread count now in use.
    """
    # Here, not at the top: the commands' --help imports this module, and must not import torch.
    import pyarrow
    import torch

    threads, reason = choose_num_threads(requested)
    torch.set_num_threads(threads)
    pyarrow.set_cpu_count(threads)  # the data path's Arrow threads and sentence-splitting processes (vaelm.corpora)
    logger.info("Using %d CPU thread%s (%s; --num_threads N overrides).", threads, "" if threads == 1 else "s", reason)
    return threads


__all__ = [
    "NUM_THREADS_HELP",
    "busy_cores",
    "choose_num_threads",
    "configure_threads",
    "num_threads_field",
    "usable_cores",
    "wait_passively",
]
