"""The push job of `vaelm-push`: refresh the model card and upload a saved model folder in one commit, with no
message that could carry the token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huggingface_hub import CommitInfo

from .push import push_model_folder
from .tokens import redact_tokens

if TYPE_CHECKING:  # the argument dataclass belongs to the command, which calls this job
    from ..cli.push import PushArguments


def push(arguments: PushArguments) -> CommitInfo:
    """
    Push `arguments.model` to `arguments.repo_id` (see [`vaelm.hub.push_model_folder`]).

    Args:
        arguments ([`~vaelm.cli.push.PushArguments`]): the parsed `vaelm-push` flags.

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
