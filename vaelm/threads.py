"""How many CPU threads torch uses, chosen once per command: `--num_threads`, else `OMP_NUM_THREADS`, else the cores
this process may use (`os.sched_getaffinity`) that no other process is busy on.

Why the load matters: torch's CPU kernels (the oneDNN LSTM above all) split every time step between their threads
and wait at a barrier for the slowest one. When another process is busy on one of two cores, the thread that shares
its core gets a time slice only now and then, and every barrier waits for it: with a busy neighbour, 2 threads ran
0.46 training steps/s where 1 thread ran 2.3. So a core that another process keeps busy is not counted (see README
"Speed" for the measurements). The choice is logged, and `--num_threads` / `OMP_NUM_THREADS` always win.
"""

import logging
import os
import time
from dataclasses import dataclass, field

import torch

logger = logging.getLogger(__name__)

NUM_THREADS_HELP = (
    "CPU threads for torch (default: OMP_NUM_THREADS if set, else the cores this process may use, minus those other "
    "processes keep busy)."
)


def num_threads_field():
    """The `num_threads` field of a command's argument dataclass (one help text for every command)."""
    return field(default=None, metadata={"help": NUM_THREADS_HELP})


@dataclass
class ThreadArguments:
    """`--num_threads`, for commands that have no other dataclass to carry it."""

    num_threads: int | None = num_threads_field()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. under `taskset` or a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def runnable_elsewhere(samples: int = 10, interval: float = 0.01) -> float | None:
    """
    The mean number of runnable tasks of other processes on this machine, sampled `samples` times from
    `/proc/loadavg` (its fourth field counts the tasks running now, this one included); `None` where unknown.
    """
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as handle:
                running = int(handle.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        counts.append(running - 1)  # this process, which is reading
        if i + 1 < samples:
            time.sleep(interval)
    return max(0.0, sum(counts) / len(counts))


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
    # The machine-wide task count says something about our cores only when we may use all of the machine's cores.
    others = runnable_elsewhere() if cores == (os.cpu_count() or cores) else None
    if others is None:
        return cores, f"{cores} usable cores"
    busy = int(others + 0.5)
    threads = max(1, cores - busy)
    return threads, f"{cores} usable cores, {others:.1f} busy with other processes"


def configure_threads(requested: int | None = None) -> int:
    """
    Set torch's intra-op threads for this command (see [`choose_num_threads`]) and log the choice.

    Args:
        requested (`int`, *optional*): `--num_threads`.

    Returns:
        `int`: the thread count now in use.
    """
    threads, reason = choose_num_threads(requested)
    torch.set_num_threads(threads)
    logger.info("Using %d CPU thread%s (%s; --num_threads N overrides).", threads, "" if threads == 1 else "s", reason)
    return threads


__all__ = ["NUM_THREADS_HELP", "ThreadArguments", "choose_num_threads", "configure_threads", "num_threads_field",
           "runnable_elsewhere", "usable_cores"]
