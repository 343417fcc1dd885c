"""`vaelm-homotopy`: sentences along an evenly spaced path between the posterior means of two sentences.

`--start S1 --end S2 --steps N` prints N + 2 lines, the decoded ends included (Bowman et al. 2016 §5.2), with
`--mode linear` (equal steps on the segment) or `--mode slerp` (equal angular steps). Without the two sentences,
they are read from standard input: on a terminal with the prompts `[1]> `, `[2]> ` and `NUM > ` (the number of
intermediate steps; empty for --steps), from a pipe as groups of three lines without prompts, until end of input.
"""

import json
import sys
from dataclasses import dataclass, field
from typing import TextIO

from ..generation.decoding import HOMOTOPY_STEPS, INTERPOLATIONS
from . import ArgumentParser, build_parser, parse_flags, run_command
from .shared import DecodingArguments, ModelSourceArguments, isatty, load_sentence_vae, read_queries

NAME = "vaelm-homotopy"
PROMPTS = ["[1]> ", "[2]> ", "NUM > "]


@dataclass
class HomotopyArguments:
    """The two ends and the path between them."""

    start: str | None = field(default=None, metadata={"help": "First sentence."})
    end: str | None = field(default=None, metadata={"help": "Last sentence."})
    steps: int = field(
        default=HOMOTOPY_STEPS, metadata={"help": "Points strictly between the two ends (N + 2 lines in all)."}
    )
    mode: str = field(default=INTERPOLATIONS[0], metadata={"help": "Interpolation.", "choices": list(INTERPOLATIONS)})

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"--steps must be 0 or more, got {self.steps}.")
        if (self.start is None) != (self.end is None):
            raise ValueError("Give both --start and --end, or neither to read the sentences from standard input.")
        for flag, value in (("--start", self.start), ("--end", self.end)):
            if value is not None and not value.strip():
                raise ValueError(f"{flag} is empty: give a sentence.")


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-homotopy`'s flags."""
    return build_parser((ModelSourceArguments, DecodingArguments, HomotopyArguments), prog=NAME, description=__doc__)


def parse_arguments(argv: list[str]) -> tuple[ModelSourceArguments, DecodingArguments, HomotopyArguments]:
    """Parse `vaelm-homotopy` arguments."""
    return parse_flags(make_parser(), argv)


def parse_steps(text: str, default: int) -> int:
    """The answer to `NUM > `: a count of intermediate steps, `default` when empty."""
    if not text.strip():
        return default
    try:
        steps = int(text.strip())
    except ValueError:
        raise ValueError(f"NUM must be a whole number of intermediate steps, got {text.strip()!r}.") from None
    if steps < 0:
        raise ValueError(f"NUM must be 0 or more, got {steps}.")
    return steps


def print_path(points: list[dict], record: dict, as_json: bool, stdout: TextIO) -> None:
    """Print one line per point, or one JSON object holding them all."""
    if as_json:
        stdout.write(json.dumps({**record, "points": points}, ensure_ascii=False) + "\n")
    else:
        for point in points:
            stdout.write(point["text"] + "\n")
    stdout.flush()


def main(
    argv: list[str], stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """
    `vaelm-homotopy` itself.

    Args:
        argv (`list[str]`): command-line arguments.
        stdin, stdout, stderr (`TextIO`, *optional*): the streams (the process's own by default).

    Returns:
        `int`: the exit status.
    """
    model_args, decoding_args, args = parse_arguments(argv)
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    decoding = decoding_args.decoding_config()
    vae = load_sentence_vae(model_args, decoding_args.seed)

    def one(start: str, end: str, steps: int) -> None:
        points = vae.homotopy(start, end, steps=steps, mode=args.mode, decoding=decoding)
        record = {"start": start, "end": end, "steps": steps, "mode": args.mode, "strategy": decoding.strategy}
        print_path(points, record, decoding_args.json, stdout)

    if args.start is not None:
        one(args.start, args.end, args.steps)
        return 0
    failures = 0
    for start, end, num in read_queries(PROMPTS, stdin, stdout):
        try:
            one(start, end, parse_steps(num, args.steps))
        except ValueError as error:  # a bad query: say so and go on with the next one
            failures += 1
            print(f"{NAME}: error: {error}", file=stderr, flush=True)
    return 1 if failures and not isatty(stdin) else 0


def entry_point() -> None:
    sys.exit(run_command(NAME, main))


if __name__ == "__main__":
    entry_point()
