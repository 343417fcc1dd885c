"""`vaelm-push`: push a saved model folder (model, tokenizer, custom code, model card, plot) to the Hub in one commit."""

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..runtime.threads import configure_threads, num_threads_field
from ..apps.demo import export_space
from ..hub.job import push
from . import parse_flags, run_command


@dataclass
class PushArguments:
    """Flags of `vaelm-push`."""

    model: str = field(metadata={"help": "The model folder that vaelm-train saved (--output_dir)."})
    repo_id: str = field(metadata={"help": "Hub repository ORG/NAME; created when missing."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to push to (created from main when missing)."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit title."})
    token: str | None = field(
        default=None,
        metadata={"help": "Write token (default: HF_TOKEN or `hf auth login`; prefer those: a flag shows in process lists). Never printed."},
    )
    keep_card: bool = field(
        default=False, metadata={"help": "Push README.md as it is instead of the card rendered for --repo_id."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "License id for the model card."})
    dataset: list[str] = field(default_factory=list, metadata={"help": "Hub dataset ids to list in the model card."})
    with_demo: bool = field(
        default=False, metadata={"help": "Also write and push app.py + requirements.txt (vaelm-demo --export): the files deploy as a Gradio Space."}
    )
    num_threads: int | None = num_threads_field()


def main(argv: list[str]) -> int:
    (arguments,) = parse_flags(HfArgumentParser(PushArguments), argv)
    configure_threads(arguments.num_threads)  # the card's latent map and plots run the model
    if arguments.with_demo:  # the Space files go up in the same commit
        export_space(arguments.model, arguments.model)
    commit = push(arguments)
    print(f"Pushed {arguments.model} to {arguments.repo_id}"
          f"{f' (branch {arguments.revision})' if arguments.revision else ''}: {commit.commit_url}")
    return 0


def entry_point() -> None:
    sys.exit(run_command("vaelm-push", main))


if __name__ == "__main__":
    entry_point()
