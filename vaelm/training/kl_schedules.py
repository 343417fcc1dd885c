"""KL annealing schedules: a registry from a name (`--kl_schedule`) to β as a function of the training step; and
[`KLController`], which sets β from the measured KL to hold it at a target rate (`--target_kl`).

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
        args ([`~vaelm.training.trainer.VAETrainingArguments`]): `kl_schedule`, `kl_weight` and the schedule's parameters.
        total_steps (`int`, *optional*): the run's steps; needed by `cyclical` and when `annealing_pivot` is unset.
    """
    pivot = args.annealing_pivot or max(1, (total_steps or 2) // 2)
    return args.kl_weight * KL_SCHEDULES[args.kl_schedule](step, pivot, total_steps, args)


class KLController:
    """
    A PI controller on β that holds the batch KL at `target_kl` nats per sentence (ControlVAE, Shao et al. 2020).

    With the relative error e = (KL − target) / target of each training batch, the integral term I ← clip(I + k_i·e)
    and β = clip(I + k_p·e), both clipped to [0, cap], where the cap is the KL schedule's β at that step: a KL above
    the target raises β, one below lowers it, and the schedule still bounds β (a warm-up composes). β may fall below
    1, so a target above the rate that the model would choose at β = 1 is held; one below it is held only up to
    `--kl_weight` (the cap). The state is the integral term alone: it is saved in every checkpoint
    (`CHECKPOINT_FILE`) and loaded on resume, so a resumed run continues exactly.

    Args:
        target (`float`): the rate to hold, in nats per sentence.
        kp (`float`): the proportional gain.
        ki (`float`): the integral gain (β moves by at most `ki` per step from the integral term when the KL is
            twice the target).
    """

    CHECKPOINT_FILE = "kl_controller.json"

    def __init__(self, target: float, kp: float, ki: float):
        self.target, self.kp, self.ki = target, kp, ki
        self.integral = 0.0

    def beta(self, kl: float, cap: float) -> float:
        """
        β for this batch from its KL, updating the integral term.

        Args:
            kl (`float`): the batch's KL, nats per sentence (averaged across processes).
            cap (`float`): the largest β allowed now (the schedule's).
        """
        error = (kl - self.target) / self.target
        self.integral = min(max(self.integral + self.ki * error, -cap), cap)
        return min(max(self.integral + self.kp * error, -cap), cap)

    def state_dict(self) -> dict[str, float]:
        """What a checkpoint keeps (the settings too, so that a resume with other settings is caught)."""
        return {"target_kl": self.target, "kl_control_kp": self.kp, "kl_control_ki": self.ki, "integral": self.integral}

    def load_state_dict(self, state: dict[str, float], source: str) -> None:
        """
        Continue from a checkpoint's state.

        Args:
            state (`dict`): what [`state_dict`] gave.
            source (`str`): where it was read (named in the error).
        """
        for name, value in (("target_kl", self.target), ("kl_control_kp", self.kp), ("kl_control_ki", self.ki)):
            if state.get(name) != value:
                raise ValueError(
                    f"{source} was written with --{name} {state.get(name)}, and this run has --{name} {value}: resume "
                    "with the same rate-control flags, or start a new run (--model_name_or_path) from that checkpoint."
                )
        self.integral = float(state["integral"])


__all__ = ["KL_SCHEDULES", "KLController", "kl_weight_at"]
