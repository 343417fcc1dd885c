"""`vaelm-train`: build or reuse a tokenizer, train a VAE language model, save it to --output_dir.

The flags are three dataclasses parsed by `HfArgumentParser` (the original script's names included); a YAML or JSON
file given as the first argument supplies defaults that later flags override. The job itself is
[`vaelm.jobs.train.train`].
"""

import json
import sys
from dataclasses import dataclass, field

import yaml
from transformers import HfArgumentParser

from ..jobs.train import train
from ..tokenization_vaelm import default_segmentation
from ..trainer import VAETrainingArguments
from . import run_command


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
    streaming: bool = field(default=False, metadata={"help": "Stream a Hub dataset (needs --max_steps)."})
    lang: str = field(default="en", metadata={"help": "Language: zh segments words with jieba.", "choices": ["en", "zh"]})
    segmentation: str | None = field(
        default=None, metadata={"help": "whitespace, jieba or char (default: jieba for zh).", "choices": ["whitespace", "jieba", "char"]}
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
        for name in ("vocab_size", "min_frequency", "max_length"):
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



def main(argv: list[str]) -> int:
    model_args, data_args, training_args = parse_arguments(argv)
    metrics = train(model_args, data_args, training_args)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def entry_point() -> None:
    sys.exit(run_command("vaelm-train", main))


if __name__ == "__main__":
    entry_point()
