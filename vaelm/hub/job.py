"""The push job of `vaelm-push`: upload a saved model folder in one commit, its card rendered for the repository
(the folder itself is never written), with no message that could carry the token."""

from __future__ import annotations

from typing import Protocol

from huggingface_hub import CommitInfo

from .push import push_model_folder
from .tokens import redact_tokens


class PushSettings(Protocol):
    """What the job reads from `vaelm-push`'s flags (`vaelm.cli.push.PushArguments` has these fields; the job does
    not import the command, which sits above it)."""

    model: str
    repo_id: str
    private: bool
    revision: str | None
    commit_message: str | None
    token: str | None
    keep_card: bool
    license: str
    dataset: list[str]


def push(arguments: PushSettings) -> CommitInfo:
    """
    Push `arguments.model` to `arguments.repo_id` (see [`vaelm.hub.push_model_folder`]).

    Args:
        arguments ([`PushSettings`]): the parsed `vaelm-push` flags (a `vaelm.cli.push.PushArguments`).

    Returns:
        `CommitInfo`: the commit.
    """
    try:
        return push_model_folder(
            arguments.model,
            arguments.repo_id,
            private=arguments.private,
            revision=arguments.revision,
            commit_message=arguments.commit_message,
            token=arguments.token,
            refresh_card=not arguments.keep_card,
            license=arguments.license,
            extra_datasets=arguments.dataset,
        )
    except Exception as error:  # no message that crosses the CLI boundary may carry the token
        if arguments.token and arguments.token in str(error):
            raise type(error)(redact_tokens(str(error), arguments.token)) from None
        raise


__all__ = ["push"]
