"""A training log people can read, the same on a terminal and in a file (a cluster job's log).

[`ProgressLog`] is a `TrainerCallback` that writes, through the `logging` module:

- a first block: the output folder, the steps, the device, threads and processes, when the logs, evaluations and
  checkpoints come; after a resume, `resumed from checkpoint-N (step N of M)`;
- a line at every logging interval: the step, the loss and its parts, steps per second averaged over a window of
  recent steps (not since the start: evaluations, checkpoints and the first step are left out of it, so one slow
  moment does not swing the estimate), the time left (ETA, with the evaluations and checkpoints still to come) and the
  wall-clock finish, and when the next checkpoint comes; the ETA includes the final evaluation
  ([`FinalEvaluationPlan`]);
- one line per evaluation, and one when training ends ("training done", or "training stopped" when it ended before
  its last step);
- the final evaluation: announced with its size and an estimate, progress lines while it runs
  ([`FinalEvaluationProgress`]), its figures in one line;
- the closing lines ([`closing_lines`]): where the model is, the file that holds every figure, and the commands
  that try the model.

These lines replace the Trainer's printed dictionaries (every logged value is still in `trainer_state.json`).
Progress bars (tqdm: the Trainer's, `datasets`', the Hub's) are shown only when stderr is a terminal
([`bars_by_default`]); [`progress_output`] turns them off otherwise, and on a terminal routes log lines around the
bars.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import torch
from transformers import ProgressCallback, TrainerCallback
from transformers.trainer_callback import PrinterCallback

logger = logging.getLogger(__name__)

# Steps per second are averaged over the last WINDOW_INTERVALS logging intervals, and at least MIN_WINDOW_STEPS steps.
WINDOW_INTERVALS = 5
MIN_WINDOW_STEPS = 200
# How a training log line names the values it knows (anything else is written as `key value`).
TRAIN_NAMES = {
    "loss": "loss",
    "rec_loss": "rec",
    "kl": "KL",
    "target_kl": "KL target",
    "beta": "β",
    "bow_loss": "BoW",
    "grad_norm": "grad norm",
    "learning_rate": "lr",
    "epoch": "epoch",
}
EVAL_NAMES = {"elbo": "ELBO", "rec_loss": "rec", "kl": "KL", "elbo_ppl": "PPL", "loss": "loss"}
# A training step (forward and backward) costs about three forward passes; the final evaluation decodes each
# sentence K times, forward only, so it costs about sentences × K / (FORWARD_PASSES_PER_STEP × batch size) steps.
FORWARD_PASSES_PER_STEP = 3
# Progress lines of the final evaluation (where no bar is drawn) come at most this many seconds apart.
FINAL_PROGRESS_SECONDS = 30.0
# Throughput figures the Trainer adds to its logs; the log lines give their own.
THROUGHPUT_KEYS = ("runtime", "samples_per_second", "steps_per_second")


def bars_by_default() -> bool:
    """Whether progress bars are wanted when `--disable_tqdm` is not given: only when stderr is a terminal."""
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


@contextlib.contextmanager
def progress_output(bars: bool) -> Iterator[None]:
    """
    Within this context, progress bars are drawn only when `bars` is true.

    Without bars, those of `datasets` (`map`, `filter`), transformers (weights written) and the Hub (downloads) are
    turned off, and turned back on afterwards if they were on. With bars, log lines of the root and transformers
    loggers are written above the bars (`tqdm.write`) instead of into them.

    Args:
        bars (`bool`): draw progress bars (the Trainer's `not disable_tqdm`).
    """
    if bars:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(loggers=[logging.root, logging.getLogger("transformers")], tqdm_class=tqdm):
            yield
        return
    import datasets
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as transformers_logging

    switches = [
        (
            datasets.utils.logging.is_progress_bar_enabled(),
            datasets.disable_progress_bars,
            datasets.enable_progress_bars,
        ),
        (
            transformers_logging.is_progress_bar_enabled(),
            transformers_logging.disable_progress_bar,
            transformers_logging.enable_progress_bar,
        ),
        (not hub_utils.are_progress_bars_disabled(), hub_utils.disable_progress_bars, hub_utils.enable_progress_bars),
    ]
    for _, disable, _ in switches:
        disable()
    try:
        yield
    finally:
        for was_on, _, enable in switches:
            if was_on:
                enable()


# ------------------------------------------------------------------------------------------------ formatting
def format_duration(seconds: float) -> str:
    """`3 h 05 min`, `4 min 20 s`, `12 s`: a duration as people read it.

    Args:
        seconds (`float`): the duration.
    """
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def format_clock(moment: datetime, now: datetime | None = None) -> str:
    """`14:05`, or `Fri 03:40` when `moment` falls on another day than `now`.

    Args:
        moment (`datetime`): the time to write.
        now (`datetime`, *optional*): today's reference (the current time by default).
    """
    now = now or datetime.now()
    return moment.strftime("%H:%M") if moment.date() == now.date() else moment.strftime("%a %H:%M")


def format_value(value) -> str:
    """A logged value with 4 significant digits (`95.31`, `0.0132`, `1e-03`), other types as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or value == 0 or not math.isfinite(value):
        return str(value)
    return f"{value:.2e}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{value:.4g}"


def describe(logs: dict, names: dict[str, str], prefix: str = "") -> str:
    """`loss 95.31, rec 93.2, …`: the values of `logs` under `prefix`, known names first, throughput left out."""
    values = {key[len(prefix) :]: value for key, value in logs.items() if key.startswith(prefix)}
    known = [f"{names[key]} {format_value(values[key])}" for key in names if key in values]
    others = [
        f"{key} {format_value(value)}"
        for key, value in values.items()
        if key not in names and key not in THROUGHPUT_KEYS and not key.startswith("total_flos")
    ]
    return ", ".join(known + others)


def every_n_steps(strategy, steps: float | None, steps_per_epoch: float | None) -> float | None:
    """How many steps apart an event of `strategy` (`steps`, `epoch`, `no`, `best`) comes, `None` when never."""
    if strategy == "steps" and steps:
        return steps
    if strategy == "epoch" and steps_per_epoch:
        return steps_per_epoch
    return None


def events_between(every: float | None, start: int, end: int) -> int:
    """How many multiples of `every` lie in (start, end]."""
    if not every:
        return 0
    return max(0, math.floor(end / every) - math.floor(start / every))


# ------------------------------------------------------------------------------------------------ final evaluation
class FinalEvaluationPlan:
    """
    The size of a run's final evaluation (`--final_eval_iw_samples`), and the time it will take, estimated from the
    training steps' pace: K decoder passes per sentence, forward only, against a step's forward and backward pass
    over a batch ([`FORWARD_PASSES_PER_STEP`]).

    Args:
        sentences (`int`): the validation sentences it scores.
        iw_samples (`int`): importance samples K per sentence.
        batch_size (`int`): sentences per training step (all processes together).
    """

    def __init__(self, sentences: int, iw_samples: int, batch_size: int) -> None:
        self.sentences, self.iw_samples, self.batch_size = sentences, iw_samples, max(batch_size, 1)

    def step_equivalents(self) -> float:
        """The final evaluation's cost in training steps."""
        return self.sentences * self.iw_samples / (FORWARD_PASSES_PER_STEP * self.batch_size)

    def seconds(self, steps_per_second: float | None) -> float | None:
        """The estimated duration at `steps_per_second`, `None` when no step was timed."""
        return self.step_equivalents() / steps_per_second if steps_per_second else None

    def announcement(self, steps_per_second: float | None, now: datetime | None = None) -> str:
        """`Final evaluation: the full protocol on 3,370 valid sentences with K = 20 importance samples, about …`."""
        line = (
            f"Final evaluation: the full protocol on {self.sentences:,} valid sentences with K = {self.iw_samples} "
            "importance samples"
        )
        seconds = self.seconds(steps_per_second)
        if seconds is None:
            return line + "."
        now = now or datetime.now()
        return (
            f"{line}, about {format_duration(seconds)} (done ≈ {format_clock(now + timedelta(seconds=seconds), now)})."
        )


class FinalEvaluationProgress:
    """
    Progress lines of the final evaluation for a log without bars: `final evaluation: 1,280/3,370 sentences (38 %),
    ETA 1 min 20 s`, at most every `interval` seconds, and always when it completes.

    Args:
        interval (`float`, *optional*, defaults to `FINAL_PROGRESS_SECONDS`): the least time between two lines.
    """

    def __init__(self, interval: float = FINAL_PROGRESS_SECONDS) -> None:
        self.interval = interval
        self.started = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.interval:
            return
        self.last = now
        took = now - self.started
        line = f"final evaluation: {done:,}/{total:,} sentences ({100 * done / max(total, 1):.0f} %)"
        if done < total and done > 0:
            line += f", ETA {format_duration(took * (total - done) / done)}"
        else:
            line += f" in {format_duration(took)}"
        logger.info(line)


def final_line(metrics: dict) -> str:
    """`valid (K = 20, 3,370 sentences): IW-NLL 117.5 (PPL 215), ELBO 119.9, KL 5.77, MI 2.97, AU 32/32`.

    Args:
        metrics (`dict`): the final evaluation's metrics (`final_nll`, `final_ppl`, …).
    """
    value = metrics.get
    parts = [f"IW-NLL {format_value(value('final_nll'))} (PPL {format_value(value('final_ppl'))})"]
    parts += [
        f"{name} {format_value(value(key))}"
        for name, key in (("ELBO", "final_elbo"), ("KL", "final_kl"), ("MI", "final_mi"))
        if key in metrics
    ]
    if "final_au" in metrics:
        size = value("final_latent_size")
        parts.append(f"AU {value('final_au')}" + (f"/{size}" if size is not None else ""))
    sentences = value("final_sentences")
    size = f", {sentences:,} sentences" if isinstance(sentences, int) else ""
    return f"valid (K = {value('final_iw_samples')}{size}): {', '.join(parts)}"


def closing_lines(output_dir: str, metrics: dict, metrics_file: str | Path, data_flags: str) -> list[str]:
    """
    The last lines of a run: where the model is, its validation figures in one line, the file that holds them all,
    and the commands that try the model.

    Args:
        output_dir (`str`): the run's `--output_dir`, as given.
        metrics (`dict`): the final metrics (`final_*` from the full protocol, else the Trainer's `eval_*`).
        metrics_file (`str` or `Path`): the JSON file they were written to.
        data_flags (`str`): the data flags of `vaelm-evaluate` for the run's corpus (`--dataset ptb`).
    """
    import shlex

    model = shlex.quote(str(output_dir))
    if "final_nll" in metrics:
        figures = final_line(metrics)
    else:
        figures = "valid (the Trainer's evaluation): " + describe(metrics, EVAL_NAMES, "eval_")
    return [
        f"The model is in {Path(output_dir).resolve()}; every figure is in {metrics_file}.",
        f"{figures}.",
        "Try it:",
        f"  vaelm-sample --model {model} --num 5 --strategy sample --top_p 0.9",
        f"  vaelm-evaluate --model {model} {data_flags} --split test",
    ]


# ------------------------------------------------------------------------------------------------ the callback
class ProgressLog(TrainerCallback):
    """
    The readable training log described in this module's docstring (written by the main process only).

    Args:
        window_steps (`int`, *optional*): steps that the steps-per-second figure averages over; by default five
            logging intervals, at least 200 steps.
        configuration_file (`str` or `Path`, *optional*): where the run's full configuration was written, named in
            the first block.

    Attributes:
        resumed_from (`str`, *optional*): the checkpoint this run resumes from (set by [`VAETrainer.train`]).
        final_evaluation ([`FinalEvaluationPlan`], *optional*): the evaluation that follows training, counted in the
            ETA (set by the training job).
    """

    def __init__(self, window_steps: int | None = None, configuration_file: str | Path | None = None) -> None:
        self.window_steps = window_steps
        self.configuration_file = configuration_file
        self.resumed_from: str | None = None
        self.final_evaluation: FinalEvaluationPlan | None = None
        self._reset()

    def _reset(self) -> None:
        self._durations: deque[float] = deque()
        self._mark = time.monotonic()  # the end of the last step, evaluation or save
        self._first_step_done = False
        self._eval_seconds: list[float] = []
        self._save_seconds: list[float] = []
        self._start_step = 0

    # ------------------------------------------------------------------------------------------ hooks
    def on_train_begin(self, args, state, control, **kwargs):
        self._reset()
        self._start_step = state.global_step
        if self.window_steps is None:
            self.window_steps = max(MIN_WINDOW_STEPS, WINDOW_INTERVALS * int(state.logging_steps or 1))
        if state.is_world_process_zero:
            for line in self.first_block(args, state):
                logger.info(line)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if self._first_step_done:  # the first step of a run (or of a resume) also sets things up: left out
            self._durations.append(now - self._mark)
            while len(self._durations) > self.window_steps:
                self._durations.popleft()
        self._first_step_done = True
        self._mark = now

    def on_evaluate(self, args, state, control, **kwargs):
        now = time.monotonic()
        self._eval_seconds.append(now - self._mark)
        self._mark = now

    def on_save(self, args, state, control, **kwargs):
        now = time.monotonic()
        self._save_seconds.append(now - self._mark)
        self._mark = now

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        prefix = next(
            (key[: -len("runtime")] for key in logs if key.endswith("_runtime") and key != "train_runtime"), None
        )
        if "loss" in logs:
            logger.info(self.progress_line(args, state, logs))
        elif "final_nll" in logs:
            return  # the full protocol's figures: the closing lines give them (closing_lines)
        elif prefix is not None:
            took = logs.get(f"{prefix}runtime")
            logger.info(
                "evaluation at step %s: %s%s",
                f"{state.global_step:,}",
                describe(logs, EVAL_NAMES, prefix),
                f" ({format_duration(took)})" if took is not None else "",
            )
        elif "train_runtime" in logs:
            steps = state.global_step - self._start_step
            runtime = logs["train_runtime"]
            rate = f", {steps / runtime:.2f} steps/s overall" if runtime > 0 and steps > 0 else ""
            loss = f"; mean training loss {format_value(logs['train_loss'])}" if "train_loss" in logs else ""
            # Before its last step, training was stopped (an interruption, early stopping): not "done".
            step = f"{state.global_step:,}"
            head = (
                f"training done at step {step}"
                if state.global_step >= state.max_steps
                else (f"training stopped at step {step} of {state.max_steps:,}")
            )
            logger.info(
                "%s: %s steps in %s%s%s.",
                head,
                f"{steps:,}",
                format_duration(runtime),
                rate,
                loss,
            )
        else:
            logger.info("step %s: %s", f"{state.global_step:,}", describe(logs, {}))

    # ------------------------------------------------------------------------------------------ lines
    def first_block(self, args, state) -> list[str]:
        """The lines that open a run: where it writes, how long it is, where it runs, when things happen."""
        processes = args.world_size
        batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * processes
        batch_note = f"{batch:,} sentences per step"
        if processes > 1 or args.gradient_accumulation_steps > 1:
            batch_note += (
                f" ({args.per_device_train_batch_size} per device × {processes} processes × "
                f"{args.gradient_accumulation_steps} accumulated)"
            )
        lines = [f"Training into {Path(args.output_dir).resolve()}: {state.max_steps:,} steps, {batch_note}."]
        if state.global_step > 0:
            name = Path(self.resumed_from).name if self.resumed_from else f"checkpoint-{state.global_step}"
            lines.append(
                f"Resumed from {name} (step {state.global_step:,} of {state.max_steps:,}); "
                f"{state.max_steps - state.global_step:,} steps to go."
            )
        threads = f"{torch.get_num_threads()} CPU thread{'s' if torch.get_num_threads() != 1 else ''}"
        lines.append(f"Device: {args.device}, {threads}, world size {processes}.")
        schedule = [f"progress every {int(state.logging_steps):,} steps"] if args.logging_strategy == "steps" else []
        evaluations = self._every("eval", args, state)
        if evaluations:
            schedule.append(f"evaluation every {evaluations:,.0f} steps")
        saves = self._every("save", args, state)
        upcoming = self.next_checkpoint(args, state)
        first = "the next" if state.global_step > 0 else "the first"
        if args.save_strategy == "best" and upcoming is not None:
            schedule.append(
                f"a checkpoint at each evaluation that improves {args.metric_for_best_model}, "
                f"{first} possible at step {upcoming:,}"
            )
        elif saves and upcoming is not None:
            schedule.append(f"a checkpoint every {saves:,.0f} steps, {first} at step {upcoming:,}")
        elif args.save_strategy == "no":
            schedule.append("no checkpoints (--save_strategy no): the model is saved at the end")
        if schedule:
            lines.append(f"Schedule: {'; '.join(schedule)}.")
        if self.configuration_file is not None:
            lines.append(f"The run's full configuration: {self.configuration_file}")
        return lines

    def progress_line(self, args, state, logs: dict) -> str:
        """`step 200/30,000 (0.7 %): loss …; 4.82 steps/s; ETA 1 h 43 min (done ≈ 15:12); checkpoint-1000 in …`."""
        step, total = state.global_step, state.max_steps
        parts = [f"step {step:,}/{total:,} ({100 * step / max(total, 1):.1f} %): {describe(logs, TRAIN_NAMES)}"]
        rate = self.steps_per_second()
        if rate is None or step >= total:
            return parts[0]
        parts.append(f"{rate:.2f} steps/s")
        now = datetime.now()
        left = self.seconds_left(args, state, rate)
        parts.append(f"ETA {format_duration(left)} (done ≈ {format_clock(now + timedelta(seconds=left), now)})")
        upcoming = self.next_checkpoint(args, state)
        if upcoming is not None and upcoming > step:
            until = (upcoming - step) / rate
            parts.append(
                f"checkpoint-{upcoming} in {format_duration(until)} "
                f"(≈ {format_clock(now + timedelta(seconds=until), now)})"
            )
        return "; ".join(parts)

    # ------------------------------------------------------------------------------------------ estimates
    def steps_per_second(self) -> float | None:
        """Optimizer steps per second over the window of recent steps, `None` before any step was timed."""
        seconds = sum(self._durations)
        return len(self._durations) / seconds if self._durations and seconds > 0 else None

    def seconds_left(self, args, state, rate: float) -> float:
        """
        The remaining steps at `rate`, plus the evaluations and checkpoints still to come at their measured cost, plus
        the final evaluation.
        """
        step, total = state.global_step, state.max_steps
        left = (total - step) / rate
        if self.final_evaluation is not None:
            left += self.final_evaluation.seconds(rate)
        for kind, measured in (("eval", self._eval_seconds), ("save", self._save_seconds)):
            if measured:
                count = events_between(self._every(kind, args, state), step, total)
                if kind == "save" and args.save_strategy == "steps" and total % max(int(state.save_steps or 1), 1):
                    count += 1  # the Trainer also saves at the last step
                left += count * sum(measured) / len(measured)
        return left

    def next_checkpoint(self, args, state) -> int | None:
        """The step of the next checkpoint, `None` when the run saves none before the end."""
        every = self._every("save", args, state)
        if not every:
            return None
        upcoming = math.ceil((math.floor(state.global_step / every) + 1) * every)
        if upcoming <= state.max_steps:
            return upcoming
        # With --save_strategy steps, the Trainer also saves at the last step.
        return state.max_steps if args.save_strategy == "steps" and state.global_step < state.max_steps else None

    @staticmethod
    def _every(kind: str, args, state) -> float | None:
        epochs = state.num_train_epochs or 0
        steps_per_epoch = state.max_steps / epochs if epochs > 0 and state.max_steps > 0 else None
        if kind == "eval":
            return every_n_steps(args.eval_strategy, state.eval_steps, steps_per_epoch)
        strategy = args.save_strategy
        if strategy == "best":  # a checkpoint can come at every evaluation
            return every_n_steps(args.eval_strategy, state.eval_steps, steps_per_epoch)
        return every_n_steps(strategy, state.save_steps, steps_per_epoch)


class BarsOnly(ProgressCallback):
    """The Trainer's progress bars without the dictionaries it prints at every log ([`ProgressLog`] writes lines)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


def install(trainer, progress_log: ProgressLog) -> None:
    """
    Give `trainer` the readable log: `progress_log` instead of the Trainer's printed dictionaries, and its bars only
    when `args.disable_tqdm` is false.

    Args:
        trainer (`Trainer`): the trainer (its callbacks are changed in place).
        progress_log ([`ProgressLog`]): the callback that writes the log lines.
    """
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    if not trainer.args.disable_tqdm:
        trainer.add_callback(BarsOnly)
    trainer.add_callback(progress_log)


__all__ = [
    "BarsOnly",
    "FinalEvaluationPlan",
    "FinalEvaluationProgress",
    "ProgressLog",
    "bars_by_default",
    "closing_lines",
    "final_line",
    "format_clock",
    "format_duration",
    "install",
    "progress_output",
]
