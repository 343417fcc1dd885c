"""Leaving a multi-process (`accelerate launch`) job in order."""


def leave_process_group() -> bool:
    """
    Wait for every rank, then destroy the default process group; returns `False` when the process is not part of one.

    Without it the ranks leave torch.distributed as the interpreter exits, in any order: a rank that exits first
    closes its gloo connections while another still holds its own, and the other can abort with "terminate called
    without an active exception" (SIGABRT) after a run that finished and saved. Call it once, on the success path, in
    every rank (an error path must not wait for ranks that may never arrive).
    """
    import torch.distributed as distributed  # here: `vaelm-train --help` does not need torch

    if not (distributed.is_available() and distributed.is_initialized()):
        return False
    distributed.barrier()
    distributed.destroy_process_group()
    return True


__all__ = ["leave_process_group"]
