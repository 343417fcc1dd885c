"""Console entry points. Each command is a thin `main(argv)`; `run_command` is the boundary where errors that a
user can fix become one clear paragraph and a non-zero exit status instead of a traceback."""

import difflib
import os
import sys
from collections.abc import Callable

import yaml
from transformers import HfArgumentParser

DEBUG_FLAG = "--debug"


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
        print(f"{name}: interrupted" + (f": {detail}" if detail else "."), file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as error:  # the user-facing boundary: one paragraph, no traceback
        if debug:
            raise
        message = describe_error(error)
        print(f"{name}: error: {message}\n(Run with --debug or VAELM_DEBUG=1 to see the traceback.)", file=sys.stderr)
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


def parse_flags(parser: HfArgumentParser, argv: list[str], aliases: dict[str, str] | None = None) -> tuple:
    """
    `parser.parse_args_into_dataclasses(args=argv)`, once every flag is known to be one of the parser's. A leading
    `.yaml`/`.yml`/`.json` file supplies defaults: its keys are flag names, and flags after it override them.

    transformers reports a mistyped flag only after the dataclasses were built, whose own checks can fail first on
    something else, and as "Some specified arguments are not used by the HfArgumentParser: [...]". This names the
    flag (or the file's key) and the closest known one instead.

    Args:
        parser (`HfArgumentParser`): the command's parser.
        argv (`list[str]`): the flags, after an optional config file.
        aliases (`dict[str, str]`, *optional*): unknown names that mean a known flag (`--hidden_size` →
            `--num_units`), suggested before any look-alike.
    """
    if argv and argv[0].endswith(CONFIG_FILE_SUFFIXES):
        file_flags = config_file_flags(argv[0])
        # Keys are checked by exact name (the command line also accepts unambiguous abbreviations), and first.
        unknown = [flag for flag in file_flags if flag.startswith("--") and flag not in parser._option_string_actions]
        if unknown:
            raise unknown_flags_error(parser, unknown, aliases, origin=f"config file {argv[0]}", keys=True)
        argv = file_flags + argv[1:]
    _, unknown = parser.parse_known_args(args=argv)
    if unknown:
        raise unknown_flags_error(parser, unknown, aliases)
    return tuple(parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False))


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
        else:
            flags.append(str(value).lower() if isinstance(value, bool) else str(value))
    return flags


def unknown_flags_error(
    parser: HfArgumentParser, unknown: list[str], aliases: dict[str, str] | None = None, origin: str = "", keys: bool = False
) -> ValueError:
    """
    A `ValueError` with one clause per argument that `parser` does not know, each with the closest flag it does know.

    Args:
        parser (`HfArgumentParser`): the command's parser.
        unknown (`list[str]`): the arguments it does not know (what `parse_known_args` leaves over).
        aliases (`dict[str, str]`, *optional*): as in [`parse_flags`].
        origin (`str`, *optional*): where the arguments come from, for the message (e.g. "config file train.yaml").
        keys (`bool`, *optional*, defaults to `False`): name them as a config file's keys (`num_units`), not flags.
    """
    known = list(parser._option_string_actions)  # argparse has no public list of its flags
    what, show = ("key", lambda flag: flag.lstrip("-")) if keys else ("flag", lambda flag: flag)
    problems, after_flag = [], False
    for argument in unknown:
        if argument.startswith("-") and len(argument) > 1:
            name = argument.split("=", 1)[0]
            close = (aliases or {}).get(name) or closest_flag(name, known)
            problems.append(f"unknown {what} {show(name)}" + (f" (did you mean {show(close)}?)" if close else ""))
            after_flag = True
        elif not after_flag:  # a value after an unknown flag is that flag's; any other stray value is reported
            problems.append(f"unexpected value {argument!r} (a value must follow its flag)")
    message = "; ".join(problems) + (f" in {origin}" if origin else "")
    return ValueError(f"{message[0].upper()}{message[1:]}. --help lists every flag.")


def closest_flag(name: str, known: list[str]) -> str | None:
    """The known flag that `name` most likely meant: one it extends (`--num_samples` → `--num`), else the most similar."""
    extended = [flag for flag in known if name.startswith((f"{flag}_", f"{flag}-")) and len(flag) > 2]
    if extended:
        return max(extended, key=len)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None
