"""Weight averaging as a Trainer callback: an exponential moving average (EMA) of the parameters.

The callback keeps a float32 copy of every trainable parameter, updated after each optimizer step as
`average = d · average + (1 - d) · weight` (Polyak averaging as used for LSTM language models, Merity et al.
2018, in its exponential form), with `d = min(decay, (1 + step) / (10 + step))`: without that warm-up the average
would still hold 37 % of the random initial weights after 1,000 steps at decay 0.999, and early evaluations (and the
checkpoints a best-model choice compares) would score mostly that. `VAETrainer` evaluates and saves the averaged weights: it swaps them in around
`evaluate` and the final `save_model`, and loads them into the model for good when training ends. Checkpoints keep
the raw weights (training continues from them) plus the average in `weight_average.safetensors`, so a resumed run
continues the same average.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

WEIGHT_AVERAGE_FILE = "weight_average.safetensors"


class WeightAveragingCallback(TrainerCallback):
    """
    An EMA of a model's trainable parameters.

    Args:
        decay (`float`): the weight of the old average at each step, in (0, 1); 0.999 averages over ≈1000 steps.
    """

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"--ema_decay must lie in (0, 1) (0 turns averaging off), got {decay}.")
        self.decay = decay
        self.average: dict[str, torch.Tensor] | None = None
        self.applied = False  # the model holds the average for good (after training)

    @staticmethod
    def _parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        return {name: param for name, param in model.named_parameters() if param.requires_grad}

    def start_from(self, model: torch.nn.Module) -> None:
        """Start the average at the model's current weights."""
        self.average = {name: param.detach().float().clone() for name, param in self._parameters(model).items()}
        self.applied = False

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.average is None:
            self.start_from(model)

    def decay_at(self, step: int) -> float:
        """The decay of the update after optimizer step `step` (1-based): warmed up, then `decay`."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def on_step_end(self, args, state, control, model=None, **kwargs):
        weight = 1.0 - self.decay_at(state.global_step)
        for name, param in self._parameters(model).items():
            self.average[name].lerp_(param.detach().float(), weight)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.apply_to(model)

    @torch.no_grad()
    def apply_to(self, model: torch.nn.Module) -> None:
        """Copy the average into the model for good (what training ends with)."""
        if self.average is None or self.applied:
            return
        for name, param in self._parameters(model).items():
            param.copy_(self.average[name].to(param.dtype))
        self.applied = True

    @contextmanager
    def swapped_in(self, model: torch.nn.Module):
        """Within the block, the model holds the averaged weights; its own weights come back afterwards."""
        if self.average is None or self.applied:
            yield
            return
        parameters = self._parameters(model)
        raw = {name: param.detach().clone() for name, param in parameters.items()}
        with torch.no_grad():
            for name, param in parameters.items():
                param.copy_(self.average[name].to(param.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in parameters.items():
                    param.copy_(raw[name])

    def save(self, folder: str | Path) -> None:
        """Write the average next to a checkpoint's raw weights."""
        if self.average is not None:
            save_file(
                {name: tensor.contiguous() for name, tensor in self.average.items()},
                str(Path(folder) / WEIGHT_AVERAGE_FILE),
            )

    def load(self, folder: str | Path, model: torch.nn.Module) -> None:
        """Continue the average saved in a checkpoint (before `Trainer.train` loads the checkpoint's raw weights)."""
        path = Path(folder) / WEIGHT_AVERAGE_FILE
        if not path.is_file():
            logger.warning(
                "%s has no %s (trained without --ema_decay): the average starts at its weights.",
                folder,
                WEIGHT_AVERAGE_FILE,
            )
            self.average = None  # on_train_begin starts it, once the Trainer has loaded the checkpoint's weights
            return
        saved = load_file(str(path))
        expected = set(self._parameters(model))
        if set(saved) != expected:
            raise ValueError(
                f"{path} averages other parameters than this model's; delete it or train without --ema_decay."
            )
        device = next(model.parameters()).device
        self.average = {name: tensor.to(device) for name, tensor in saved.items()}
        self.applied = False


__all__ = ["WEIGHT_AVERAGE_FILE", "WeightAveragingCallback"]
