"""`vaelm-train`: build or reuse a tokenizer, train a VAE language model, save it to --output_dir.

The flags are three dataclasses parsed by `HfArgumentParser`: the job's settings ([`vaelm.training.settings`]; each
model flag is named after the `VAELMConfig` field it sets, with the original script's names as aliases) and the
Trainer's arguments. A
YAML or JSON file given as the first argument supplies defaults that later flags override. The job itself is
[`vaelm.training.job.train`].
"""

import logging
import sys

from ..runtime.distributed import leave_process_group
from ..runtime.threads import configure_threads
from ..training.settings import DataArguments, ModelArguments
from ..training.trainer import VAETrainingArguments
from . import ArgumentParser, build_parser, parse_flags, run_command

__all__ = ["entry_point", "main", "make_parser", "parse_arguments"]


RESUME_HELP = (
    "Continue an interrupted run: `true` resumes from the newest complete checkpoint (one whose trainer_state.json "
    "exists) in --output_dir; a path resumes from that checkpoint folder. Give the run's other flags again."
)


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-train`'s flags (transformers' help of `--resume_from_checkpoint` replaced by ours)."""
    parser = build_parser((ModelArguments, DataArguments, VAETrainingArguments), prog="vaelm-train")
    parser._option_string_actions["--resume_from_checkpoint"].help = RESUME_HELP  # argparse has no public setter
    return parser


def parse_arguments(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, VAETrainingArguments]:
    """Parse `vaelm-train` arguments; a leading `.yaml`/`.yml`/`.json` file supplies defaults for the flags."""
    return parse_flags(make_parser(), list(sys.argv[1:] if argv is None else argv))


def main(argv: list[str]) -> int:
    """
    `vaelm-train` itself: parse the flags, set up logging and threads, train. The final metrics go to
    `all_results.json` in the output folder, which the log's last lines name with the commands to try the model.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    configure_threads(training_args.num_threads)
    from ..training.job import train  # here: the job's imports are not needed for --help or a bad flag

    train(model_args, data_args, training_args, command=["vaelm-train", *argv])
    leave_process_group()  # under accelerate launch: every rank has saved; leave together, not as each one exits
    return 0


def entry_point() -> None:
    sys.exit(run_command("vaelm-train", main))


if __name__ == "__main__":
    entry_point()
