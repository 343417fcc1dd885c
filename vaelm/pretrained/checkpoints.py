"""Checkpoint folders of a training run: which ones are complete, the newest complete one, and `--resume_from_checkpoint`.

The Trainer writes `trainer_state.json` last, so a folder whose state file parses is complete; a run killed while
saving leaves one without it (or with a truncated one), and such a folder is never resumed from or loaded.
"""

import json
import logging
import os
import re
import shlex
from pathlib import Path

# transformers.trainer.TRAINER_STATE_NAME, written out: importing the Trainer (with datasets and accelerate) would
# double the start-up time of every command that loads a model (tests/test_commands.py compares the two).
TRAINER_STATE_NAME = "trainer_state.json"

from .model_folder import RUN_CONFIGURATION_NAME

logger = logging.getLogger(__name__)

RESUME_FLAG = "--resume_from_checkpoint"


def is_complete_checkpoint(path: str | Path) -> bool:
    """Whether the Trainer finished writing the checkpoint folder `path`: its `trainer_state.json` (written last) parses."""
    try:
        state = json.loads((Path(path) / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """
    The newest `checkpoint-N` folder whose `trainer_state.json` (written last by the Trainer) parses.

    A run killed while saving leaves a folder without it, or with a truncated one; such a folder is skipped.
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    candidates = []
    for path in folder.iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if match and path.is_dir():
            candidates.append((int(match.group(1)), path))
    for _, path in sorted(candidates, reverse=True):
        if is_complete_checkpoint(path):
            return path
    return None



def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """`true` means the newest complete checkpoint in `output_dir` (none: start fresh); anything else is a path."""
    if value is None or value.lower() in ("false", "no", "0", ""):
        return None
    if value.lower() in ("true", "yes", "1", "last"):
        checkpoint = last_complete_checkpoint(output_dir)
        skipped = sorted(
            path.name for path in Path(output_dir).glob("checkpoint-*")
            if path.is_dir() and not is_complete_checkpoint(path)
        )
        if skipped:
            logger.warning("Skipping unfinished checkpoint folders (no complete trainer_state.json; a run was killed "
                           "while saving): %s.", ", ".join(skipped))
        if checkpoint is None:
            logger.warning("No complete checkpoint in %s; training from the start.", output_dir)
        return str(checkpoint) if checkpoint else None
    if not is_complete_checkpoint(value):
        newest = last_complete_checkpoint(output_dir)
        problem = ("its trainer_state.json is missing or cut short (the run was probably killed while saving it)"
                   if Path(value).is_dir() else "the folder does not exist")
        raise FileNotFoundError(
            f"--resume_from_checkpoint {value} is not a complete checkpoint folder: {problem}. "
            + (f"Resume from {newest}, or pass --resume_from_checkpoint true to take the newest complete checkpoint."
               if newest else "Pass --resume_from_checkpoint true to take the newest complete checkpoint.")
        )
    return value


def checkpoint_step(path: str | Path) -> tuple[int, int] | None:
    """`(global_step, max_steps)` of a complete checkpoint folder, `None` when it cannot be read."""
    try:
        state = json.loads((Path(path) / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
        return int(state["global_step"]), int(state.get("max_steps") or 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_record(output_dir: str | Path) -> dict | None:
    """The `_run_configuration.json` that `vaelm-train` wrote into `output_dir`, `None` when absent or unreadable."""
    try:
        record = json.loads((Path(output_dir) / RUN_CONFIGURATION_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def resume_command(output_dir: str | Path) -> str | None:
    """
    The command that finishes the training run writing into `output_dir`: the command recorded in its
    `_run_configuration.json`, with `--resume_from_checkpoint true` (in place of any such flag it had), preceded by
    `cd DIR &&` when it was started from another folder. `None` when no command was recorded.

    Args:
        output_dir (`str` or `Path`): the run's `--output_dir`.
    """
    record = run_record(output_dir) or {}
    command = record.get("command")
    if not isinstance(command, list) or not command:
        return None
    kept, skip = [], False
    for part in map(str, command):
        if skip:
            skip = False
        elif part == RESUME_FLAG:
            skip = True  # and its value
        elif not part.startswith(f"{RESUME_FLAG}="):
            kept.append(part)
    text = shlex.join([*kept, RESUME_FLAG, "true"])
    started_in = record.get("cwd")
    if isinstance(started_in, str) and Path(started_in).resolve() != Path(os.getcwd()).resolve():
        text = f"cd {shlex.quote(started_in)} && {text}"
    return text


__all__ = ["checkpoint_step", "is_complete_checkpoint", "last_complete_checkpoint", "resolve_resume", "resume_command", "run_record"]
