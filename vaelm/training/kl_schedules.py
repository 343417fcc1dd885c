"""KL annealing schedules: a registry from a name (`--kl_schedule`) to β as a function of the training step.

Each schedule returns a value in [0, 1] from the global step, the pivot step (`--annealing_pivot`, or half the run)
and the run's total steps; [`kl_weight_at`] scales it by `--kl_weight`. β is a pure function of the step, so a
resumed run continues its schedule exactly. A new schedule is one function here and one line in `KL_SCHEDULES`
(`--kl_schedule` takes its choices from the registry).
"""

import math
from collections.abc import Callable
from typing import Any

# The training arguments the schedules read (shown in the model card's training settings): listed with the training
# record's other argument groups, where the card (vaelm.hub, a lower layer) reads them too. A new parameter goes there.
from ..pretrained.model_folder import KL_ARGUMENT_NAMES


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= -700 else 0.0


def sigmoid_pivot(step: int, pivot: int, total_steps: int | None, args: Any) -> float:
    """The original script's 1/(1+exp(-(t-pivot)/pivot·k)), k = `annealing_steepness`."""
    return _sigmoid((step - pivot) / pivot * args.annealing_steepness)


def logistic(step: int, pivot: int, total_steps: int | None, args: Any) -> float:
    """Bowman et al. (2016): 1/(1+exp(-r·(t-pivot))), r = `annealing_rate`."""
    return _sigmoid(args.annealing_rate * (step - pivot))


def linear(step: int, pivot: int, total_steps: int | None, args: Any) -> float:
    """t/pivot, then 1."""
    return min(1.0, step / pivot)


def cyclical(step: int, pivot: int, total_steps: int | None, args: Any) -> float:
    """Fu et al. (2019): `kl_cycles` linear ramps over the run, each rising for `kl_cycle_ratio` of its cycle."""
    period = max(1, math.ceil((total_steps or 2 * pivot) / args.kl_cycles))
    return min(1.0, (step % period) / (period * args.kl_cycle_ratio))


def constant(step: int, pivot: int, total_steps: int | None, args: Any) -> float:
    """1 throughout (β = `kl_weight`)."""
    return 1.0


KL_SCHEDULES: dict[str, Callable[[int, int, int | None, Any], float]] = {
    "sigmoid_pivot": sigmoid_pivot,
    "logistic": logistic,
    "linear": linear,
    "cyclical": cyclical,
    "constant": constant,
}


def kl_weight_at(step: int, args: Any, total_steps: int | None = None) -> float:
    """
    β at a global step: a pure function, so a resumed run continues its schedule exactly.

    Args:
        step (`int`): the global step.
        args ([`~vaelm.trainer.VAETrainingArguments`]): `kl_schedule`, `kl_weight` and the schedule's parameters.
        total_steps (`int`, *optional*): the run's steps; needed by `cyclical` and when `annealing_pivot` is unset.
    """
    pivot = args.annealing_pivot or max(1, (total_steps or 2) // 2)
    return args.kl_weight * KL_SCHEDULES[args.kl_schedule](step, pivot, total_steps, args)


__all__ = ["KL_ARGUMENT_NAMES", "KL_SCHEDULES", "kl_weight_at"]
