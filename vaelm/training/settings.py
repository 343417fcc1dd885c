"""The settings of a training job, as dataclasses that `vaelm-train` parses its flags into and [`train`] takes.

- [`ModelArguments`]: the sizes and switches of a new model, derived from [`~vaelm.VAELMConfig`] (its fields,
  defaults, allowed values and docstring; the original script's flag names from `TRAINING_FLAGS`), or a model to
  continue from.
- [`DataArguments`]: where the sentences come from and how they become token ids.

They live with the job, not with the command, so that the job never imports the command line.
"""

import dataclasses
import re
from dataclasses import dataclass, field

from ..configuration_vaelm import (
    COMPLEMENT_FLAGS,
    FIELD_CHOICES,
    SEGMENTATIONS,
    TRAINING_FLAGS,
    VAELMConfig,
    field_value,
)
from ..tokenization_vaelm import default_segmentation

CONFIG_FIELDS = {spec.name: spec for spec in dataclasses.fields(VAELMConfig)}
# The field that each model flag sets (`num_units` -> `hidden_size`).
CONFIG_FIELD_OF_FLAG = {flag: name for name, flag in TRAINING_FLAGS.items()}
# `--hidden_size` is no flag, but whoever types it means `--num_units`.
FLAG_ALIASES = {f"--{name}": f"--{flag}" for name, flag in TRAINING_FLAGS.items() if name != flag}


def config_default(name: str):
    """The default of `VAELMConfig` field `name` (the one place where it is written)."""
    return CONFIG_FIELDS[name].default


def _model_flag(name: str, flag: str) -> tuple[str, type, dataclasses.Field]:
    """The dataclass field of `vaelm-train`'s flag for `VAELMConfig` field `name`."""
    # The field's description, less its note on the original flag's name (this is that flag).
    help_text = COMPLEMENT_FLAGS.get(flag) or re.sub(r" \(the original --\w+\)", "", VAELMConfig.field_help(name))
    metadata = {"help": help_text}
    if name in FIELD_CHOICES:
        metadata["choices"] = list(FIELD_CHOICES[name])
    # A complement flag's default is the complement of the field's (its own inverse: 1 - (1 - p) = p).
    default = field_value(flag, config_default(name))
    return flag, CONFIG_FIELDS[name].type, field(default=default, metadata=metadata)


def _check_model_flags(self) -> None:
    # The values are checked once, by VAELMConfig; a bad one is reported under its flag, before any data is read.
    try:
        self.config = VAELMConfig(**self.config_values())
    except ValueError as error:
        named = re.search(r"VAELMConfig\.(\w+)", str(error))
        flag = TRAINING_FLAGS.get(named.group(1), named.group(1)) if named else None
        if flag is None or not hasattr(self, flag):
            raise
        raise ValueError(f"--{flag} {getattr(self, flag)} is impossible: {error}") from None
    if self.init_from and self.model_name_or_path:
        raise ValueError(
            "--init_from starts a new model from another's encoder; --model_name_or_path continues a whole model. "
            "Give one."
        )
    if self.average_with and not self.model_name_or_path:
        raise ValueError("--average_with averages with the model that --model_name_or_path names: give that model too.")
    if self.init_from and not self.config.has_latent:
        raise ValueError(
            f"--init_from copies an encoder, but --{TRAINING_FLAGS['latent_size']} 0 builds a model without one."
        )


def _config_values(self) -> dict:
    """The [`VAELMConfig`] values these flags set: the one place where the original flag names meet the config's."""
    return {name: field_value(flag, getattr(self, flag)) for name, flag in TRAINING_FLAGS.items()}


ModelArguments = dataclasses.make_dataclass(
    "ModelArguments",
    [
        *(_model_flag(name, flag) for name, flag in TRAINING_FLAGS.items()),
        (
            "model_name_or_path",
            str | None,
            field(default=None, metadata={"help": "Continue training this model (folder or Hub id)."}),
        ),
        (
            "average_with",
            list[str] | None,
            field(
                default=None,
                metadata={
                    "help": "Start from the uniform average of the weights of --model_name_or_path and these models "
                    "(folders or Hub ids of the same architecture and tokenizer, e.g. earlier runs of the same "
                    "trajectory): weight averaging across runs."
                },
            ),
        ),
        (
            "init_from",
            str | None,
            field(
                default=None,
                metadata={
                    "help": "Copy the encoder (embeddings, encoder, posterior) of this model into the new one; the decoder "
                    "starts afresh (Li et al. 2019)."
                },
            ),
        ),
    ],
    namespace={"__post_init__": _check_model_flags, "config_values": _config_values, "__module__": __name__},
)
ModelArguments.__doc__ = """
Sizes of a new model (the original script's names; every flag is a [`VAELMConfig`] field, see `TRAINING_FLAGS`), or
a model to continue from. After parsing, `config` holds the checked [`VAELMConfig`] of these values (its vocabulary
and data settings are set by the job).
"""


@dataclass
class DataArguments:
    """Where the sentences come from and how they become token ids."""

    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with train.txt/valid.txt/test.txt or ptb.*.txt."}
    )
    dataset: str | None = field(
        default=None, metadata={"help": "ptb, bookcorpus or a Hub dataset id (instead of --data_dir)."}
    )
    text_column: str = field(default="text", metadata={"help": "Text column of a Hub dataset."})
    streaming: bool = field(
        default=False,
        metadata={"help": "Stream a Hub dataset or a folder of text/jsonl/parquet files (needs --max_steps)."},
    )
    vocab_sample: int = field(
        default=1_000_000,
        metadata={"help": "With --streaming: build the vocabulary from the first N training sentences."},
    )
    stream_buffer: int = field(
        default=10_000, metadata={"help": "With --streaming: sentences shuffled and length-grouped together."}
    )
    sentence_split: bool = field(
        default=config_default("sentence_split"),
        metadata={"help": "The files are running text (paragraphs): cut them into sentences."},
    )
    lowercase: bool = field(default=False, metadata={"help": "Lower-case text in the tokenizer (its normalizer)."})
    lang: str = field(
        default=config_default("lang"),
        metadata={"help": "Language: zh segments words with jieba.", "choices": ["en", "zh"]},
    )
    segmentation: str | None = field(
        default=None,
        metadata={
            "help": "whitespace, jieba, char or words (punctuation-aware English words); default: jieba for zh, "
            "else whitespace.",
            "choices": list(SEGMENTATIONS),
        },
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "Reuse this tokenizer (folder or Hub id) instead of building one."}
    )
    vocab_size: int = field(
        default=config_default("vocab_size"), metadata={"help": "Largest vocabulary, special tokens included."}
    )
    min_frequency: int = field(default=1, metadata={"help": "Words seen fewer times become <unk>."})
    max_length: int = field(
        default=config_default("max_sentence_length"),
        metadata={"help": "Longest training sentence in words; longer ones are dropped (or cut with --truncate_long)."},
    )
    truncate_long: bool = field(default=False, metadata={"help": "Cut over-long sentences instead of dropping them."})
    final_eval_iw_samples: int = field(
        default=0,
        metadata={"help": "Run the full evaluation protocol on valid with K importance samples at the end (0: off)."},
    )

    def __post_init__(self):
        if self.segmentation is None:
            self.segmentation = default_segmentation(self.lang)
        for name in ("vocab_size", "min_frequency", "max_length", "vocab_sample", "stream_buffer"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be a positive integer, got {getattr(self, name)}.")


__all__ = ["CONFIG_FIELD_OF_FLAG", "FLAG_ALIASES", "DataArguments", "ModelArguments", "config_default"]
