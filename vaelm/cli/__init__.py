"""Console entry points. Each command is a thin `main(argv)`; `run_command` is the boundary where errors that a
user can fix become one clear paragraph and a non-zero exit status instead of a traceback."""

import argparse
import copy
import dataclasses
import difflib
import json
import os
import re
import sys
import typing
from collections.abc import Callable, Iterable

import yaml
from transformers import HfArgumentParser

from ..runtime.distributed import is_main_process
from ..runtime.threads import wait_passively

# Every command imports this package before torch: OpenMP's idle threads will sleep (see `wait_passively`).
wait_passively()

DEBUG_FLAG = "--debug"
DEBUG_HINT = "(Run with --debug or VAELM_DEBUG=1 to see the traceback.)"


class UsageError(ValueError):
    """A mistake in the command line itself (an unknown flag, an impossible value): the message says it all, so no
    `--debug` hint follows it."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """
    Keeps the description's lines and lists as written, and shows each flag's default, unless its help already
    says what the default is ("(default: the bundled PTB model)") or there is none to show (`None`, a required flag).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default is None or action.required:
            return text
        return super()._get_help_string(action)


class ArgumentParser(HfArgumentParser):
    """
    `HfArgumentParser` whose `str | bool` fields (transformers' `include_num_input_tokens_seen`) take their string
    values, not only booleans.
    """

    @staticmethod
    def _parse_dataclass_field(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
        # transformers narrows `str | bool` to bool, on the field object itself: work on a copy.
        field = copy.copy(field)
        string_or_bool = set(typing.get_args(field.type)) == {str, bool}  # `str | bool` or `Union[str, bool]`
        HfArgumentParser._parse_dataclass_field(parser, field)
        if string_or_bool:
            parser._option_string_actions[f"--{field.name}"].type = string_or_boolean


def string_or_boolean(value: str) -> str | bool:
    """A boolean for yes/no, true/false, 1/0 (any case), else the string itself (`non_padding`)."""
    lowered = value.lower()
    if lowered in ("yes", "true", "t", "y", "1"):
        return True
    if lowered in ("no", "false", "f", "n", "0"):
        return False
    return value


def build_parser(dataclass_types: Iterable[type], prog: str, description: str | None = None) -> ArgumentParser:
    """
    The parser of a command: its argument dataclasses, its name, its description, and [`HelpFormatter`]. Flags are
    taken by their full names only: argparse's abbreviations would read `--max_step 10` as `--max_steps 10` without a
    word; here it is an unknown flag, reported with the one it resembles.

    Args:
        dataclass_types (`Iterable[type]`): the dataclasses whose fields are the flags.
        prog (`str`): the command's name, for usage lines and errors.
        description (`str`, *optional*): the text above the flags in `--help`.
    """
    return ArgumentParser(
        list(dataclass_types), prog=prog, description=description, formatter_class=HelpFormatter, allow_abbrev=False
    )


def run_command(name: str, main: Callable[[list[str]], int | None], argv: list[str] | None = None) -> int:
    """
    Run `main(argv)` and turn any exception into `name: error: message` on stderr with exit status 1.

    `--debug` (removed from argv) or `VAELM_DEBUG=1` lets the traceback through instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("VAELM_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        return main(argv) or 0
    except KeyboardInterrupt as interruption:
        detail = str(interruption).strip()  # e.g. where the checkpoint is and how to resume
        if is_main_process():  # every rank of a multi-process job stops at the same step: one notice
            print(f"{name}: interrupted" + (f": {detail}" if detail else "."), file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as error:  # the user-facing boundary: one paragraph, no traceback
        if debug:
            raise
        message = describe_error(error)
        hint = "" if isinstance(error, UsageError) else f"\n{DEBUG_HINT}"
        print(f"{name}: error: {message}{hint}", file=sys.stderr)
        return 1


def describe_error(error: BaseException) -> str:
    """
    The message printed for `error` at the CLI boundary.

    Our own errors (`ValueError`, `OSError` and `RuntimeError` subclasses, e.g. `DataError`, `ModelLoadError`) are
    written for users and are printed as they are. Anything else also names its class (a bare `KeyError` says only
    `'text'`). When a library re-raised an error behind a generic message (`raise Generic(...) from cause`), the
    cause is appended, since it is usually what the user can act on.
    """
    message = str(error).strip()
    if not isinstance(error, (ValueError, OSError, RuntimeError)) or not message:
        message = f"{error.__class__.__name__}: {message}" if message else error.__class__.__name__
    cause = error.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in message:
        message += f" ({cause.__class__.__name__}: {str(cause).strip()})"
    return message


CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def parse_flags(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """
    `parser.parse_args_into_dataclasses(args=argv)`, once every flag is known to be one of the parser's. A leading
    `.yaml`/`.yml`/`.json` file supplies defaults: its keys are flag names, and flags after it override them.

    transformers reports a mistyped flag only after the dataclasses were built, whose own checks can fail first on
    something else, and as "Some specified arguments are not used by the HfArgumentParser: [...]". This names the
    flag (or the file's key) and the closest known one instead.

    Args:
        parser (`HfArgumentParser`): the command's parser.
        argv (`list[str]`): the flags, after an optional config file.
    """
    if (
        argv
        and not argv[0].startswith("-")
        and not argv[0].endswith(CONFIG_FILE_SUFFIXES)
        and looks_like_a_file(argv[0])
    ):
        raise UsageError(
            f"{argv[0]} is given where the config file goes, but a config file is YAML or JSON named "
            f"{'/'.join(CONFIG_FILE_SUFFIXES)} (a mapping of flag names to values): rename it, or give its settings "
            "as flags."
        )
    if argv and argv[0].endswith(CONFIG_FILE_SUFFIXES):
        file_flags = config_file_flags(argv[0])
        # Keys are checked by exact name, as flags are (no abbreviations), and first.
        unknown = [flag for flag in file_flags if flag.startswith("--") and flag not in parser._option_string_actions]
        if unknown:
            raise unknown_flags_error(parser, unknown, origin=f"config file {argv[0]}", keys=True)
        argv = file_flags + argv[1:]
    _, unknown = parser.parse_known_args(args=argv)
    if unknown:
        raise unknown_flags_error(parser, unknown)
    try:
        return tuple(parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False))
    except ValueError as error:  # a dataclass's own check of the values given (`--num must be a positive integer`)
        if isinstance(error, UsageError):
            raise
        raise UsageError(str(error)) from error


def looks_like_a_file(argument: str) -> bool:
    """Whether a leading argument names a file (one that exists, or a name with a suffix such as `recipe.txt`).

    Args:
        argument (`str`): the first command-line argument, not a flag.
    """
    return os.path.isfile(argument) or re.search(r"\.[A-Za-z]\w*$", argument) is not None


def config_file_flags(path: str) -> list[str]:
    """Turn a YAML/JSON mapping into `--key value` flags, so that flags given after it take precedence."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except OSError as error:
        raise FileNotFoundError(f"Cannot read config file {path}: {error.strerror}.") from None
    except yaml.YAMLError as error:
        raise ValueError(f"Config file {path} is not valid YAML/JSON: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"Config file {path} must hold a mapping of flag names to values.")
    flags = []
    for key, value in values.items():
        if value is None:
            continue
        flags.append(f"--{key}")
        if isinstance(value, (list, tuple)):
            flags.extend(str(v) for v in value)
        elif isinstance(value, dict):  # e.g. lr_scheduler_kwargs: the flag takes JSON, not Python's repr
            flags.append(json.dumps(value))
        else:
            flags.append(str(value).lower() if isinstance(value, bool) else str(value))
    return flags


def unknown_flags_error(
    parser: HfArgumentParser,
    unknown: list[str],
    origin: str = "",
    keys: bool = False,
) -> ValueError:
    """
    A `ValueError` with one clause per argument that `parser` does not know, each with the closest flag it does know.

    Args:
        parser (`HfArgumentParser`): the command's parser.
        unknown (`list[str]`): the arguments it does not know (what `parse_known_args` leaves over).
        origin (`str`, *optional*): where the arguments come from, for the message (e.g. "config file train.yaml").
        keys (`bool`, *optional*, defaults to `False`): name them as a config file's keys (`hidden_size`), not flags.
    """
    known = list(parser._option_string_actions)  # argparse has no public list of its flags
    what, show = ("key", lambda flag: flag.lstrip("-")) if keys else ("flag", lambda flag: flag)
    problems, after_flag = [], False
    for argument in unknown:
        if argument.startswith("-") and len(argument) > 1:
            name = argument.split("=", 1)[0]
            close = closest_flag(name, known)
            problems.append(f"unknown {what} {show(name)}" + (f" (did you mean {show(close)}?)" if close else ""))
            after_flag = True
        elif not after_flag:  # a value after an unknown flag is that flag's; any other stray value is reported
            problems.append(f"unexpected value {argument!r} (a value must follow its flag)")
    message = "; ".join(problems) + (f" in {origin}" if origin else "")
    return UsageError(f"{message[0].upper()}{message[1:]}. --help lists every flag.")


def closest_flag(name: str, known: list[str]) -> str | None:
    """The known flag that `name` most likely meant: one it extends (`--num_samples` → `--num`), else the most similar."""
    extended = [flag for flag in known if name.startswith((f"{flag}_", f"{flag}-")) and len(flag) > 2]
    if extended:
        return max(extended, key=len)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None
