"""`VAETrainer`: a `Trainer` whose loss is rec + β·KL with an annealed β, and its `VAETrainingArguments`.

β is a pure function of the global step (and of the run's total steps), so a resumed run continues the schedule
exactly. The loss components are summed on every step and averaged, across processes, when the Trainer logs
(as sentence-transformers does); evaluation always uses β = 1, so `eval_loss` is the negative ELBO.
"""

import contextlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import TrainOutput

from ..corpora.streaming import rank_shard
from ..modeling_vaelm import gaussian_kl
from ..runtime.threads import num_threads_field
from .kl_schedules import KL_SCHEDULES, KLController, kl_weight_at
from .progress_log import ProgressLog, bars_by_default, install
from .record import write_training_card
from .weight_averaging import WeightAveragingCallback

logger = logging.getLogger(__name__)


# What q(z|x) owns alone (`--freeze_decoder` trains these): the embeddings are the decoder's too.
ENCODER_OWN_PREFIXES = ("encoder.", "posterior.", "posterior_mean_norm.", "posterior_mean_shift")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; raised before the bad step updates the weights."""


@dataclass
class VAETrainingArguments(TrainingArguments):
    """
    `TrainingArguments` plus the KL term's schedule, with defaults suited to sentence VAEs.

    Args:
        kl_schedule (`str`, *optional*, defaults to `"sigmoid_pivot"`):
            How β grows with the step t. `sigmoid_pivot` (the original script): 1/(1+exp(-(t-pivot)/pivot·k)) with
            k = `annealing_steepness`; `logistic` (Bowman et al.): 1/(1+exp(-r·(t-pivot))) with r =
            `annealing_rate`; `linear`: t/pivot, capped at 1; `cyclical` (Fu et al. 2019): `kl_cycles` linear
            ramps over the run, each rising during the first `kl_cycle_ratio` of its cycle, then flat at 1;
            `constant`: `kl_weight` throughout.
        annealing_pivot (`int`, *optional*):
            The schedule's pivot step; half of the run's steps when omitted.
        annealing_steepness (`float`, *optional*, defaults to 100):
            k of `sigmoid_pivot`; with 100, β is ≈0 before the pivot and ≈1 at 1.05·pivot.
        annealing_rate (`float`, *optional*, defaults to 0.0025):
            r of `logistic` (Bowman et al. 2016 used 0.0025).
        kl_cycles (`int`, *optional*, defaults to 4): number of cycles of `cyclical`.
        kl_cycle_ratio (`float`, *optional*, defaults to 0.5): rising part of each cycle of `cyclical`.
        kl_weight (`float`, *optional*, defaults to 1.0): β of `constant`, and the cap of every schedule.
        free_bits (`float`, *optional*, defaults to 0.0):
            Per-dimension KL floor λ in nats (Kingma et al. 2016): the KL term is Σ_d max(λ, mean over the batch of
            KL_d). 0 turns it off.
        target_kl (`float`, *optional*, defaults to 0.0):
            Hold the KL term at this many nats per sentence: β is set by a PI controller on the batch KL
            ([`~vaelm.training.kl_schedules.KLController`]), capped by the schedule's β. 0 turns it off. Not with
            `free_bits` (both set the rate).
        kl_control_kp (`float`, *optional*, defaults to 0.1): the controller's proportional gain.
        kl_control_ki (`float`, *optional*, defaults to 0.002): the controller's integral gain (per step).
        ema_decay (`float`, *optional*, defaults to 0.0):
            Weight averaging: keep an exponential moving average of the weights with this decay (e.g. 0.999) and
            evaluate and save the averaged weights ([`~vaelm.training.weight_averaging.WeightAveragingCallback`]). 0 turns it
            off.
        freeze_decoder (`bool`, *optional*, defaults to `False`):
            Train the encoder alone (its recurrent layer and the posterior heads) of a trained model: the decoder,
            the prior and the embeddings it shares stay fixed and run without dropout, as they do when evaluated.
            With `--kl_schedule constant --free_bits 0` the encoder fits the ELBO of the decoder as it is, which
            tightens the bound and the importance-sampled NLL (q(z|x) is the proposal) without changing p(x); He et
            al. (2019) found the encoder lags behind its decoder.
        num_threads (`int`, *optional*):
            CPU threads for torch; see [`vaelm.runtime.threads.choose_num_threads`] for the default.
        batch_size (`int`, *optional*):
            The original script's name for `per_device_train_batch_size`.

    With no GPU present, `use_cpu` is switched on, so that `accelerate launch` on a CPU machine forms one
    multi-process (gloo) job.
    """

    kl_schedule: str = field(
        default="sigmoid_pivot", metadata={"help": "KL annealing schedule.", "choices": list(KL_SCHEDULES)}
    )
    annealing_pivot: int | None = field(
        default=None, metadata={"help": "Pivot step of the KL schedule (default: half the run)."}
    )
    annealing_steepness: float = field(default=100.0, metadata={"help": "k of sigmoid_pivot."})
    annealing_rate: float = field(default=0.0025, metadata={"help": "Rate of the logistic schedule."})
    kl_cycles: int = field(default=4, metadata={"help": "Cycles of the cyclical schedule."})
    kl_cycle_ratio: float = field(default=0.5, metadata={"help": "Rising fraction of each cycle."})
    kl_weight: float = field(default=1.0, metadata={"help": "β of the constant schedule and the cap of all."})
    free_bits: float = field(default=0.0, metadata={"help": "Per-dimension KL floor in nats (0: off)."})
    target_kl: float = field(
        default=0.0,
        metadata={
            "help": "Hold the KL at this many nats per sentence with a PI controller on β, capped by the schedule's β "
            "(0: off; not with --free_bits)."
        },
    )
    kl_control_kp: float = field(default=0.1, metadata={"help": "Proportional gain of the --target_kl controller."})
    kl_control_ki: float = field(default=0.002, metadata={"help": "Integral gain of the --target_kl controller."})
    ema_decay: float = field(
        default=0.0,
        metadata={
            "help": "Evaluate and save an exponential moving average of the weights with this decay, e.g. 0.999, warmed up as min(decay, (1 + step) / (10 + step)) (0: off)."
        },
    )
    freeze_decoder: bool = field(
        default=False,
        metadata={
            "help": "Train only the encoder of a trained model (--model_name_or_path): the decoder and the embeddings stay fixed and run without dropout. With --kl_schedule constant --free_bits 0 it tightens the ELBO and the IW-NLL estimate; p(x) does not change."
        },
    )
    num_threads: int | None = num_threads_field()
    # Defaults that differ from TrainingArguments: the sentence-VAE recipe and a quiet, local run.
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Sentences per batch and device."})
    per_device_eval_batch_size: int = field(default=256, metadata={"help": "Sentences per evaluation batch."})
    max_grad_norm: float = field(default=5.0, metadata={"help": "Gradient clipping norm."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "Sampler: group_by_length keeps padding rare.",
            "choices": ["random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    logging_steps: float = field(default=100, metadata={"help": "Log every N steps."})
    disable_tqdm: bool | None = field(
        default=None,
        metadata={
            "help": "true: no progress bars; false: bars. Unset, bars are drawn only when stderr is a "
            "terminal. The periodic log lines are written either way."
        },
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "The collator picks its columns itself."})
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "Every parameter gets a gradient."}
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "Alias of --per_device_train_batch_size (the original flag)."}
    )

    def __post_init__(self):
        if self.batch_size is not None:
            self.per_device_train_batch_size = self.batch_size
        if self.disable_tqdm is None:  # carriage-return bars only on a terminal, never in a redirected log
            self.disable_tqdm = not bars_by_default()
        for name, value in (
            ("batch_size", self.per_device_train_batch_size),
            ("per_device_eval_batch_size", self.per_device_eval_batch_size),
        ):
            if value < 1:
                raise ValueError(f"--{name} must be a positive integer, got {value}.")
        if self.learning_rate < 0:
            raise ValueError(f"--learning_rate must be >= 0, got {self.learning_rate}.")
        for name in getattr(self, "_VALID_DICT_FIELDS", ["lr_scheduler_kwargs"]):  # the Trainer's error names no flag
            value = getattr(self, name, None)
            if isinstance(value, str) and value.lstrip().startswith("{"):
                try:
                    json.loads(value)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"--{name} takes a JSON object, such as '{{\"num_cycles\": 4}}' (double quotes inside, single "
                        f"quotes around it in a shell); {value!r} is not one: {error}."
                    ) from None
        if not self.use_cpu and not (torch.cuda.is_available() or torch.backends.mps.is_available()):
            # Without use_cpu, `accelerate launch --multi_gpu` on a CPU machine runs N unrelated single processes.
            self.use_cpu = True
        super().__post_init__()
        if self.kl_schedule not in KL_SCHEDULES:
            raise ValueError(f"--kl_schedule must be one of {tuple(KL_SCHEDULES)}, got {self.kl_schedule!r}.")
        if self.annealing_pivot is not None and self.annealing_pivot < 1:
            raise ValueError(f"--annealing_pivot must be a positive step count, got {self.annealing_pivot}.")
        if self.free_bits < 0:
            raise ValueError(f"--free_bits must be >= 0, got {self.free_bits}.")
        if self.target_kl < 0:
            raise ValueError(f"--target_kl must be >= 0 (0: off), got {self.target_kl}.")
        if self.target_kl > 0 and self.free_bits > 0:
            raise ValueError(
                f"--target_kl {self.target_kl} and --free_bits {self.free_bits} both set the rate: give one (--target_kl "
                "holds the KL at a number of nats per sentence; --free_bits sets a floor per dimension)."
            )
        if self.kl_control_kp < 0 or self.kl_control_ki < 0:
            raise ValueError("--kl_control_kp and --kl_control_ki must be >= 0.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"--ema_decay must lie in [0, 1) (0: off), got {self.ema_decay}.")


def freeze_all_but_encoder(model: torch.nn.Module) -> None:
    """
    Leave only the encoder's own weights ([`ENCODER_OWN_PREFIXES`]) trainable (`--freeze_decoder`).

    Raises:
        `ValueError`: for a model without an encoder (a plain language model).
    """
    trainable = {name for name, _ in model.named_parameters() if name.startswith(ENCODER_OWN_PREFIXES)}
    if not trainable:
        raise ValueError(
            "--freeze_decoder trains the encoder, and this model has none (it was built with --latent_size 0)."
        )
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in trainable)
    logger.info(
        "--freeze_decoder: training the encoder's %d tensors (%s parameters); the decoder and embeddings stay fixed.",
        len(trainable),
        f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,}",
    )


def follow_umask(paths) -> None:
    """
    Give files written private (mode 0600: safetensors writes its files so) the mode every other file gets, 0666
    less the umask, so that a model folder's weights are as readable as its config.

    Args:
        paths: the files to fix (an iterable of paths).
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in paths:
        if path.is_file() and path.stat().st_mode & 0o777 == 0o600:
            path.chmod(0o666 & ~umask)


class VAETrainer(Trainer):
    """
    A `Trainer` for [`VAELMModel`]: loss = rec + β·KL (with optional free bits), word dropout from the model, and
    `rec_loss`, `kl`, `beta` logged beside `loss`; evaluation logs `eval_rec_loss`, `eval_kl`, `eval_elbo` and
    `eval_elbo_ppl` (β = 1, sums over sentences and tokens, not means of batch means).

    Args:
        args ([`VAETrainingArguments`]): training arguments with the KL schedule.
        started_from (`dict`, *optional*): what the model was loaded or initialised from
            ([`vaelm.training.record.starting_model`]); kept in the training record, so that the card gives every stage.
        *positional, **keyword: as for `Trainer`.
    """

    def __init__(self, *positional, started_from: dict | None = None, **keyword):
        super().__init__(*positional, **keyword)
        self.started_from = started_from  # what the model was loaded or initialised from (the card's first stages)
        self._sums = {"train": self._zero_sums(), "eval": self._zero_sums()}
        self.weight_averaging = WeightAveragingCallback(self.args.ema_decay) if self.args.ema_decay > 0 else None
        if self.weight_averaging is not None:
            self.add_callback(self.weight_averaging)
        if self.args.freeze_decoder:
            freeze_all_but_encoder(self.model)
        args = self.args
        self.kl_controller = (
            KLController(args.target_kl, args.kl_control_kp, args.kl_control_ki) if args.target_kl > 0 else None
        )
        self.progress_log = ProgressLog()  # readable log lines instead of printed dictionaries; bars on a terminal
        install(self, self.progress_log)

    def evaluate(self, *positional, **keyword) -> dict[str, float]:
        """
        `Trainer.evaluate`, of the averaged weights when `--ema_decay` is on. Every evaluation draws the same latent
        noise (seeded by `--seed` and the process index), so two checkpoints' ELBOs differ by what the weights do,
        not by the one z drawn per sentence (≈ 0.1 nats of noise on PTB's valid split), and the best checkpoint is
        chosen on a paired comparison. The training's random state is left as it was.
        """
        with self._fixed_evaluation_noise():
            if self.weight_averaging is None:
                return super().evaluate(*positional, **keyword)
            with self.weight_averaging.swapped_in(self.model):
                return super().evaluate(*positional, **keyword)

    @contextlib.contextmanager
    def _fixed_evaluation_noise(self):
        device = self.args.device
        devices = (
            [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        )
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.args.seed + self.args.process_index)
            yield

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """`Trainer.save_model`; the averaged weights when `--ema_decay` is on, except in checkpoints (raw weights)."""
        if self.weight_averaging is None or _internal_call:
            return super().save_model(output_dir, _internal_call)
        with self.weight_averaging.swapped_in(self.model):
            return super().save_model(output_dir, _internal_call)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            follow_umask(Path(output_dir or self.args.output_dir).glob("*.safetensors"))

    def _load_best_model(self) -> None:
        # The best checkpoint was chosen on the averaged weights, so the model becomes that checkpoint's average.
        super()._load_best_model()
        if self.weight_averaging is not None:
            self.weight_averaging.load(self.state.best_model_checkpoint, self.model)
            self.weight_averaging.apply_to(self.model)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        # A checkpoint's resumable state; written before trainer_state.json, which marks a checkpoint complete.
        super()._save_optimizer_and_scheduler(output_dir)
        if self.weight_averaging is not None and self.args.should_save:
            self.weight_averaging.save(output_dir)
            follow_umask(Path(output_dir).glob("*.safetensors"))
        if self.kl_controller is not None and self.args.should_save:
            path = Path(output_dir) / KLController.CHECKPOINT_FILE
            path.write_text(json.dumps(self.kl_controller.state_dict(), indent=2) + "\n")

    def get_train_dataloader(self):
        """
        With a streamed (`datasets.IterableDataset`) train set and several processes, each rank reads its own shard
        (`split_dataset_by_node`) into a plain `DataLoader`: one epoch sees every sentence once across ranks, and no
        rank reads what another one trains on (accelerate would otherwise read the stream on every rank, or on rank
        0 only, and hand out batches).
        """
        if not isinstance(self.train_dataset, datasets.IterableDataset) or self.args.world_size <= 1:
            return super().get_train_dataloader()
        shard = rank_shard(self.train_dataset, self.args.process_index, self.args.world_size)
        return DataLoader(
            shard,
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )

    def train(self, resume_from_checkpoint: str | bool | None = None, *positional, **keyword) -> TrainOutput:
        """
        `Trainer.train`, except that resuming from a checkpoint already at `max_steps` takes no step.

        The Trainer's loop checks `max_steps` only after a step, so it would take one more (at learning rate 0 under
        the default linear schedule) and end at max_steps + 1. Instead, the checkpoint's weights and state are
        loaded and the loop is skipped.
        """
        resumed = isinstance(resume_from_checkpoint, (str, Path))
        self.progress_log.resumed_from = str(resume_from_checkpoint) if resumed else None
        if isinstance(resume_from_checkpoint, (str, Path)) and self.weight_averaging is not None:
            self.weight_averaging.load(resume_from_checkpoint, self.model)
        if resumed and self.kl_controller is not None:
            path = Path(resume_from_checkpoint) / KLController.CHECKPOINT_FILE
            if not path.is_file():
                raise ValueError(
                    f"{resume_from_checkpoint} has no {KLController.CHECKPOINT_FILE}: it was trained without "
                    "--target_kl. Resume without it, or start a new run from it with --model_name_or_path."
                )
            self.kl_controller.load_state_dict(json.loads(path.read_text()), str(path))
        if isinstance(resume_from_checkpoint, (str, Path)) and self.args.max_steps > 0:
            state = TrainerState.load_from_json(str(Path(resume_from_checkpoint) / TRAINER_STATE_NAME))
            if state.global_step >= self.args.max_steps:
                logger.info(
                    "%s is at step %d, and --max_steps is %d: nothing left to train.",
                    resume_from_checkpoint,
                    state.global_step,
                    self.args.max_steps,
                )
                self._load_from_checkpoint(str(resume_from_checkpoint))
                if self.weight_averaging is not None:
                    self.weight_averaging.apply_to(self.model)
                self.state = state
                losses = [entry["train_loss"] for entry in state.log_history if "train_loss" in entry]
                return TrainOutput(state.global_step, losses[-1] if losses else float("nan"), {})
        return super().train(resume_from_checkpoint, *positional, **keyword)

    def _zero_sums(self) -> torch.Tensor:
        # rec, kl, beta, steps, sentences, tokens, bag-of-words loss
        return torch.zeros(7, dtype=torch.float64, device=self.args.device)

    def _batch_kl(self, kl: torch.Tensor) -> float:
        """The batch KL that the rate controller reads: the mean over processes, so that every rank sets one β."""
        kl = kl.detach().float()
        if self.accelerator.num_processes > 1:
            kl = self.accelerator.reduce(kl.clone(), reduction="mean")
        return float(kl)

    def kl_weight(self) -> float:
        """β of the current global step."""
        return kl_weight_at(self.state.global_step, self.args, self.state.max_steps or None)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        training = model.training
        if training and self.args.freeze_decoder:
            # The fixed decoder as it is evaluated: no dropout, no word dropout. cuDNN's RNN backward refuses eval
            # mode, and the graph keeps the implementation chosen here, so its backward runs without cuDNN too.
            model.eval()
            try:
                with torch.backends.cudnn.flags(enabled=False):
                    outputs = model(**inputs, return_logits=False)
            finally:
                model.train()
        else:
            outputs = model(**inputs, return_logits=False)
        sentences = inputs["input_ids"].size(0)
        tokens = inputs["attention_mask"].sum() - sentences  # n + 1 scored tokens per sentence
        if training:
            beta = self.kl_weight()
            if self.kl_controller is not None:
                beta = self.kl_controller.beta(self._batch_kl(outputs.kl), cap=beta)
            if self.args.free_bits > 0:
                kl_term = gaussian_kl(outputs.mu, outputs.logvar).mean(0).clamp(min=self.args.free_bits).sum()
            else:
                kl_term = outputs.kl
            loss = outputs.rec_loss + beta * kl_term
            if outputs.bow_loss is not None:  # a training signal only: evaluation's loss is the ELBO
                loss = loss + self.model.config.bow_loss_weight * outputs.bow_loss
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"The training loss became {loss.item()} at step {self.state.global_step + 1} "
                    f"(rec {outputs.rec_loss.item():.4g}, KL {outputs.kl.item():.4g}, β {beta:.3g}). Lower "
                    "--learning_rate or --max_grad_norm, or train in fp32; the last checkpoint saved before this "
                    "step is intact and --resume_from_checkpoint true continues from it."
                )
            bow = outputs.bow_loss.detach() if outputs.bow_loss is not None else 0.0
            values = [outputs.rec_loss.detach(), outputs.kl.detach(), beta, 1.0, sentences, tokens, bow]
            self._sums["train"] += torch.stack(
                [torch.as_tensor(v, dtype=torch.float64, device=self.args.device) for v in values]
            )
        else:
            loss = outputs.loss
            values = [outputs.rec_per_sentence.sum(), outputs.kl * sentences, 0.0, 1.0, sentences, tokens, 0.0]
            self._sums["eval"] += torch.stack(
                [torch.as_tensor(v, dtype=torch.float64, device=self.args.device) for v in values]
            )
        return (loss, outputs) if return_outputs else loss

    def create_model_card(self, *positional, **keyword) -> None:
        """
        Write vaelm's model card (and training record and curves) instead of the Trainer's generic draft, so that
        `--push_to_hub` uploads what `vaelm-push` does. The Trainer's arguments (`model_name`, `tags`, …) are ignored.
        """
        if self.is_world_process_zero():
            write_training_card(self.args.output_dir, self)

    def _reduced_sums(self, phase: str) -> list[float]:
        sums = self._sums[phase]
        if self.accelerator.num_processes > 1:
            sums = self.accelerator.reduce(sums.clone(), reduction="sum")
        self._sums[phase] = self._zero_sums()
        return sums.tolist()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            rec, kl, beta, steps, _, _, bow = self._reduced_sums("train")
            if steps:
                logs.update(rec_loss=round(rec / steps, 4), kl=round(kl / steps, 4), beta=round(beta / steps, 6))
                if self.kl_controller is not None:
                    logs.update(target_kl=self.kl_controller.target)
                if self.model.config.bow_loss_weight > 0:
                    logs.update(bow_loss=round(bow / steps, 4))
        # Evaluation metrics come as {prefix}loss, {prefix}runtime, …; train_runtime closes training instead.
        prefix = next(
            (key[: -len("runtime")] for key in logs if key.endswith("_runtime") and key != "train_runtime"), None
        )
        if prefix is not None and f"{prefix}loss" in logs:
            rec, kl, _, _, sentences, tokens, _ = self._reduced_sums("eval")
            if sentences:
                elbo = (rec + kl) / sentences
                logs.update(
                    {
                        f"{prefix}rec_loss": round(rec / sentences, 4),
                        f"{prefix}kl": round(kl / sentences, 4),
                        f"{prefix}elbo": round(elbo, 4),
                        f"{prefix}elbo_ppl": round(math.exp(min((rec + kl) / tokens, 700)), 3),
                    }
                )
        super().log(logs, start_time)


__all__ = ["NonFiniteLossError", "VAETrainer", "VAETrainingArguments", "follow_umask"]
