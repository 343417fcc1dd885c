"""`vaelm-evaluate`: likelihood metrics (IW-NLL, PPL, ELBO, KL, MI, active units) of a model on a split, and how well
the posterior mean reconstructs its sentences (greedy decoding, corpus BLEU-4 and exact match, `<unk>` allowed).

Prints one JSON object on stdout (for programs) and a three-line summary on stderr (for people), where the logs and
the progress bar also go. The per-dimension variances are in `--output` files, or on stdout with `--per_dimension`.
The job is [`vaelm.jobs.evaluate`].
"""

import json
import logging
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..evaluation.job import command_line, human_summary, run_evaluation
from ..runtime.threads import num_threads_field
from . import parse_flags, run_command

PROGRAM = "vaelm-evaluate"

SPLIT_CHOICES = ["train", "valid", "test"]


@dataclass
class EvaluationArguments:
    """Arguments of `vaelm-evaluate`."""

    model: str | None = field(default=None, metadata={"help": "Model folder or Hub id (default: the bundled PTB model)."})
    data_dir: str | None = field(default=None, metadata={"help": "Folder with train.txt/valid.txt/test.txt or ptb.*.txt."})
    dataset: str | None = field(default=None, metadata={"help": "ptb or a Hub dataset id (instead of --data_dir)."})
    text_column: str = field(default="text", metadata={"help": "Text column of a Hub dataset."})
    split: str = field(default="test", metadata={"help": "Split to evaluate.", "choices": SPLIT_CHOICES})
    iw_samples: int = field(default=500, metadata={"help": "Importance samples K per sentence."})
    batch_size: int = field(default=64, metadata={"help": "Sentences encoded together (grouped by length)."})
    chunk_size: int = field(default=512, metadata={"help": "Most (sentence, sample) rows decoded at once; bounds memory."})
    max_sentences: int | None = field(default=None, metadata={"help": "Evaluate only the first N sentences of the split."})
    seed: int = field(default=42, metadata={"help": "Seed of the latent samples."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 vocabulary projection (faster on GPUs and AVX-512 CPUs; within 0.05 nats). Falls back to fp32, with a warning, on CPUs where bf16 is emulated (AVX2 only)."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, mps… (default: cuda if available)."})
    num_threads: int | None = num_threads_field()
    output: str | None = field(
        default=None, metadata={"help": "Also write the JSON object to this file, with the per-dimension variances."}
    )
    per_dimension: bool = field(
        default=False, metadata={"help": "Print the per-dimension posterior-mean variances on stdout too."}
    )
    per_sentence_output: str | None = field(default=None, metadata={"help": "Write per-sentence figures (JSON lines) here."})
    progress_file: str | None = field(
        default=None,
        metadata={"help": "Keep the finished sentences in this file (safetensors) after every batch; rerun the same "
                  "command to resume a pass that was stopped, with the same figures. Deleted when the pass completes."},
    )
    reconstruction_sentences: int = field(
        default=1000,
        metadata={"help": "Also decode the first N evaluated sentences greedily from their posterior mean "
                  "(<unk> allowed) and report corpus BLEU-4 and the exact-match rate; 0 turns it off. Language "
                  "models have none."},
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


def parse_arguments(argv: list[str] | None = None) -> EvaluationArguments:
    """
    Parse `vaelm-evaluate` flags with `HfArgumentParser`.

    Args:
        argv (`list[str]`, *optional*): the flags; `sys.argv[1:]` when omitted.
    """
    parser = HfArgumentParser(EvaluationArguments)
    (arguments,) = parse_flags(parser, list(sys.argv[1:] if argv is None else argv))
    return arguments


def main(argv: list[str]) -> int:
    """
    Parse the flags, evaluate, print the summary as JSON.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    arguments = parse_arguments(argv)
    summary = run_evaluation(arguments, command=command_line(PROGRAM, argv))
    print(human_summary(summary), file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(run_command(PROGRAM, main))


if __name__ == "__main__":
    entry_point()
