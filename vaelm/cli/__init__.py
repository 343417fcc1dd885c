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
    except KeyboardInterrupt:
        print(f"{name}: interrupted.", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as error:  # the user-facing boundary: one paragraph, no traceback
        if debug:
            raise
        message = str(error).strip() or error.__class__.__name__
        print(f"{name}: error: {message}\n(Run with --debug or VAELM_DEBUG=1 to see the traceback.)", file=sys.stderr)
        return 1
