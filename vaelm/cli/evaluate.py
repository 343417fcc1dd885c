"""`vaelm-evaluate`: likelihood metrics (IW-NLL, PPL, ELBO, KL, MI, active units) of a model on a split.

Prints one JSON object on stdout (for programs) and a three-line summary on stderr (for people), where the logs and
the progress bar also go. The per-dimension variances are in `--output` files, or on stdout with `--per_dimension`.
"""

import json
import logging
import sys

from . import run_command

PROGRAM = "vaelm-evaluate"


def main(argv: list[str]) -> int:
    """
    Parse the flags, evaluate, print the summary as JSON.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    from ..evaluation import command_line, human_summary, parse_arguments, run_evaluation

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
