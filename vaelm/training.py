"""One training job, end to end: data -> tokenizer -> model -> `VAETrainer` -> a Hub-ready model folder.

`vaelm-train` parses three dataclasses with `HfArgumentParser` (the original script's flags included) and calls
[`train`]. A YAML or JSON file given as the first argument supplies defaults that later flags override.
"""

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import GenerationConfig, HfArgumentParser, set_seed

from .configuration_vaelm import VAELMConfig
from .data import VAELMCollator, load_text_splits, tokenize_splits
from .hub import write_model_card
from .modeling_vaelm import VAELMModel
from .loading import check_fit, check_model_source, load_model, load_tokenizer
from .streaming import group_by_length, vocabulary_sample
from .tokenization_vaelm import build_tokenizer, check_tokenizer_matches, default_segmentation, segment
from .trainer import VAETrainer, VAETrainingArguments, is_complete_checkpoint, last_complete_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Sizes of a new model (the original script's names), or a model to continue from."""

    embedding_size: int = field(default=350, metadata={"help": "Word embedding size."})
    num_units: int = field(default=200, metadata={"help": "LSTM hidden size of encoder and decoder."})
    latent_dim: int = field(default=13, metadata={"help": "Size of the latent variable z."})
    num_layers: int = field(default=1, metadata={"help": "Stacked LSTM layers."})
    bidirectional_encoder: bool = field(default=False, metadata={"help": "Read sentences in both directions."})
    keep_prob: float = field(default=0.75, metadata={"help": "Probability of keeping a decoder input word (word dropout = 1 - keep_prob)."})
    embedding_dropout: float = field(default=0.0, metadata={"help": "Dropout on embeddings."})
    output_dropout: float = field(default=0.0, metadata={"help": "Dropout on decoder outputs."})
    latent_to_every_step: bool = field(default=False, metadata={"help": "Also feed z to every decoder step."})
    tie_word_embeddings: bool = field(default=False, metadata={"help": "Share input and output word embeddings."})
    model_name_or_path: str | None = field(default=None, metadata={"help": "Continue training this model (folder or Hub id)."})

    def __post_init__(self):
        if not 0.0 < self.keep_prob <= 1.0:
            raise ValueError(f"--keep_prob must lie in (0, 1], got {self.keep_prob}.")
        for name in ("embedding_size", "num_units", "latent_dim", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be a positive integer, got {getattr(self, name)}.")
        for name in ("embedding_dropout", "output_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"--{name} must lie in [0, 1), got {getattr(self, name)}.")


@dataclass
class DataArguments:
    """Where the sentences come from and how they become token ids."""

    data_dir: str | None = field(default=None, metadata={"help": "Folder with train.txt/valid.txt/test.txt or ptb.*.txt."})
    dataset: str | None = field(default=None, metadata={"help": "ptb, bookcorpus or a Hub dataset id (instead of --data_dir)."})
    text_column: str = field(default="text", metadata={"help": "Text column of a Hub dataset."})
    streaming: bool = field(default=False, metadata={"help": "Stream a Hub dataset or a folder of text/jsonl/parquet files (needs --max_steps)."})
    vocab_sample: int = field(default=1_000_000, metadata={"help": "With --streaming: build the vocabulary from the first N training sentences."})
    stream_buffer: int = field(default=10_000, metadata={"help": "With --streaming: sentences shuffled and length-grouped together."})
    sentence_split: bool = field(default=False, metadata={"help": "The files are running text (paragraphs): cut them into sentences."})
    lowercase: bool = field(default=False, metadata={"help": "Lower-case text in the tokenizer (its normalizer)."})
    lang: str = field(default="en", metadata={"help": "Language: zh segments words with jieba.", "choices": ["en", "zh"]})
    segmentation: str | None = field(
        default=None, metadata={"help": "whitespace, jieba, char or words (punctuation-aware English words; default: jieba for zh).",
                                 "choices": ["whitespace", "jieba", "char", "words"]}
    )
    tokenizer: str | None = field(default=None, metadata={"help": "Reuse this tokenizer (folder or Hub id) instead of building one."})
    vocab_size: int = field(default=10000, metadata={"help": "Largest vocabulary, special tokens included."})
    min_frequency: int = field(default=1, metadata={"help": "Words seen fewer times become <unk>."})
    max_length: int = field(default=200, metadata={"help": "Longest training sentence in words; longer ones are dropped (or cut with --truncate_long)."})
    truncate_long: bool = field(default=False, metadata={"help": "Cut over-long sentences instead of dropping them."})
    final_eval_iw_samples: int = field(default=0, metadata={"help": "Run the full evaluation protocol on valid with K importance samples at the end (0: off)."})

    def __post_init__(self):
        if self.segmentation is None:
            self.segmentation = default_segmentation(self.lang)
        for name in ("vocab_size", "min_frequency", "max_length", "vocab_sample", "stream_buffer"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be a positive integer, got {getattr(self, name)}.")


def parse_arguments(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, VAETrainingArguments]:
    """Parse `vaelm-train` arguments; a leading `.yaml`/`.yml`/`.json` file supplies defaults for the flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = config_file_flags(argv[0]) + argv[1:]
    parser = HfArgumentParser((ModelArguments, DataArguments, VAETrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    return model_args, data_args, training_args


def config_file_flags(path: str) -> list[str]:
    """Turn a YAML/JSON mapping into `--key value` flags, so that flags given after it take precedence."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except OSError as error:
        raise FileNotFoundError(f"Cannot read config file {path}: {error.strerror}.") from None
    except yaml.YAMLError as error:
        raise ValueError(f"Config file {path} is not valid YAML/JSON: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"Config file {path} must hold a mapping of flag names to values.")
    flags = []
    for key, value in values.items():
        if value is None:
            continue
        flags.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            flags.extend(str(v) for v in value)
        else:
            flags.append(str(value).lower() if isinstance(value, bool) else str(value))
    return flags


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """`true` means the newest complete checkpoint in `output_dir` (none: start fresh); anything else is a path."""
    if value is None or value.lower() in ("false", "no", "0", ""):
        return None
    if value.lower() in ("true", "yes", "1", "last"):
        checkpoint = last_complete_checkpoint(output_dir)
        skipped = sorted(
            path.name for path in Path(output_dir).glob("checkpoint-*")
            if path.is_dir() and not is_complete_checkpoint(path)
        )
        if skipped:
            logger.warning("Skipping unfinished checkpoint folders (no complete trainer_state.json; a run was killed "
                           "while saving): %s.", ", ".join(skipped))
        if checkpoint is None:
            logger.warning("No complete checkpoint in %s; training from the start.", output_dir)
        return str(checkpoint) if checkpoint else None
    if not is_complete_checkpoint(value):
        newest = last_complete_checkpoint(output_dir)
        problem = ("its trainer_state.json is missing or cut short (the run was probably killed while saving it)"
                   if Path(value).is_dir() else "the folder does not exist")
        raise FileNotFoundError(
            f"--resume_from_checkpoint {value} is not a complete checkpoint folder: {problem}. "
            + (f"Resume from {newest}, or pass --resume_from_checkpoint true to take the newest complete checkpoint."
               if newest else "Pass --resume_from_checkpoint true to take the newest complete checkpoint.")
        )
    return value


def prepare_tokenizer(model_args: ModelArguments, data_args: DataArguments, train_texts) :
    """The tokenizer given with `--tokenizer` (or that of `--model_name_or_path`), or one built from `train_texts`."""
    source = data_args.tokenizer or model_args.model_name_or_path
    if source:
        return load_tokenizer(source)  # vaelm.loading's: a clear error for a folder without tokenizer.json
    logger.info("Building a word-level tokenizer (vocab_size %d, min_frequency %d).", data_args.vocab_size, data_args.min_frequency)
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
        model.train()
    else:
        config = VAELMConfig(
            vocab_size=len(tokenizer),
            embedding_size=model_args.embedding_size,
            hidden_size=model_args.num_units,
            latent_size=model_args.latent_dim,
            num_layers=model_args.num_layers,
            bidirectional_encoder=model_args.bidirectional_encoder,
            word_dropout=round(1.0 - model_args.keep_prob, 6),
            embedding_dropout=model_args.embedding_dropout,
            output_dropout=model_args.output_dropout,
            latent_to_every_step=model_args.latent_to_every_step,
            tie_word_embeddings=model_args.tie_word_embeddings,
            max_sentence_length=data_args.max_length,
            lang=data_args.lang,
            segmentation=data_args.segmentation,
            sentence_split=data_args.sentence_split,
            pad_token_id=tokenizer.pad_token_id,
            unk_token_id=tokenizer.unk_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        model = VAELMModel(config)
    if model_args.model_name_or_path:
        source = f"--tokenizer {data_args.tokenizer}" if data_args.tokenizer else model_args.model_name_or_path
        check_fit(tokenizer, model.config, source, f"--model_name_or_path {model_args.model_name_or_path}")
    else:
        check_tokenizer_matches(tokenizer, model.config)
    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=model.config.eos_token_id,
        pad_token_id=model.config.pad_token_id,
        max_length=model.config.max_sentence_length + 2,
    )
    return model


def keep_freed_memory() -> bool:
    """
    Let glibc's malloc keep and reuse freed memory instead of returning it to the system (a speed setting).

    A training step allocates and frees tens of megabytes (the gradients, the [tokens, vocab] softmax buffer).
    By default glibc hands blocks above its mmap threshold back to the kernel on free, so every step pays for tens
    of thousands of fresh page faults: measured here, ≈35,000 faults and ≈17 % of a step's CPU time. Raising the
    mmap and trim thresholds makes the freed blocks reusable. Memory use stays at the run's peak, as with a
    caching allocator. Does nothing (returns `False`) outside Linux/glibc or with `VAELM_KEEP_FREED_MEMORY=0`.
    """
    import ctypes
    import platform

    if os.environ.get("VAELM_KEEP_FREED_MEMORY", "1") == "0" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))
    except (OSError, AttributeError):
        return False


def train(model_args: ModelArguments, data_args: DataArguments, training_args: VAETrainingArguments) -> dict:
    """
    Run one training job and save the final model, tokenizer, generation config and training curves.

    Args:
        model_args ([`ModelArguments`]): model sizes or a model to continue from.
        data_args ([`DataArguments`]): data source, tokenizer and length limits.
        training_args ([`VAETrainingArguments`]): Trainer and KL-schedule settings.

    Returns:
        `dict`: the final validation metrics (`eval_elbo`, `eval_kl`, …).
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(training_args.seed)
    keep_freed_memory()
    if model_args.model_name_or_path:  # fail before the data is read, not after
        check_model_source(model_args.model_name_or_path)
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    with training_args.main_process_first(desc="data preparation"):
        raw = load_text_splits(
            data_dir=data_args.data_dir, dataset=data_args.dataset, text_column=data_args.text_column,
            splits=("train", "valid"), streaming=data_args.streaming, seed=training_args.seed,
            sentence_split=data_args.sentence_split, lang=data_args.lang,
        )
        if data_args.streaming and training_args.max_steps <= 0:
            raise ValueError("--streaming needs --max_steps: a streamed dataset has no length to count epochs by.")
        # A stream's vocabulary comes from its first --vocab_sample sentences (bounded memory).
        train_texts = vocabulary_sample(raw["train"], data_args.vocab_sample) if data_args.streaming else raw["train"]["text"]
        tokenizer = prepare_tokenizer(model_args, data_args, train_texts)
        tokenized = tokenize_splits(raw, tokenizer, data_args.segmentation, data_args.max_length, data_args.truncate_long)
        if data_args.streaming:
            tokenized["train"] = group_by_length(tokenized["train"], training_args.per_device_train_batch_size,
                                                 data_args.stream_buffer, training_args.seed)
    model = build_model(model_args, data_args, tokenizer)
    logger.info("Model: %s parameters, %s", f"{model.num_parameters():,}", model.config.to_diff_dict())

    trainer = VAETrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["valid"],
        data_collator=VAELMCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
    )
    logger.info("Training on %s, world size %d.", training_args.device, training_args.world_size)
    trainer.train(resume_from_checkpoint=resume)
    metrics = trainer.evaluate()
    if data_args.final_eval_iw_samples > 0:
        metrics.update(final_evaluation(trainer, raw["valid"], data_args.final_eval_iw_samples))
    if trainer.is_world_process_zero():
        # Before save_model: a --push_to_hub inside it uploads the card and the training curves it draws.
        write_model_card(training_args.output_dir, trainer=trainer, dataset=data_args.dataset or data_args.data_dir)
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        trainer.save_state()
    return metrics


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
    from .evaluation import evaluate_dataset, tokenize_sentences  # noqa: PLC0415 - optional at the end of training

    model = trainer.model
    texts = [row["text"] for row in raw_dataset]
    sequences = tokenize_sentences(texts, trainer.processing_class, model.config.segmentation)
    results = evaluate_dataset(model, sequences, iw_samples=iw_samples, seed=trainer.args.seed)
    final = {
        f"final_{key}": value for key, value in results.items() if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    trainer.log(final)
    return final


__all__ = ["DataArguments", "ModelArguments", "parse_arguments", "train"]
