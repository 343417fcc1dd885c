"""Weight averaging: within a run, a Trainer callback keeping an exponential moving average (EMA) of the parameters;
across runs, [`average_into`], the uniform average of several trained models (`vaelm-train --average_with`).

The callback keeps a float32 copy of every trainable parameter, updated after each optimizer step as
`average = d · average + (1 - d) · weight` (Polyak averaging as used for LSTM language models, Merity et al.
2018, in its exponential form), with `d = min(decay, (1 + step) / (10 + step))`: without that warm-up the average
would still hold 37 % of the random initial weights after 1,000 steps at decay 0.999, and early evaluations (and the
checkpoints a best-model choice compares) would score mostly that. `VAETrainer` evaluates and saves the averaged weights: it swaps them in around
`evaluate` and the final `save_model`, and loads them into the model for good when training ends. Checkpoints keep
the raw weights (training continues from them) plus the average in `weight_average.safetensors`, so a resumed run
continues the same average.

Across runs, the uniform average of models that lie along one training trajectory (e.g. successive cyclic runs, each
continued from the last; Izmailov et al. 2018) scores better than each of them: the bundled PTB model's last stages
start from such averages.
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


@torch.no_grad()
def average_into(model: torch.nn.Module, others: list[torch.nn.Module], names: list[str]) -> None:
    """
    Replace `model`'s weights by the uniform average of its own and `others`' (every floating tensor of the state
    dict, accumulated in float64; integer buffers stay `model`'s).

    Args:
        model (`torch.nn.Module`): the model to average into (`--model_name_or_path`).
        others (`list[torch.nn.Module]`): the models averaged with it, of the same architecture.
        names (`list[str]`): what `others` were loaded from, for the error messages.

    Raises:
        `ValueError`: a model whose tensors differ from `model`'s in name or shape (naming it).
    """
    state = model.state_dict()
    total = {key: tensor.double() for key, tensor in state.items() if tensor.is_floating_point()}
    for other, name in zip(others, names):
        other_state = other.state_dict()
        different = sorted(
            key
            for key in state.keys() | other_state.keys()
            if key not in state or key not in other_state or state[key].shape != other_state[key].shape
        )
        if different:
            raise ValueError(
                f"--average_with {name}: its weights differ from --model_name_or_path's in name or shape "
                f"({', '.join(different[:3])}{'…' if len(different) > 3 else ''}); average models of one architecture "
                "and tokenizer, e.g. successive runs of one recipe."
            )
        for key in total:
            total[key] += other_state[key].to(device=total[key].device, dtype=torch.float64)
    model.load_state_dict(
        {key: (value / (1 + len(others))).to(state[key].dtype) for key, value in total.items()}, strict=False
    )
    logger.info("Started from the uniform average of %d models' weights.", 1 + len(others))


__all__ = ["WEIGHT_AVERAGE_FILE", "WeightAveragingCallback", "average_into"]
