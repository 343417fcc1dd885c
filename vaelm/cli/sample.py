"""`vaelm-sample`: sentences from the prior, from the posterior of a sentence, or completions of a sentence's start.

What is decoded:

- `--sentence S`: `--num` samples of z ~ q(z|S) (`--mean`: the posterior mean, a reconstruction);
- `--impute "the company said it will ___"`: the missing end of a sentence (Bowman et al. 2016 §5.1);
- `--prior`, or `--num N` with no sentence: N sentences from z ~ N(0, I);
- `--interactive`, or nothing at all: sentences read from standard input, with a `> ` prompt on a terminal and
  line by line (no prompt) from a pipe, until end of input (Ctrl-D). A line with a `___` marker is imputed.

Each input gives `--num` output lines (one JSON object per input with `--json`).
"""

import json
import sys
from dataclasses import dataclass, field
from typing import TextIO

from ..generation.decoding import IMPUTE_STEPS, MASK_PATTERN
from . import ArgumentParser, build_parser, parse_flags, run_command
from .shared import DecodingArguments, ModelSourceArguments, isatty, load_sentence_vae, read_queries

NAME = "vaelm-sample"


@dataclass
class SampleArguments:
    """What to decode."""

    num: int | None = field(
        default=None,
        metadata={"help": "Outputs per input (default 1); alone, N prior samples (default 10 with --prior)."},
    )
    sentence: str | None = field(default=None, metadata={"help": "Decode samples of q(z|SENTENCE)."})
    mean: bool = field(
        default=False, metadata={"help": "Decode the posterior mean instead of samples of z (reconstruction)."}
    )
    impute: str | None = field(
        default=None, metadata={"help": "Complete a sentence whose end is missing: 'the company said it will ___'."}
    )
    impute_steps: int = field(
        default=IMPUTE_STEPS, metadata={"help": "Optimisation steps fitting q(z) to the observed words (--impute)."}
    )
    prior: bool = field(default=False, metadata={"help": "Decode z ~ N(0, I)."})
    interactive: bool = field(
        default=False, metadata={"help": "Read sentences from standard input (the default without other input)."}
    )

    def __post_init__(self):
        if self.num is not None and self.num < 1:
            raise ValueError(f"--num must be a positive integer, got {self.num}.")
        if self.impute_steps < 0:
            raise ValueError(f"--impute_steps must be 0 or more, got {self.impute_steps}.")


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-sample`'s flags."""
    return build_parser((ModelSourceArguments, DecodingArguments, SampleArguments), prog=NAME, description=__doc__)


def parse_arguments(argv: list[str]) -> tuple[ModelSourceArguments, DecodingArguments, SampleArguments]:
    """Parse `vaelm-sample` arguments."""
    return parse_flags(make_parser(), argv)


def choose_mode(args: SampleArguments) -> str:
    """`"posterior"`, `"impute"`, `"prior"` or `"stdin"`, from the flags given (see the module docstring)."""
    given = [
        name
        for name, on in (
            ("--sentence", args.sentence is not None),
            ("--impute", args.impute is not None),
            ("--prior", args.prior),
            ("--interactive", args.interactive),
        )
        if on
    ]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} exclude each other: give one of them.")
    if args.sentence is not None:
        return "posterior"
    if args.impute is not None:
        return "impute"
    if args.prior or (args.num is not None and not args.interactive):
        return "prior"
    return "stdin"


def emit(results: list[dict], record: dict, args: DecodingArguments, stdout: TextIO) -> None:
    """Print the texts of `results`, one per line, or `record` with the results as one JSON line."""
    if args.json:
        stdout.write(json.dumps({**record, "samples": results}, ensure_ascii=False) + "\n")
    else:
        for result in results:
            stdout.write(result["text"] + "\n")
    stdout.flush()


def run(
    vae,
    mode: str,
    decoding_args: DecodingArguments,
    args: SampleArguments,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Decode what `mode` asks for and print it; returns the exit status."""
    decoding = decoding_args.decoding_config()
    num = args.num or 1
    options = {"strategy": decoding.strategy}

    def one(sentence: str) -> None:
        if mode == "impute" or (mode == "stdin" and MASK_PATTERN.search(sentence)):
            results = vae.impute(
                sentence, num=num, mean=args.mean or num == 1, decoding=decoding, steps=args.impute_steps
            )
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
    return 1 if failures and not isatty(stdin) else 0


def main(
    argv: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
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
    vae = load_sentence_vae(model_args, decoding_args.seed)
    return run(vae, mode, decoding_args, sample_args, stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)


def entry_point() -> None:
    sys.exit(run_command(NAME, main))


if __name__ == "__main__":
    entry_point()
