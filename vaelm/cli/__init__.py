"""Console entry points. Each command is a thin `main(argv)`; `run_command` is the boundary where errors that a
user can fix become one clear paragraph and a non-zero exit status instead of a traceback."""

import os
import sys
from collections.abc import Callable

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
