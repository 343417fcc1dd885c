"""`vaelm-sample`: sentences from the prior, from the posterior of a sentence, or completions of a sentence's start.

What is decoded:

- `--sentence S`: `--num` samples of z ~ q(z|S) (`--mean`: the posterior mean, a reconstruction);
- `--impute "the company said it will ___"`: the missing end of a sentence (Bowman et al. 2016 §5.1);
- `--prior`, or `--num N` with no sentence: N sentences from z ~ N(0, I);
- `--interactive`, or nothing at all: sentences read from standard input, with a `> ` prompt on a terminal and
  line by line (no prompt) from a pipe, until end of input (Ctrl-D). A line with a `___` marker is imputed.

Each input gives `--num` output lines (one JSON object per input with `--json`).
"""

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from ..pretrained import DEFAULT_MODEL
from . import run_command

NAME = "vaelm-sample"


@dataclass
class ModelArguments:
    """Which model to load, and where to run it."""

    model: str = field(
        default=DEFAULT_MODEL, metadata={"help": "Model folder written by vaelm-train, or a Hub id (default: the bundled PTB model)."}
    )
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, … (default: a GPU when there is one)."})


@dataclass
class DecodingArguments:
    """How latent codes become words, randomness and output format (shared with vaelm-homotopy)."""

    strategy: str = field(default="greedy", metadata={"help": "Decoding strategy.", "choices": ["greedy", "sample", "beam"]})
    temperature: float = field(default=1.0, metadata={"help": "Softmax temperature (--strategy sample)."})
    top_k: int | None = field(default=None, metadata={"help": "Sample among the k most likely words (--strategy sample)."})
    top_p: float | None = field(default=None, metadata={"help": "Nucleus sampling threshold (--strategy sample)."})
    num_beams: int = field(default=4, metadata={"help": "Beams (--strategy beam)."})
    length_penalty: float = field(default=1.0, metadata={"help": "Beam score = log p / length ** length_penalty."})
    max_new_tokens: int | None = field(default=None, metadata={"help": "Longest output, </s> included (default: the model's max_sentence_length + 1)."})
    no_unk: bool = field(
        default=True,
        metadata={"help": "Never output <unk> (the default; decoding only, scores are unaffected). --no_unk false "
                          "prints the model's raw choices, <unk> included."},
    )
    no_repeat_ngram_size: int = field(default=0, metadata={"help": "Never repeat an n-gram of this size in a sentence (0: off)."})
    seed: int | None = field(default=None, metadata={"help": "Random seed: the same seed gives the same output."})
    json: bool = field(default=False, metadata={"help": "Print one JSON object per input instead of plain lines."})

    def decoding_config(self):
        """The validated [`~vaelm.generation.DecodingConfig`]."""
        from ..generation import DecodingConfig

        return DecodingConfig(
            strategy=self.strategy, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
            num_beams=self.num_beams, length_penalty=self.length_penalty, max_new_tokens=self.max_new_tokens,
            no_unk=self.no_unk, no_repeat_ngram_size=self.no_repeat_ngram_size,
        )


@dataclass
class SampleArguments:
    """What to decode."""

    num: int | None = field(default=None, metadata={"help": "Outputs per input (default 1); alone, N prior samples (default 10 with --prior)."})
    sentence: str | None = field(default=None, metadata={"help": "Decode samples of q(z|SENTENCE)."})
    mean: bool = field(default=False, metadata={"help": "Decode the posterior mean instead of samples of z (reconstruction)."})
    impute: str | None = field(default=None, metadata={"help": "Complete a sentence whose end is missing: 'the company said it will ___'."})
    impute_steps: int = field(default=50, metadata={"help": "Optimisation steps fitting q(z) to the observed words (--impute)."})
    prior: bool = field(default=False, metadata={"help": "Decode z ~ N(0, I)."})
    interactive: bool = field(default=False, metadata={"help": "Read sentences from standard input (the default without other input)."})

    def __post_init__(self):
        if self.num is not None and self.num < 1:
            raise ValueError(f"--num must be a positive integer, got {self.num}.")
        if self.impute_steps < 0:
            raise ValueError(f"--impute_steps must be 0 or more, got {self.impute_steps}.")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's lines and lists as written, and shows each flag's default."""


def parse_arguments(argv: list[str]) -> tuple[ModelArguments, DecodingArguments, SampleArguments]:
    """Parse `vaelm-sample` arguments."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, DecodingArguments, SampleArguments), prog=NAME, description=__doc__, formatter_class=HelpFormatter)
    return tuple(parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False))


def choose_mode(args: SampleArguments) -> str:
    """`"posterior"`, `"impute"`, `"prior"` or `"stdin"`, from the flags given (see the module docstring)."""
    given = [name for name, on in (("--sentence", args.sentence is not None), ("--impute", args.impute is not None),
                                   ("--prior", args.prior), ("--interactive", args.interactive)) if on]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} exclude each other: give one of them.")
    if args.sentence is not None:
        return "posterior"
    if args.impute is not None:
        return "impute"
    if args.prior or (args.num is not None and not args.interactive):
        return "prior"
    return "stdin"


def load_model(model_args: ModelArguments, seed: int | None = None):
    """
    The [`~vaelm.generation.SentenceVAE`] of `--model`, without progress bars, with every generator seeded.

    Args:
        model_args ([`ModelArguments`]): `--model` and `--device`.
        seed (`int`, *optional*): `--seed`; the same seed gives the same output.
    """
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    from ..generation import SentenceVAE

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    vae = SentenceVAE.from_pretrained(model_args.model, device=model_args.device)
    if seed is not None:
        set_seed(seed)
    return vae


def read_queries(prompts: list[str], stdin: TextIO, stdout: TextIO) -> Iterator[list[str]]:
    """
    Groups of `len(prompts)` lines from `stdin`, until end of input; on a terminal each line is asked for with its
    prompt. A group cut short by end of input is dropped.

    Args:
        prompts (`list[str]`): one prompt per line of a group (`["> "]`, or `["[1]> ", "[2]> ", "NUM > "]`).
        stdin (`TextIO`): where lines come from.
        stdout (`TextIO`): where prompts go.
    """
    interactive = _isatty(stdin)
    while True:
        answers = []
        for prompt in prompts:
            if interactive:
                stdout.write(prompt)
                stdout.flush()
            line = stdin.readline()
            if not line:
                if interactive:
                    stdout.write("\n")
                    stdout.flush()
                return
            answers.append(line.rstrip("\r\n"))
        yield answers


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def emit(results: list[dict], record: dict, args: DecodingArguments, stdout: TextIO) -> None:
    """Print the texts of `results`, one per line, or `record` with the results as one JSON line."""
    if args.json:
        stdout.write(json.dumps({**record, "samples": results}, ensure_ascii=False) + "\n")
    else:
        for result in results:
            stdout.write(result["text"] + "\n")
    stdout.flush()


def run(vae, mode: str, decoding_args: DecodingArguments, args: SampleArguments, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Decode what `mode` asks for and print it; returns the exit status."""
    from ..generation import MASK_PATTERN

    decoding = decoding_args.decoding_config()
    num = args.num or 1
    options = {"strategy": decoding.strategy}

    def one(sentence: str) -> None:
        if mode == "impute" or (mode == "stdin" and MASK_PATTERN.search(sentence)):
            results = vae.impute(sentence, num=num, mean=args.mean or num == 1, decoding=decoding, steps=args.impute_steps)
            emit(results, {"mode": "impute", "input": sentence, **options}, decoding_args, stdout)
        else:
            results = vae.sample_posterior(sentence, num=num, mean=args.mean, decoding=decoding)
            emit(results, {"mode": "posterior", "input": sentence, "mean": args.mean, **options}, decoding_args, stdout)

    if mode == "prior":
        emit(vae.sample_prior(args.num or 10, decoding), {"mode": "prior", **options}, decoding_args, stdout)
        return 0
    if mode == "posterior":
        one(args.sentence)
        return 0
    if mode == "impute":
        one(args.impute)
        return 0
    failures = 0
    for (line,) in read_queries(["> "], stdin, stdout):
        try:
            one(line)
        except ValueError as error:  # a bad line: say so and go on with the next one
            failures += 1
            print(f"{NAME}: error: {error}", file=stderr, flush=True)
    return 1 if failures and not _isatty(stdin) else 0


def main(argv: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """
    `vaelm-sample` itself.

    Args:
        argv (`list[str]`): command-line arguments.
        stdin, stdout, stderr (`TextIO`, *optional*): the streams (the process's own by default).

    Returns:
        `int`: the exit status.
    """
    model_args, decoding_args, sample_args = parse_arguments(argv)
    mode = choose_mode(sample_args)
    decoding_args.decoding_config()  # bad decoding flags fail before the model loads
    if mode == "posterior" and not sample_args.sentence.strip():
        raise ValueError("--sentence is empty: give a sentence to encode.")
    vae = load_model(model_args, decoding_args.seed)
    return run(vae, mode, decoding_args, sample_args, stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)


def entry_point() -> None:
    sys.exit(run_command(NAME, main))


if __name__ == "__main__":
    entry_point()
