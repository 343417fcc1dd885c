"""A multi-process (`accelerate launch`) job: which process speaks for it, and leaving it in order."""

import os


def is_main_process() -> bool:
    """
    Whether this process speaks for its job: the rank-0 process of a multi-process job (from the launcher's `RANK`
    variable, without torch), or the only process. Messages meant once per job (the final metrics, an interruption's
    notice) are printed by it alone.
    """
    return os.environ.get("RANK", "0").strip() in ("", "0")


def leave_process_group() -> bool:
    """
    Wait for every rank, then destroy the default process group; returns `False` when the process is not part of one.

    Without it the ranks tear torch.distributed down as the interpreter exits, in any order, which PyTorch advises
    against; one rank of a two-process test run that had finished and saved aborted at exit that way ("terminate
    called without an active exception", SIGABRT). Call it once, on the success path, in every rank (an error path
    must not wait for ranks that may never arrive).
    """
    import torch.distributed as distributed  # here: `vaelm-train --help` does not need torch

    if not (distributed.is_available() and distributed.is_initialized()):
        return False
    distributed.barrier()
    distributed.destroy_process_group()
    return True


__all__ = ["is_main_process", "leave_process_group"]
