"""Pushing a saved model folder to the Hub in one commit: weights, config, generation config, tokenizer, the custom
code (`configuration_vaelm.py`, `modeling_vaelm.py`, `tokenization_vaelm.py`, `pipeline_vaelm.py`), the training curves and record, and the
model card ([`vaelm.hub.model_card`]) rendered again for the repository id.

A push never writes into the folder it pushes: the card rendered for the repository goes into a temporary staging
folder (links to the folder's files, and the new `README.md`), which is what is uploaded. A push that fails leaves
the folder as it was; `write_model_card` is there to change the card on disk.

`vaelm-push` calls [`push_model_folder`]; `vaelm-train --push_to_hub` goes through the
Trainer, which leaves out the same files (`REPO_IGNORE_PATTERNS`). The token is never logged, printed or uploaded
([`vaelm.hub.tokens`]).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from ..pretrained.loading import check_model_folder, load_model_and_tokenizer
from ..pretrained.model_folder import CARD_FILE, REPO_IGNORE_PATTERNS, pushed_files
from ..pretrained.storage import store_weights, stored_dtype
from ..version import __version__
from .model_card import DEFAULT_LICENSE, render_model_card
from .tokens import redact_tokens, refuse_files_with_token

logger = logging.getLogger(__name__)


def _is_connection_error(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionError) or type(error).__name__ in (
            "ConnectError",
            "ConnectTimeout",
            "ProxyError",
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def _errors_without(token: str | None) -> Iterator[None]:
    """No error message that leaves this block carries `token` (it crosses the CLI boundary)."""
    try:
        yield
    except Exception as error:
        if token and token in str(error):
            raise type(error)(redact_tokens(str(error), token)) from None
        raise


def push_model_folder(
    model_dir: str | Path,
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
    Push a saved model folder (model, tokenizer, custom code, card, plot) to the Hub in one commit.

    Args:
        model_dir (`str` or `Path`): the folder `vaelm-train` wrote.
        repo_id (`str`): `ORG/NAME`; the repository is created when missing.
        private (`bool`, *optional*, defaults to `False`): create the repository as private.
        revision (`str`, *optional*): a branch to push to (created from `main` when missing).
        commit_message (`str`, *optional*): the commit title.
        token (`str`, *optional*): a write token; default `HF_TOKEN` or the token of `hf auth login`. Never logged.
        keep_card (`bool`, *optional*, defaults to `False`): upload the folder's `README.md` as it is, instead of
            the card rendered again for `repo_id` (its id in the examples, any evaluation results added since
            training); the folder itself is never written either way.
        license (`str`, *optional*, defaults to `"apache-2.0"`): the card's license.
        datasets (`list[str]`, *optional*): more Hub dataset ids to list in the card.
        storage_dtype (`str`, *optional*): upload the weights cast to `"float16"` or `"bfloat16"` (half the
            download; they load and compute in float32) or `"float32"`; default: as the folder stores them. The cast
            copy is written into the staging folder ([`vaelm.pretrained.storage.store_weights`]), never over the
            folder's own weights.

    Returns:
        `CommitInfo`: the commit (`oid`, `commit_url`).

    Raises:
        `FileNotFoundError`: the folder is not a saved model. `ConnectionError`: the Hub endpoint cannot be
        reached. `PermissionError`: the token was refused, or a file to upload contains it. `ValueError`: an
        unknown `storage_dtype`, or weights that float16 cannot hold. No error message carries `token`.
    """
    with _errors_without(token):
        folder = check_model_folder(model_dir)
        resolved_token = token or get_token()
        refuse_files_with_token(folder, resolved_token)
        with tempfile.TemporaryDirectory(prefix="vaelm-push-") as staging:
            upload = folder
            if not keep_card or storage_dtype:
                upload = Path(staging) / folder.resolve().name
                written = store_weights(folder, upload, storage_dtype) if storage_dtype else []
                stage_for_upload(folder, upload, skip={*written, *([] if keep_card else [CARD_FILE])})
            if not keep_card:
                # Rendered from what is uploaded: with --storage_dtype, the card's samples come from the cast weights.
                model, tokenizer = load_model_and_tokenizer(upload)
                card = render_model_card(
                    folder,
                    repo_id=repo_id,
                    license=license,
                    extra_datasets=datasets,
                    model=model,
                    tokenizer=tokenizer,
                    weights_dtype=stored_dtype(upload),
                )
                card.save(upload / CARD_FILE)
            commit, pushed_to = _upload(
                upload,
                repo_id,
                folder.resolve().name,
                private=private,
                revision=revision,
                commit_message=commit_message,
                token=token,
                resolved_token=resolved_token,
            )
        logger.info("Pushed %s to %s (commit %s).", folder, pushed_to, commit.oid)
        return commit


def stage_for_upload(folder: Path, staging: Path, skip: Collection[str] = (CARD_FILE,)) -> Path:
    """
    A folder to upload in place of `folder`: links to (or, where links are not allowed, copies of) every file that
    a push uploads, except those in `skip`, which the caller writes. Nothing in `folder` is opened for writing.

    Args:
        folder (`Path`): the model folder.
        staging (`Path`): an empty or missing folder (e.g. inside a temporary directory).
        skip (`Collection[str]`, *optional*, defaults to the card): paths relative to `folder` not to link.

    Returns:
        `Path`: `staging`.
    """
    staging.mkdir(parents=True, exist_ok=True)
    for relative in pushed_files(folder):
        if relative in skip:
            continue
        source, target = folder / relative, staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(source.resolve(), target)
        except OSError:  # no symbolic links here (e.g. Windows without the privilege): copy
            shutil.copy2(source, target)
    return staging


def _upload(
    upload: Path,
    repo_id: str,
    name: str,
    *,
    private: bool,
    revision: str | None,
    commit_message: str | None,
    token: str | None,
    resolved_token: str | None,
) -> tuple[CommitInfo, str]:
    """Create the repository (and branch) and upload the folder in one commit, with errors a user can act on."""
    api = HfApi(token=token, library_name="vaelm", library_version=__version__)
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_url.repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            folder_path=upload,
            repo_id=repo_url.repo_id,
            revision=revision,
            commit_message=commit_message or f"Upload {name} with vaelm",
            ignore_patterns=list(REPO_IGNORE_PATTERNS),
        )
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401 and not resolved_token:
            raise PermissionError(
                f"No Hub token was found, so the Hub at {api.endpoint} refused the write to {repo_id} (HTTP 401). "
                "Log in with `hf auth login`, or set HF_TOKEN (or --token) to a token with write access."
            ) from None
        if status in (401, 403):
            raise PermissionError(
                f"The Hub at {api.endpoint} refused to let this token write to {repo_id} (HTTP {status}). Log in with "
                "`hf auth login`, or set HF_TOKEN (or --token) to a token with write access."
            ) from None
        raise RuntimeError(
            redact_tokens(f"Pushing to {repo_id} at {api.endpoint} failed: {error}", resolved_token)
        ) from None
    except Exception as error:
        if _is_connection_error(error):
            raise ConnectionError(
                f"Cannot reach the Hub at {api.endpoint} ({type(error).__name__}: {redact_tokens(str(error), resolved_token)}). "
                "Check your network, or HF_ENDPOINT if you set it."
            ) from None
        raise
    return commit, repo_url.repo_id


__all__ = ["push_model_folder"]
