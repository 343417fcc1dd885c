"""Refresh the remote-code copies inside model folders from the package's own files.

A model folder loaded with `trust_remote_code=True` (no vaelm installed) runs its own `configuration_vaelm.py` and
`modeling_vaelm.py`. `save_pretrained` copies them from the package whenever a model is saved; the bundled models
in `vaelm/pretrained/*/` are refreshed by this script instead of by hand, after any change to those two files:

    python scripts/refresh_remote_code.py            # copy the package's files into every bundled model folder
    python scripts/refresh_remote_code.py --check    # exit 1, naming the stale copies, when any differs
    python scripts/refresh_remote_code.py runs/ptb   # other model folders

tests/test_layout.py runs the check, so a change to the model that is not copied into the bundled model fails CI.
"""

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vaelm"
REMOTE_CODE_FILES = ("configuration_vaelm.py", "modeling_vaelm.py", "pipeline_vaelm.py")


def bundled_model_folders() -> list[Path]:
    """Every model folder shipped in `vaelm/pretrained/` (a folder holding `config.json`)."""
    return sorted(path.parent for path in (PACKAGE / "pretrained").glob("*/config.json"))


def stale_copies(folders: list[Path]) -> list[Path]:
    """The remote-code files in `folders` that are missing or differ from the package's."""
    return [
        folder / name
        for folder in folders
        for name in REMOTE_CODE_FILES
        if not (folder / name).is_file() or not filecmp.cmp(PACKAGE / name, folder / name, shallow=False)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="Model folders (default: the bundled ones).")
    parser.add_argument("--check", action="store_true", help="Only report stale copies; exit 1 when there are any.")
    args = parser.parse_args(argv)
    folders = args.folders or bundled_model_folders()
    for folder in folders:
        if not (folder / "config.json").is_file():
            parser.error(f"{folder} is not a model folder (no config.json).")
    stale = stale_copies(folders)
    if args.check:
        for path in stale:
            print(
                f"{path} differs from {PACKAGE / path.name}; run python scripts/refresh_remote_code.py", file=sys.stderr
            )
        return 1 if stale else 0
    for path in stale:
        shutil.copyfile(PACKAGE / path.name, path)
        print(f"refreshed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
