"""The evaluation's settings: the protocol's defaults and choice lists, and the settings of the `vaelm-evaluate` job
([`EvaluationArguments`], which the command parses its flags into). Imports no torch, so that `--help` stays fast.
"""

from dataclasses import dataclass, field

from ..corpora import SPLITS
from ..runtime.threads import num_threads_field

# The protocol's defaults (README "Evaluation protocol"): K = 500 importance samples for reported figures, the seed
# of the latent noise, sentences encoded together, (sentence, sample) rows decoded at once.
IW_SAMPLES = 500
SEED = 42
BATCH_SIZE = 64
CHUNK_SIZE = 512
# 2-D projections of the latent map (the first is the default), and its sentences by default.
PROJECTIONS = ("pca", "umap")
MAP_SENTENCES = 500
RECONSTRUCTION_SENTENCES = 1000  # sentences decoded from their posterior mean for BLEU-4 and exact match
DEMO_MAP_SENTENCES = 200  # the demo's map, built while the app starts


@dataclass
class EvaluationArguments:
    """What `vaelm-evaluate` evaluates, and how (the flags of the command, the settings of its job)."""

    model: str | None = field(
        default=None, metadata={"help": "Model folder or Hub id (default: the bundled PTB model)."}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder with train.txt/valid.txt/test.txt or ptb.*.txt."}
    )
    dataset: str | None = field(default=None, metadata={"help": "ptb or a Hub dataset id (instead of --data_dir)."})
    text_column: str = field(default="text", metadata={"help": "Text column of a Hub dataset."})
    split: str = field(default="test", metadata={"help": "Split to evaluate.", "choices": list(SPLITS)})
    iw_samples: int = field(default=IW_SAMPLES, metadata={"help": "Importance samples K per sentence."})
    batch_size: int = field(default=BATCH_SIZE, metadata={"help": "Sentences encoded together (grouped by length)."})
    chunk_size: int = field(
        default=CHUNK_SIZE, metadata={"help": "Most (sentence, sample) rows decoded at once; bounds memory."}
    )
    max_sentences: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N sentences of the split."}
    )
    seed: int = field(default=SEED, metadata={"help": "Seed of the latent samples."})
    bf16: bool = field(
        default=False,
        metadata={
            "help": "bfloat16 vocabulary projection (faster on GPUs and AVX-512 CPUs; within 0.05 nats). Falls "
            "back to fp32, with a warning, on CPUs where bf16 is emulated (AVX2 only)."
        },
    )
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, mps… (default: cuda if available)."})
    num_threads: int | None = num_threads_field()
    output: str | None = field(
        default=None, metadata={"help": "Also write the JSON object to this file, with the per-dimension variances."}
    )
    per_dimension: bool = field(
        default=False, metadata={"help": "Print the per-dimension posterior-mean variances on stdout too."}
    )
    per_sentence_output: str | None = field(
        default=None, metadata={"help": "Write per-sentence figures (JSON lines) here."}
    )
    progress_file: str | None = field(
        default=None,
        metadata={
            "help": "Keep the finished sentences in this file (safetensors) after every batch; rerun the same "
            "command to resume a pass that was stopped, with the same figures. Deleted when the pass completes."
        },
    )
    reconstruction_sentences: int = field(
        default=RECONSTRUCTION_SENTENCES,
        metadata={
            "help": "Also decode the first N evaluated sentences greedily from their posterior mean "
            "(<unk> allowed) and report corpus BLEU-4 and the exact-match rate; 0 turns it off. Language "
            "models have none."
        },
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision of --model."})
    no_progress: bool = field(default=False, metadata={"help": "Hide the progress bar."})

    def __post_init__(self):
        for name in ("iw_samples", "batch_size", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be a positive integer, got {getattr(self, name)}.")
        if self.reconstruction_sentences < 0:
            raise ValueError(
                "--reconstruction_sentences must be 0 (off) or a positive integer, "
                f"got {self.reconstruction_sentences}."
            )
        if self.max_sentences is not None and self.max_sentences < 1:
            raise ValueError(f"--max_sentences must be a positive integer, got {self.max_sentences}.")
        if (self.data_dir is None) == (self.dataset is None):
            raise ValueError("Give exactly one of --data_dir (a local folder) or --dataset (ptb or a Hub dataset id).")


__all__ = [
    "BATCH_SIZE",
    "CHUNK_SIZE",
    "DEMO_MAP_SENTENCES",
    "IW_SAMPLES",
    "MAP_SENTENCES",
    "PROJECTIONS",
    "SEED",
    "EvaluationArguments",
]
