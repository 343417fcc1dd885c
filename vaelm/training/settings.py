"""The settings of a training job, as dataclasses that `vaelm-train` parses its flags into and [`train`] takes.

- [`ModelArguments`]: the sizes and switches of a new model, one field per [`~vaelm.VAELMConfig`] field that a run
  chooses (same name, same default; the original script's flag names are aliases), or a model to continue from.
- [`DataArguments`]: where the sentences come from and how they become token ids.

They live with the job, not with the command, so that the job never imports the command line.
"""

import dataclasses
import re
from dataclasses import dataclass, field

from ..configuration_vaelm import CELL_TYPES, SEGMENTATIONS, VAELMConfig
from ..tokenization_vaelm import default_segmentation

CONFIG_DEFAULTS = {spec.name: spec.default for spec in dataclasses.fields(VAELMConfig)}


def config_default(name: str):
    """The default of `VAELMConfig` field `name` (the one place where it is written)."""
    return CONFIG_DEFAULTS[name]


@dataclass
class ModelArguments:
    """
    Sizes and switches of a new model, each named after the [`VAELMConfig`] field it sets (the original script's
    `--num_units`, `--latent_dim` and `--keep_prob` are accepted too), or a model to continue from. After parsing,
    `config` holds the checked [`VAELMConfig`] of these values (its vocabulary and data settings are set by the job).
    """

    embedding_size: int = field(
        default=config_default("embedding_size"), metadata={"help": "Size of the word embeddings."}
    )
    hidden_size: int = field(
        default=config_default("hidden_size"),
        metadata={"help": "Size of the recurrent states of the encoder and the decoder.", "aliases": ["--num_units"]},
    )
    latent_size: int = field(
        default=config_default("latent_size"),
        metadata={
            "help": "Dimension of the latent variable z; 0: a plain recurrent language model (no encoder, exact NLL).",
            "aliases": ["--latent_dim"],
        },
    )
    num_layers: int = field(
        default=config_default("num_layers"), metadata={"help": "Stacked recurrent layers in encoder and decoder."}
    )
    cell_type: str = field(
        default=config_default("cell_type"),
        metadata={"help": "Recurrent cell of the encoder and the decoder.", "choices": list(CELL_TYPES)},
    )
    bidirectional_encoder: bool = field(
        default=config_default("bidirectional_encoder"),
        metadata={"help": "The encoder reads the sentence both ways; the two final states are concatenated."},
    )
    word_dropout: float = field(
        default=config_default("word_dropout"),
        metadata={
            "help": "Probability of replacing a decoder input word by <unk> during training (never BOS or padding)."
        },
    )
    keep_prob: float | None = field(
        default=None,
        metadata={
            "help": "The original script's flag: the probability of keeping a decoder input word; sets "
            "--word_dropout to 1 - keep_prob (default: unset)."
        },
    )
    embedding_dropout: float = field(
        default=config_default("embedding_dropout"),
        metadata={"help": "Dropout on the embeddings of both recurrent networks during training."},
    )
    output_dropout: float = field(
        default=config_default("output_dropout"),
        metadata={"help": "Dropout on the decoder outputs before the vocabulary projection during training."},
    )
    locked_dropout: bool = field(
        default=config_default("locked_dropout"),
        metadata={
            "help": "Embedding and output dropout use one mask per sentence for all its steps (Gal & Ghahramani "
            "2016; Merity et al. 2018)."
        },
    )
    weight_drop: float = field(
        default=config_default("weight_drop"),
        metadata={"help": "DropConnect on the decoder's hidden-to-hidden matrices (Merity et al. 2018)."},
    )
    word_type_dropout: float = field(
        default=config_default("word_type_dropout"),
        metadata={"help": "Probability of dropping a whole word type from the embedding matrix during training."},
    )
    posterior_bn_gamma: float = field(
        default=config_default("posterior_bn_gamma"),
        metadata={
            "help": "BN-VAE (Zhu et al. 2020): batch-normalised posterior means with this fixed scale; 0 turns it off."
        },
    )
    latent_to_every_step: bool = field(
        default=config_default("latent_to_every_step"),
        metadata={"help": "Also feed z to the decoder at every step, not only into its initial state."},
    )
    bow_loss_weight: float = field(
        default=config_default("bow_loss_weight"),
        metadata={
            "help": "Weight of a bag-of-words loss from z (Zhao et al. 2017), training only: never in the ELBO or "
            "the IW-NLL; 0: off."
        },
    )
    num_softmax_experts: int = field(
        default=config_default("num_softmax_experts"),
        metadata={"help": "Softmaxes mixed in the output head (Yang et al. 2018); 1: a single softmax."},
    )
    tie_word_embeddings: bool = field(
        default=config_default("tie_word_embeddings"),
        metadata={"help": "The output projection shares its weight with the input embedding."},
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue training this model (folder or Hub id)."}
    )
    average_with: list[str] | None = field(
        default=None,
        metadata={
            "help": "Start from the uniform average of the weights of --model_name_or_path and these models (folders "
            "or Hub ids of the same architecture and tokenizer, e.g. earlier runs of the same trajectory): weight "
            "averaging across runs."
        },
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Copy the encoder (embeddings, encoder, posterior) of this model into the new one; the decoder "
            "starts afresh (Li et al. 2019)."
        },
    )

    def __post_init__(self):
        if self.keep_prob is not None:
            if not 0.0 < self.keep_prob <= 1.0:
                raise ValueError(f"--keep_prob must lie in (0, 1], got {self.keep_prob}.")
            word_dropout = round(1.0 - self.keep_prob, 6)
            if self.word_dropout not in (config_default("word_dropout"), word_dropout):
                raise ValueError(
                    f"--keep_prob {self.keep_prob} and --word_dropout {self.word_dropout} disagree "
                    "(word_dropout = 1 - keep_prob): give one."
                )
            self.word_dropout = word_dropout
        # The values are checked once, by VAELMConfig; a bad one is reported under its flag, before any data is read.
        try:
            self.config = VAELMConfig(**self.config_values())
        except ValueError as error:
            named = re.search(r"VAELMConfig\.(\w+)", str(error))
            if named is None or not hasattr(self, named.group(1)):
                raise
            raise ValueError(f"--{named.group(1)} {getattr(self, named.group(1))} is impossible: {error}") from None
        if self.init_from and self.model_name_or_path:
            raise ValueError(
                "--init_from starts a new model from another's encoder; --model_name_or_path continues a whole "
                "model. Give one."
            )
        if self.average_with and not self.model_name_or_path:
            raise ValueError(
                "--average_with averages with the model that --model_name_or_path names: give that model too."
            )
        if self.init_from and not self.config.has_latent:
            raise ValueError("--init_from copies an encoder, but --latent_size 0 builds a model without one.")

    def config_values(self) -> dict:
        """The [`VAELMConfig`] values these flags set: every field named after one of the config's."""
        return {
            spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self) if spec.name in CONFIG_DEFAULTS
        }


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


__all__ = ["CONFIG_DEFAULTS", "DataArguments", "ModelArguments", "config_default"]
