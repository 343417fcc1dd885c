"""The push job of `vaelm-push`: upload a saved model folder in one commit, its card rendered for the repository
(the folder itself is never written), with no message that could carry the token."""

from pathlib import Path

from huggingface_hub import CommitInfo

from .model_card import DEFAULT_LICENSE
from .push import push_model_folder
from .tokens import redact_tokens


def push(
    model: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    keep_card: bool = False,
    license: str = DEFAULT_LICENSE,
    datasets: list[str] | None = None,
    storage_dtype: str | None = None,
) -> CommitInfo:
    """
    Push the model folder `model` to `repo_id` (see [`vaelm.hub.push.push_model_folder`]).

    Args:
        model (`str` or `Path`): the model folder that `vaelm-train` saved.
        repo_id (`str`): the Hub repository, `ORG/NAME`; created when missing.
        private (`bool`, *optional*, defaults to `False`): create the repository as private.
        revision (`str`, *optional*): the branch to push to.
        commit_message (`str`, *optional*): the commit title.
        token (`str`, *optional*): a write token; never part of an error message.
        keep_card (`bool`, *optional*, defaults to `False`): push `README.md` as it is instead of rewriting the card.
        license (`str`, *optional*, defaults to `"apache-2.0"`): the license id of the model card.
        datasets (`list[str]`, *optional*): Hub dataset ids to list in the model card.
        storage_dtype (`str`, *optional*): upload the weights in this dtype (`"float16"` or `"bfloat16"` halves the
            download; they still compute in float32); default: as stored.

    Returns:
        `CommitInfo`: the commit.
    """
    try:
        return push_model_folder(
            model,
            repo_id,
            private=private,
            revision=revision,
            commit_message=commit_message,
            token=token,
            refresh_card=not keep_card,
            license=license,
            extra_datasets=datasets,
            storage_dtype=storage_dtype,
        )
    except Exception as error:  # no message that crosses the CLI boundary may carry the token
        if token and token in str(error):
            raise type(error)(redact_tokens(str(error), token)) from None
        raise


__all__ = ["push"]
