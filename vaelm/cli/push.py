"""`vaelm-push`: push a saved model folder (model, tokenizer, custom code, model card, plot) to the Hub in one commit."""

import sys
from dataclasses import dataclass, field

from ..pretrained.model_folder import STORAGE_DTYPES
from ..runtime.threads import configure_threads, num_threads_field
from . import ArgumentParser, build_parser, parse_flags, run_command


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
        metadata={
            "help": "Write token (default: HF_TOKEN or `hf auth login`; prefer those: a flag shows in process lists). Never printed."
        },
    )
    keep_card: bool = field(
        default=False, metadata={"help": "Push README.md as it is instead of the card rendered for --repo_id."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "License id for the model card."})
    dataset: list[str] = field(default_factory=list, metadata={"help": "Hub dataset ids to list in the model card."})
    with_demo: bool = field(
        default=False,
        metadata={
            "help": "Also write and push app.py + requirements.txt (vaelm-demo --export): the files deploy as a Gradio Space."
        },
    )
    storage_dtype: str | None = field(
        default=None,
        metadata={
            "help": "Upload the weights in this dtype (default: as saved). float16 or bfloat16 halves the download; "
            "the model still loads and computes in float32. The folder itself is not changed.",
            "choices": list(STORAGE_DTYPES),
        },
    )
    num_threads: int | None = num_threads_field()


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-push`'s flags."""
    return build_parser([PushArguments], prog="vaelm-push")


def main(argv: list[str]) -> int:
    """
    `vaelm-push` itself: parse the flags, set up threads, (with `--with_demo`) write the Space files, push.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    (arguments,) = parse_flags(make_parser(), argv)
    configure_threads(arguments.num_threads)  # the card's latent map and plots run the model
    # Here, not at the top: --help and a bad flag need none of the jobs' imports (torch).
    from ..apps.demo import export_space
    from ..hub.push import push_model_folder

    if arguments.with_demo:  # the Space files go up in the same commit
        export_space(arguments.model, arguments.model)
    commit = push_model_folder(
        arguments.model,
        arguments.repo_id,
        private=arguments.private,
        revision=arguments.revision,
        commit_message=arguments.commit_message,
        token=arguments.token,
        keep_card=arguments.keep_card,
        license=arguments.license,
        datasets=arguments.dataset,
        storage_dtype=arguments.storage_dtype,
    )
    print(
        f"Pushed {arguments.model} to {arguments.repo_id}"
        f"{f' (branch {arguments.revision})' if arguments.revision else ''}: {commit.commit_url}"
    )
    return 0


def entry_point() -> None:
    sys.exit(run_command("vaelm-push", main))


if __name__ == "__main__":
    entry_point()
