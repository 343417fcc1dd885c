"""`vaelm-train`: build or reuse a tokenizer, train a VAE language model, save it to --output_dir.

The flags are three dataclasses parsed by `HfArgumentParser`: the job's settings ([`vaelm.training.settings`]; each
model flag is named after the `VAELMConfig` field it sets, with the original script's names as aliases) and the
Trainer's arguments. A
YAML or JSON file given as the first argument supplies defaults that later flags override. The job itself is
[`vaelm.training.job.train`].
"""

import json
import logging
import sys

from ..runtime.distributed import is_main_process, leave_process_group
from ..runtime.threads import configure_threads
from ..training.settings import DataArguments, ModelArguments
from ..training.trainer import VAETrainingArguments
from . import ArgumentParser, build_parser, parse_flags, run_command

__all__ = ["entry_point", "main", "make_parser", "parse_arguments"]


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-train`'s flags."""
    return build_parser((ModelArguments, DataArguments, VAETrainingArguments), prog="vaelm-train")


def parse_arguments(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, VAETrainingArguments]:
    """Parse `vaelm-train` arguments; a leading `.yaml`/`.yml`/`.json` file supplies defaults for the flags."""
    return parse_flags(make_parser(), list(sys.argv[1:] if argv is None else argv))


def main(argv: list[str]) -> int:
    """
    `vaelm-train` itself: parse the flags, set up logging and threads, train, print the final metrics as JSON.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    configure_threads(training_args.num_threads)
    from ..training.job import train  # here: the job's imports are not needed for --help or a bad flag

    metrics = train(model_args, data_args, training_args, command=["vaelm-train", *argv])
    leave_process_group()  # under accelerate launch: every rank has saved; leave together, not as each one exits
    if is_main_process():  # every rank holds the same metrics: printed once per job
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def entry_point() -> None:
    sys.exit(run_command("vaelm-train", main))


if __name__ == "__main__":
    entry_point()
