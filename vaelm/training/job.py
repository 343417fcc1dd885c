"""The training job, end to end: data -> tokenizer -> model -> `VAETrainer` -> a Hub-ready model folder.

`vaelm-train` (`vaelm.cli.train`) parses the flags into the settings of `vaelm.training.settings`, sets up logging
and threads, and calls [`train`].
"""

import copy
import dataclasses
import json
import logging
import os
import shlex
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from transformers import GenerationConfig, set_seed

from .. import pipeline_vaelm
from ..configuration_vaelm import VAELMConfig
from ..corpora.data import VAELMCollator, text_column, tokenize_splits
from ..corpora.report import PreparationReport
from ..corpora.sources import check_output_dir, load_text_splits
from ..corpora.streaming import group_by_length, stream_text_splits, vocabulary_sample
from ..corpora.vocabulary import build_tokenizer
from ..evaluation.metrics import evaluate_dataset, tokenize_sentences
from ..generation.decoding import DecodingConfig
from ..modeling_vaelm import VAELMModel
from ..pretrained.checkpoints import checkpoint_step, resolve_resume
from ..pretrained.loading import check_fit, check_model_source, load_model, load_tokenizer
from ..pretrained.model_folder import RESULTS_NAME, RUN_CONFIGURATION_NAME
from ..runtime.allocator import keep_freed_memory
from ..runtime.precision import resolve_bf16
from ..tokenization_vaelm import check_tokenizer_matches, segment
from ..version import __version__
from .interruption import GracefulInterruption, TrainingInterrupted
from .progress_log import FinalEvaluationPlan, FinalEvaluationProgress, closing_lines, progress_output
from .record import starting_model, write_training_card
from .settings import DataArguments, ModelArguments
from .trainer import ENCODER_OWN_PREFIXES, VAETrainer, VAETrainingArguments
from .weight_averaging import average_into

logger = logging.getLogger(__name__)


def prepare_tokenizer(model_args: ModelArguments, data_args: DataArguments, train_texts, resume: str | None = None):
    """
    The tokenizer given with `--tokenizer` (or that of `--model_name_or_path`), or one built from `train_texts`; on a
    resume, the one saved in the checkpoint (the one the run has been training with).
    """
    if resume is not None and (Path(resume) / "tokenizer.json").is_file():
        logger.info("Reusing the tokenizer saved in %s.", resume)
        return load_tokenizer(resume)
    source = data_args.tokenizer or model_args.model_name_or_path or model_args.init_from
    if source:
        return load_tokenizer(source)  # vaelm.pretrained.loading's: a clear error for a folder without tokenizer.json
    logger.info(
        "Building a word-level tokenizer (vocab_size %d, min_frequency %d).",
        data_args.vocab_size,
        data_args.min_frequency,
    )
    return build_tokenizer(
        segment(train_texts, data_args.segmentation),
        vocab_size=data_args.vocab_size,
        min_frequency=data_args.min_frequency,
        segmentation=data_args.segmentation,
        max_sentence_length=data_args.max_length,
        lowercase=data_args.lowercase,
    )


def build_model(model_args: ModelArguments, data_args: DataArguments, tokenizer) -> VAELMModel:
    """A new model sized by `model_args` for `tokenizer`, or the one at `--model_name_or_path`."""
    if model_args.model_name_or_path:
        model = load_model(model_args.model_name_or_path)
        if model_args.average_with:
            for name in model_args.average_with:  # same shapes are checked by the average; same words here
                if load_tokenizer(name).get_vocab() != tokenizer.get_vocab():
                    raise ValueError(
                        f"--average_with {name}: its tokenizer's vocabulary differs from the run's; average models "
                        "that share one tokenizer (successive runs of one recipe)."
                    )
            average_into(model, [load_model(name) for name in model_args.average_with], model_args.average_with)
        model.train()
    else:
        # The configuration checked when the flags were parsed, completed by the data: the tokenizer's sizes and ids
        # agree with it by construction (check_tokenizer_matches below), and saving checks the whole once more.
        config = copy.deepcopy(model_args.config)
        config.update(
            {
                "vocab_size": len(tokenizer),
                "max_sentence_length": data_args.max_length,
                "lang": data_args.lang,
                "segmentation": data_args.segmentation,
                "sentence_split": data_args.sentence_split,
                "pad_token_id": tokenizer.pad_token_id,
                "unk_token_id": tokenizer.unk_token_id,
                "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.eos_token_id,
            }
        )
        model = VAELMModel(config)
        if model_args.init_from:
            copy_encoder(load_model(model_args.init_from), model, model_args.init_from)
    if model_args.model_name_or_path:
        source = f"--tokenizer {data_args.tokenizer}" if data_args.tokenizer else model_args.model_name_or_path
        check_fit(tokenizer, model.config, source, f"--model_name_or_path {model_args.model_name_or_path}")
    else:
        check_tokenizer_matches(tokenizer, model.config)
    model.generation_config = default_generation_config(model.config)
    model.config.custom_pipelines = (
        pipeline_vaelm.CUSTOM_PIPELINES
    )  # pipeline("sentence-vae", model=folder, trust_remote_code=True)
    return model


def default_generation_config(config: VAELMConfig) -> GenerationConfig:
    """
    What `model.generate` and `pipeline("text-generation")` do without arguments: a whole sentence (a length in
    `max_new_tokens`, so that a caller's `max_new_tokens` replaces it without a warning) and, as `DecodingConfig`'s
    default `suppress_unk` says, no `<unk>` (small vocabularies otherwise print runs of it; `suppress_tokens=None` gives the
    raw model back).

    Args:
        config ([`VAELMConfig`]): the model's configuration.
    """
    return GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_new_tokens=config.max_sentence_length + 1,
        suppress_tokens=DecodingConfig().generate_kwargs(config.unk_token_id)["suppress_tokens"],
    )


def save_pipeline_code(folder: str | Path) -> Path:
    """Copy `pipeline_vaelm.py` into a model folder: its config's `custom_pipelines` points at it."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(pipeline_vaelm.__file__, Path(folder) / "pipeline_vaelm.py"))


# What `--init_from` copies: everything that computes q(z|x). The embeddings are shared with the decoder's inputs.
ENCODER_PREFIXES = ("embed_tokens.", *ENCODER_OWN_PREFIXES)


def copy_encoder(source: VAELMModel, target: VAELMModel, source_name: str) -> None:
    """
    Copy the encoder of `source` (embeddings, recurrent encoder, posterior layer, BN-VAE statistics) into `target`,
    whose decoder keeps its fresh initialisation: the decoder reset of Li et al. (2019) after auto-encoder
    pre-training (`--kl_schedule constant --kl_weight 0`).

    Raises:
        `ValueError`: when `source` has no encoder or its encoder is shaped differently (naming the flags to change).
    """
    if source.encoder is None:
        raise ValueError(
            f"--init_from {source_name} is a plain language model (latent_size 0): it has no encoder to copy."
        )
    source_state = source.state_dict()
    target_state = target.state_dict()
    copied = {name: tensor for name, tensor in source_state.items() if name.startswith(ENCODER_PREFIXES)}
    for name, tensor in copied.items():
        if name not in target_state or target_state[name].shape != tensor.shape:
            shape = tuple(target_state[name].shape) if name in target_state else "absent"
            raise ValueError(
                f"--init_from {source_name}: its {name} has shape {tuple(tensor.shape)}, the new model's is {shape}. "
                "Give the same --embedding_size, --hidden_size, --latent_size, --num_layers, --cell_type, "
                "--bidirectional_encoder and --posterior_bn_gamma (on/off) as that model, and its tokenizer."
            )
    target.load_state_dict(copied, strict=False)
    logger.info("Copied %d encoder tensors from %s; the decoder starts afresh.", len(copied), source_name)


def prepare_data(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: VAETrainingArguments,
    resume: str | None = None,
    report: PreparationReport | None = None,
):
    """
    The data of a training job: raw splits (train, valid), the tokenizer, and the token ids the Trainer reads.
    `report` (a [`PreparationReport`]) receives what was read, kept and dropped, as `vaelm-prepare` writes it.

    `resume` is the checkpoint a resumed run continues from: its saved tokenizer is reused, not rebuilt.

    Returns:
        `tuple`: the raw `DatasetDict` (or streamed splits), the tokenizer, the tokenized splits.
    """
    if data_args.streaming and training_args.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps: a streamed dataset has no length to count epochs by.")
    if data_args.streaming and data_args.data_dir is not None:
        raw = stream_text_splits(
            data_args.data_dir,
            ("train", "valid"),
            data_args.text_column,
            data_args.sentence_split,
            data_args.lang,
            report=report,
        )
    else:
        raw = load_text_splits(
            data_dir=data_args.data_dir,
            dataset=data_args.dataset,
            text_column=data_args.text_column,
            splits=("train", "valid"),
            streaming=data_args.streaming,
            seed=training_args.seed,
            sentence_split=data_args.sentence_split,
            lang=data_args.lang,
            report=report,
        )
    # A stream's vocabulary comes from its first --vocab_sample sentences (bounded memory).
    train_texts = (
        vocabulary_sample(raw["train"], data_args.vocab_sample) if data_args.streaming else text_column(raw["train"])
    )
    tokenizer = prepare_tokenizer(model_args, data_args, train_texts, resume)
    tokenized = tokenize_splits(
        raw, tokenizer, data_args.segmentation, data_args.max_length, data_args.truncate_long, report
    )
    if data_args.streaming:
        tokenized["train"] = group_by_length(
            tokenized["train"], training_args.per_device_train_batch_size, data_args.stream_buffer, training_args.seed
        )
    return raw, tokenizer, tokenized


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: VAETrainingArguments,
    command: Sequence[str] | None = None,
) -> dict:
    """
    Run one training job and save the final model, tokenizer, generation config and training curves.

    Args:
        model_args ([`ModelArguments`]): model sizes or a model to continue from.
        data_args ([`DataArguments`]): data source, tokenizer and length limits.
        training_args ([`VAETrainingArguments`]): Trainer and KL-schedule settings.
        command (`Sequence[str]`, *optional*): the command line that started the job (`["vaelm-train", ...]`),
            recorded in `_run_configuration.json`, so that a later command can say how to resume this run.

    Returns:
        `dict`: the final validation metrics (`eval_elbo`, `eval_kl`, …).
    """
    with progress_output(bars=not training_args.disable_tqdm):
        return _train(model_args, data_args, training_args, command)


def _train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: VAETrainingArguments,
    command: Sequence[str] | None,
) -> dict:
    wants_bf16 = training_args.bf16 or training_args.mixed_precision == "bf16"  # --bf16 or accelerate's setting
    if wants_bf16 and not resolve_bf16(True, training_args.device, "vaelm-train"):
        # TrainingArguments has already turned --bf16 into the Accelerator's mixed_precision: both go.
        training_args.bf16, training_args.mixed_precision = False, "no"
    set_seed(training_args.seed)
    keep_freed_memory()
    if training_args.freeze_decoder and not model_args.model_name_or_path:
        raise ValueError(
            "--freeze_decoder trains the encoder of a trained model: name that model with --model_name_or_path "
            "(a new model's decoder would stay at its random initialisation)."
        )
    if model_args.model_name_or_path:  # fail before the data is read, not after
        check_model_source(model_args.model_name_or_path)
    for name in [*(model_args.average_with or []), *([model_args.init_from] if model_args.init_from else [])]:
        check_model_source(name)
    check_output_dir(training_args.output_dir)
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    report = PreparationReport()
    with training_args.main_process_first(desc="data preparation"):
        raw, tokenizer, tokenized = prepare_data(model_args, data_args, training_args, resume=resume, report=report)
    logger.info("%s", report.summary())  # vaelm-prepare writes the same report; report.json keeps it with the model
    if training_args.process_index == 0:
        Path(training_args.output_dir).mkdir(parents=True, exist_ok=True)
        report.write(Path(training_args.output_dir) / "report.json")
    model = build_model(model_args, data_args, tokenizer)
    configuration_file = None
    if training_args.process_index == 0:
        configuration_file = write_run_configuration(
            training_args.output_dir, command, model_args, data_args, training_args, model
        )
    logger.info("Model: %s parameters (%s).", f"{model.num_parameters():,}", model_summary(model.config))

    trainer = VAETrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["valid"],
        data_collator=VAELMCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        started_from=started_from(model_args),
    )
    trainer.progress_log.configuration_file = configuration_file  # named in the log's first block
    trainer.progress_log.final_evaluation = final_evaluation_plan(
        raw["valid"], data_args.final_eval_iw_samples, training_args
    )  # counted in the ETA
    interruption = GracefulInterruption()
    trainer.add_callback(interruption)
    trainer.train(resume_from_checkpoint=resume)
    if interruption.stopped_at is not None:
        raise TrainingInterrupted(interruption.resume_message(training_args.output_dir))
    metrics = last_evaluation(trainer) or trainer.evaluate()  # one evaluation of the final weights, not two
    if data_args.final_eval_iw_samples > 0:
        metrics.update(final_evaluation(trainer, raw["valid"], data_args.final_eval_iw_samples))
    if trainer.is_world_process_zero():
        # Before save_model: a --push_to_hub inside it uploads the card, the training curves and the pipeline code.
        save_pipeline_code(training_args.output_dir)
        write_training_card(training_args.output_dir, trainer, dataset=data_args.dataset or data_args.data_dir)
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        trainer.save_state()
        trainer.save_metrics("all", metrics, combined=False)  # all_results.json, as transformers' examples write it
        results = Path(training_args.output_dir) / RESULTS_NAME
        for line in closing_lines(training_args.output_dir, metrics, results, evaluate_data_flags(data_args)):
            logger.info(line)
    return metrics


def final_evaluation_plan(
    raw_dataset, iw_samples: int, training_args: VAETrainingArguments
) -> FinalEvaluationPlan | None:
    """
    The final evaluation's size, for the log's ETA and its announcement; `None` when there is none, or when the
    validation split's length is not known before it is read (a stream).

    Args:
        raw_dataset: the validation sentences.
        iw_samples (`int`): `--final_eval_iw_samples` (0: no final evaluation).
        training_args ([`VAETrainingArguments`]): the batch size a training step processes on one process.
    """
    if iw_samples <= 0:
        return None
    try:
        sentences = len(raw_dataset)
    except TypeError:
        return None
    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    return FinalEvaluationPlan(sentences, iw_samples, batch)


def last_evaluation(trainer: VAETrainer) -> dict | None:
    """
    The Trainer's evaluation of the weights training ended with, when it has already run one (at the last step, or
    the best checkpoint's with `--load_best_model_at_end`): the same figures again would be logged twice.

    Args:
        trainer ([`VAETrainer`]): the trainer after `train()`.

    Returns:
        `dict`, *optional*: the `eval_*` metrics of that evaluation (and its epoch), or `None`.
    """
    state = trainer.state
    step = state.global_step
    if trainer.args.load_best_model_at_end and state.best_model_checkpoint:
        step = getattr(state, "best_global_step", None)
        if step is None:
            found = checkpoint_step(state.best_model_checkpoint)  # (step, max_steps), or None
            step = found[0] if found else None
    for entry in reversed(state.log_history):
        if entry.get("step") == step and "eval_loss" in entry:
            return {key: value for key, value in entry.items() if key.startswith("eval_") or key == "epoch"}
    return None


def evaluate_data_flags(data_args: DataArguments) -> str:
    """The data flags of `vaelm-evaluate` that read the run's corpus (`--dataset ptb`, `--data_dir DIR`)."""
    if data_args.dataset:
        return f"--dataset {shlex.quote(data_args.dataset)}"
    return f"--data_dir {shlex.quote(str(data_args.data_dir))}"


def model_summary(config: VAELMConfig) -> str:
    """`vocabulary 10,000, embedding 350, hidden 512, latent 32, 1 lstm layer`: a model's sizes in one phrase."""
    layers = f"{config.num_layers} {config.cell_type} layer{'s' if config.num_layers != 1 else ''}"
    return (
        f"vocabulary {config.vocab_size:,}, embedding {config.embedding_size}, hidden {config.hidden_size}, "
        f"latent {config.latent_size}, {layers}"
    )


def write_run_configuration(
    output_dir: str | Path,
    command: Sequence[str] | None,
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: VAETrainingArguments,
    model: VAELMModel,
) -> Path:
    """
    Write `_run_configuration.json` into `output_dir`: the command, every flag's value and the model's configuration
    (what the log used to print), with the time, folder and vaelm version it started with. Tokens are masked.

    Args:
        output_dir (`str` or `Path`): the run's `--output_dir`.
        command (`Sequence[str]`, *optional*): the command line (see [`train`]).
        model_args, data_args, training_args: the job's arguments.
        model ([`VAELMModel`]): the model to be trained.

    Returns:
        `Path`: the file written.
    """
    record = {
        "command": list(command) if command is not None else None,
        "cwd": os.getcwd(),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "vaelm_version": __version__,
        "world_size": training_args.world_size,
        "model_arguments": dataclasses.asdict(model_args),
        "data_arguments": dataclasses.asdict(data_args),
        "training_arguments": training_args.to_dict(),  # hub tokens masked
        "model_config": model.config.to_dict(),
    }
    path = Path(output_dir) / RUN_CONFIGURATION_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    return path


def started_from(model_args: ModelArguments) -> dict | None:
    """What `--model_name_or_path` (and `--average_with`) or `--init_from` names, with its recorded training (see
    [`starting_model`])."""
    for flag in ("model_name_or_path", "init_from"):
        if getattr(model_args, flag):
            started = starting_model(flag, getattr(model_args, flag))
            if flag == "model_name_or_path" and model_args.average_with:
                started["averaged_with"] = [starting_model("average_with", name) for name in model_args.average_with]
            return started
    return None


def final_evaluation(trainer: VAETrainer, raw_dataset, iw_samples: int) -> dict:
    """
    The full evaluation protocol (IW-NLL, PPL, ELBO, KL, MI, AU) on the validation split, prefixed `final_`.

    Every validation sentence counts: the raw text is tokenized again, since training's `--max_length` filter must
    not shape an evaluation.

    Args:
        trainer ([`VAETrainer`]): the trainer after training (its model and tokenizer are used).
        raw_dataset: the validation sentences, rows with a `text` column (a `Dataset` or a finite `IterableDataset`).
        iw_samples (`int`): importance samples K per sentence.
    """
    model = trainer.model
    texts = [row["text"] for row in raw_dataset]
    sequences = tokenize_sentences(texts, trainer.processing_class, model.config.segmentation)
    main, bars = trainer.is_world_process_zero(), not trainer.args.disable_tqdm
    if main:
        plan = FinalEvaluationPlan(len(sequences), iw_samples, trainer.args.per_device_train_batch_size)
        plan.batch_size *= trainer.args.gradient_accumulation_steps
        logger.info(plan.announcement(trainer.progress_log.steps_per_second()))
    results = evaluate_dataset(
        model,
        sequences,
        iw_samples=iw_samples,
        seed=trainer.args.seed,
        progress=main and bars,
        on_progress=FinalEvaluationProgress() if main and not bars else None,
    )
    final = {
        f"final_{key}": value
        for key, value in results.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    trainer.log(final)
    return final


__all__ = [
    "ENCODER_PREFIXES",
    "build_model",
    "copy_encoder",
    "evaluate_data_flags",
    "final_evaluation",
    "final_evaluation_plan",
    "last_evaluation",
    "model_summary",
    "prepare_data",
    "prepare_tokenizer",
    "train",
    "write_run_configuration",
]
