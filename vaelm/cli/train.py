"""`vaelm-train`: build or reuse a tokenizer, train a VAE language model, save it to --output_dir.

The flags are three dataclasses parsed by `HfArgumentParser` (the original script's names included); a YAML or JSON
file given as the first argument supplies defaults that later flags override. The job itself is
[`vaelm.jobs.train.train`].
"""

import json
import re
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..configuration_vaelm import VAELMConfig
from ..training.job import train
from ..tokenization_vaelm import default_segmentation
from ..training.trainer import VAETrainingArguments
from . import config_file_flags, parse_flags, run_command  # noqa: F401 (config_file_flags: its old home, still importable from here)


# Flags whose names differ from the VAELMConfig field they set (see `ModelArguments.config_values`).
FLAG_OF_CONFIG_FIELD = {"hidden_size": "num_units", "latent_size": "latent_dim", "word_dropout": "keep_prob"}
# `--hidden_size` is no flag, but whoever types it means `--num_units`.
FLAG_ALIASES = {f"--{name}": f"--{flag}" for name, flag in FLAG_OF_CONFIG_FIELD.items()}


@dataclass
class ModelArguments:
    """Sizes of a new model (the original script's names), or a model to continue from."""

    embedding_size: int = field(default=350, metadata={"help": "Word embedding size."})
    num_units: int = field(default=200, metadata={"help": "Hidden size of the encoder and decoder cells."})
    latent_dim: int = field(default=13, metadata={"help": "Size of the latent variable z (0: a plain language model, no encoder)."})
    num_layers: int = field(default=1, metadata={"help": "Stacked recurrent layers."})
    cell_type: str = field(default="lstm", metadata={"help": "Recurrent cell of encoder and decoder.", "choices": ["lstm", "gru"]})
    bidirectional_encoder: bool = field(default=False, metadata={"help": "Read sentences in both directions."})
    keep_prob: float = field(default=0.75, metadata={"help": "Probability of keeping a decoder input word (word dropout = 1 - keep_prob)."})
    embedding_dropout: float = field(default=0.0, metadata={"help": "Dropout on embeddings."})
    output_dropout: float = field(default=0.0, metadata={"help": "Dropout on decoder outputs."})
    locked_dropout: bool = field(default=False, metadata={"help": "One embedding/output dropout mask per sentence (variational dropout)."})
    weight_drop: float = field(default=0.0, metadata={"help": "DropConnect on the decoder's recurrent weights (Merity et al. 2018)."})
    word_type_dropout: float = field(default=0.0, metadata={"help": "Drop whole word types from the embedding matrix."})
    posterior_bn_gamma: float = field(default=0.0, metadata={"help": "BN-VAE: batch-normalise posterior means with this fixed scale (0: off)."})
    latent_to_every_step: bool = field(default=False, metadata={"help": "Also feed z to every decoder step."})
    tie_word_embeddings: bool = field(default=False, metadata={"help": "Share input and output word embeddings."})
    model_name_or_path: str | None = field(default=None, metadata={"help": "Continue training this model (folder or Hub id)."})
    init_from: str | None = field(
        default=None,
        metadata={"help": "Copy the encoder (embeddings, encoder, posterior) of this model into the new one; the decoder starts afresh (Li et al. 2019)."},
    )

    def __post_init__(self):
        # The values are checked once, by VAELMConfig; a bad one is reported under its flag, before any data is read.
        try:
            VAELMConfig(**self.config_values())
        except ValueError as error:
            named = re.search(r"VAELMConfig\.(\w+)", str(error))
            flag = FLAG_OF_CONFIG_FIELD.get(named.group(1), named.group(1)) if named else None
            if flag is None or not hasattr(self, flag):
                raise
            raise ValueError(f"--{flag} {getattr(self, flag)} is impossible: {error}") from None
        if self.init_from and self.model_name_or_path:
            raise ValueError("--init_from starts a new model from another's encoder; --model_name_or_path continues a whole model. Give one.")
        if self.init_from and self.latent_dim == 0:
            raise ValueError("--init_from copies an encoder, but --latent_dim 0 builds a model without one.")

    def config_values(self) -> dict:
        """The [`VAELMConfig`] values these flags set: the one place where the original flag names meet the config's."""
        return {
            "embedding_size": self.embedding_size,
            "hidden_size": self.num_units,
            "latent_size": self.latent_dim,
            "num_layers": self.num_layers,
            "cell_type": self.cell_type,
            "bidirectional_encoder": self.bidirectional_encoder,
            "word_dropout": round(1.0 - self.keep_prob, 6),
            "embedding_dropout": self.embedding_dropout,
            "output_dropout": self.output_dropout,
            "locked_dropout": self.locked_dropout,
            "weight_drop": self.weight_drop,
            "word_type_dropout": self.word_type_dropout,
            "posterior_bn_gamma": self.posterior_bn_gamma,
            "latent_to_every_step": self.latent_to_every_step,
            "tie_word_embeddings": self.tie_word_embeddings,
        }


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
    parser = HfArgumentParser((ModelArguments, DataArguments, VAETrainingArguments))
    return parse_flags(parser, list(sys.argv[1:] if argv is None else argv), aliases=FLAG_ALIASES)


def main(argv: list[str]) -> int:
    model_args, data_args, training_args = parse_arguments(argv)
    metrics = train(model_args, data_args, training_args, command=["vaelm-train", *argv])
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def entry_point() -> None:
    sys.exit(run_command("vaelm-train", main))


if __name__ == "__main__":
    entry_point()
