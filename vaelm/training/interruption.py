"""Graceful interruption of training: Ctrl-C or SIGTERM finishes the current step and saves a resumable checkpoint.

[`GracefulInterruption`] is a `TrainerCallback`. Its signal handler only sets a flag; at the end of each optimizer
step the flag is reduced across processes (any rank that was signalled stops every rank), so all ranks save the same
`checkpoint-N` and stop together. A second signal of the same kind stops at once (the default behaviour).

Under `accelerate launch` (torch's elastic agent), the workers run in their own sessions: a Ctrl-C reaches the
launcher, which forwards that same signal once to every worker; a second Ctrl-C is forwarded again.
"""

import logging
import os
import signal
import sys

import torch
from transformers import TrainerCallback

from ..runtime.distributed import is_main_process

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint; the message says how to resume."""


class GracefulInterruption(TrainerCallback):
    """
    Stop training cleanly on SIGINT/SIGTERM: finish the step, save a checkpoint on every rank, stop.

    After `trainer.train()` returns, `stopped_at` is the step of the saved checkpoint (`None` when no signal came).
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.stopped_at: int | None = None
        self._previous: dict[int, object] = {}

    # ------------------------------------------------------------------------------------------ signal handling
    def _handle(self, signum: int, frame) -> None:
        if self.received == signum:  # the same signal twice: the user means it, stop without any cleanup
            print(
                f"{signal.Signals(signum).name} received again: stopped at once, nothing saved.",
                file=sys.stderr,
                flush=True,
            )
            os._exit(128 + signal.SIGINT)
        if self.received is None and is_main_process():  # every rank receives it: one notice per job
            print(
                f"\n{signal.Signals(signum).name} received: finishing the current step and saving a checkpoint "
                "(press Ctrl-C again to stop at once, without saving).",
                file=sys.stderr,
                flush=True,
            )
        self.received = self.received or signum

    def _install(self) -> None:
        for signum in SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. a notebook worker): keep the default behaviour
                return

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    # ------------------------------------------------------------------------------------------ callback hooks
    def on_train_begin(self, args, state, control, **kwargs):
        self._install()

    def on_train_end(self, args, state, control, **kwargs):
        self._restore()

    def on_step_end(self, args, state, control, **kwargs):
        if self._any_rank_signalled(args):
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control

    def _any_rank_signalled(self, args) -> bool:
        flag = self.received is not None
        if torch.distributed.is_available() and torch.distributed.is_initialized() and args.world_size > 1:
            # Every rank must take the same decision at the same step, or the ranks would save different steps
            # and the next collective would hang.
            tensor = torch.tensor([float(flag)], device=args.device)
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
            flag = bool(tensor.item())
        return flag

    def resume_message(self, output_dir: str) -> str:
        """What to tell the user after a stop: where the checkpoint is and the flag that continues from it."""
        return (
            f"training stopped at step {self.stopped_at}; the checkpoint {output_dir}/checkpoint-{self.stopped_at} "
            "holds the weights, optimizer, scheduler, RNG and KL-schedule state. To continue with the same losses, "
            "rerun the same command with --resume_from_checkpoint true."
        )


__all__ = ["GracefulInterruption", "TrainingInterrupted"]
