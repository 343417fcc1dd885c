"""`vaelm-train`: build or reuse a tokenizer, train a VAE language model, save it to --output_dir."""

import json
import sys

from . import run_command


def main(argv: list[str]) -> int:
    from ..training import parse_arguments, train

    model_args, data_args, training_args = parse_arguments(argv)
    metrics = train(model_args, data_args, training_args)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


def entry_point() -> None:
    sys.exit(run_command("vaelm-train", main))


if __name__ == "__main__":
    entry_point()
