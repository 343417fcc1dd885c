"""Pushing a saved model folder to the Hub in one commit: weights, config, generation config, tokenizer, the custom
code (`configuration_vaelm.py`, `modeling_vaelm.py`, `pipeline_vaelm.py`), the training curves and record, and the
model card ([`vaelm.hub.model_card`]) rendered again for the repository id.

`vaelm-push` calls [`push_model_folder`] (through [`vaelm.hub.job`]); `vaelm-train --push_to_hub` goes through the
Trainer, which leaves out the same files (`REPO_IGNORE_PATTERNS`). The token is never logged, printed or uploaded
([`vaelm.hub.tokens`]).
"""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from ..pretrained.loading import check_model_folder
from ..pretrained.model_folder import REPO_IGNORE_PATTERNS
from ..version import __version__
from .model_card import DEFAULT_LICENSE, write_model_card
from .tokens import redact_tokens, refuse_files_with_token

logger = logging.getLogger(__name__)


def _is_connection_error(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionError) or type(error).__name__ in ("ConnectError", "ConnectTimeout", "ProxyError"):
            return True
        error = error.__cause__ or error.__context__
    return False


def push_model_folder(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    refresh_card: bool = True,
    license: str = DEFAULT_LICENSE,
    extra_datasets: list[str] | None = None,
) -> CommitInfo:
    """
    Push a saved model folder (model, tokenizer, custom code, card, plot) to the Hub in one commit.

    Args:
        model_dir (`str` or `Path`): the folder `vaelm-train` wrote.
        repo_id (`str`): `ORG/NAME`; the repository is created when missing.
        private (`bool`, *optional*, defaults to `False`): create the repository as private.
        revision (`str`, *optional*): a branch to push to (created from `main` when missing).
        commit_message (`str`, *optional*): the commit title.
        token (`str`, *optional*): a write token; default `HF_TOKEN` or the token of `hf auth login`. Never logged.
        refresh_card (`bool`, *optional*, defaults to `True`): rewrite `README.md` first, so that it shows the repo
            id and any evaluation results added since training.
        license (`str`, *optional*, defaults to `"apache-2.0"`): the card's license.
        extra_datasets (`list[str]`, *optional*): Hub dataset ids to list in the card.

    Returns:
        `CommitInfo`: the commit (`oid`, `commit_url`).

    Raises:
        `FileNotFoundError`: the folder is not a saved model. `ConnectionError`: the Hub endpoint cannot be
        reached. `PermissionError`: the token was refused, or a file to upload contains it.
    """
    folder = check_model_folder(model_dir)
    resolved_token = token or get_token()
    refuse_files_with_token(folder, resolved_token)
    if refresh_card:
        write_model_card(folder, repo_id=repo_id, license=license, extra_datasets=extra_datasets)
    api = HfApi(token=token, library_name="vaelm", library_version=__version__)
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_url.repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            folder_path=folder,
            repo_id=repo_url.repo_id,
            revision=revision,
            commit_message=commit_message or f"Upload {folder.resolve().name} with vaelm",
            ignore_patterns=list(REPO_IGNORE_PATTERNS),
        )
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            raise PermissionError(
                f"The Hub at {api.endpoint} refused to let this token write to {repo_id} (HTTP {status}). Log in with "
                "`hf auth login`, or set HF_TOKEN (or --token) to a token with write access."
            ) from None
        raise RuntimeError(redact_tokens(f"Pushing to {repo_id} at {api.endpoint} failed: {error}", resolved_token)) from None
    except Exception as error:
        if _is_connection_error(error):
            raise ConnectionError(
                f"Cannot reach the Hub at {api.endpoint} ({type(error).__name__}: {redact_tokens(str(error), resolved_token)}). "
                "Check your network, or HF_ENDPOINT if you set it."
            ) from None
        raise
    logger.info("Pushed %s to %s (commit %s).", folder, repo_url.repo_id, commit.oid)
    return commit


__all__ = ["push_model_folder"]
