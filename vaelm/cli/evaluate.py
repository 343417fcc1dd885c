"""`vaelm-evaluate`: likelihood metrics (IW-NLL, PPL, ELBO, KL, MI, active units) of a model on a split, and how well
the posterior mean reconstructs its sentences (greedy decoding, corpus BLEU-4 and exact match, `<unk>` allowed).

Prints one JSON object on stdout (for programs) and a three-line summary on stderr (for people), where the logs and
the progress bar also go. The per-dimension variances are in `--output` files, or on stdout with `--per_dimension`.
The job is [`vaelm.evaluation.job.run_evaluation`].
"""

import json
import logging
import sys

from ..evaluation.settings import EvaluationArguments
from ..runtime.threads import configure_threads
from . import ArgumentParser, build_parser, parse_flags, run_command

PROGRAM = "vaelm-evaluate"

__all__ = ["entry_point", "main", "make_parser", "parse_arguments"]


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-evaluate`'s flags."""
    return build_parser([EvaluationArguments], prog=PROGRAM)


def parse_arguments(argv: list[str] | None = None) -> EvaluationArguments:
    """
    Parse `vaelm-evaluate` flags.

    Args:
        argv (`list[str]`, *optional*): the flags; `sys.argv[1:]` when omitted.
    """
    (arguments,) = parse_flags(make_parser(), list(sys.argv[1:] if argv is None else argv))
    return arguments


def main(argv: list[str]) -> int:
    """
    Parse the flags, evaluate, print the summary as JSON.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stderr)
    arguments = parse_arguments(argv)
    configure_threads(arguments.num_threads)
    from ..evaluation.job import command_line, human_summary, run_evaluation  # here: --help needs no torch

    summary = run_evaluation(arguments, command=command_line(PROGRAM, argv))
    print(human_summary(summary), file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(run_command(PROGRAM, main))


if __name__ == "__main__":
    entry_point()
