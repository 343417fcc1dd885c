"""Hub tokens never leave the machine: they are blanked out of every message and card, and a file that holds one is
never uploaded."""

import fnmatch
import re
from pathlib import Path

from ..pretrained.model_folder import REPO_IGNORE_PATTERNS

TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{8,}")


def redact_tokens(text: str, *tokens: str | None) -> str:
    """
    Replace the given tokens, and anything shaped like a Hugging Face token, by `***`.

    Args:
        text (`str`): a message or a card.
        tokens (`str`, *optional*): tokens to blank out even when they are not shaped like `hf_…`.
    """
    for token in tokens:
        if token:
            text = text.replace(token, "***")
    return TOKEN_PATTERN.sub("***", text)


def refuse_files_with_token(folder: Path, token: str | None) -> None:
    """
    Raise if any file to be uploaded contains the token (e.g. `training_args.bin` of a run given --hub_token).

    Args:
        folder (`Path`): the model folder about to be pushed (files matching `REPO_IGNORE_PATTERNS` are not read).
        token (`str`, *optional*): the token the push uses; nothing is checked without one.

    Raises:
        `PermissionError`: naming the file that holds the token.
    """
    if not token:
        return
    needle = token.encode()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or any(fnmatch.fnmatch(relative, pattern) for pattern in REPO_IGNORE_PATTERNS):
            continue
        if needle in path.read_bytes():
            raise PermissionError(
                f"{relative} contains your Hub token, so it is not pushed (a run given --hub_token pickles it into "
                "training_args.bin). Delete that file, or train with HF_TOKEN / `hf auth login` instead."
            )


__all__ = ["TOKEN_PATTERN", "redact_tokens", "refuse_files_with_token"]
