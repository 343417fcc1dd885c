"""Regenerate the bundled model folders from the package: their code copies and their model cards.

A model folder loaded with `trust_remote_code=True` (no vaelm installed) runs its own copies of the four travelling
modules (`configuration_vaelm.py`, `modeling_vaelm.py`, `tokenization_vaelm.py`, `pipeline_vaelm.py`), and shows the
card (`README.md`) that `vaelm.hub.model_card` renders from what the folder holds. `vaelm-train` writes both when it
saves a model; the models bundled in `vaelm/pretrained/*/` get them from this script, after any change to those
modules or to the card:

    python scripts/refresh_remote_code.py            # rewrite every stale file of every bundled model folder
    python scripts/refresh_remote_code.py --check    # exit 1, naming each stale file, when any differs
    python scripts/refresh_remote_code.py runs/ptb   # other model folders

tests/test_pretrained.py runs the check, so a change that is not carried into the bundled models fails CI.
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "vaelm"
sys.path.insert(0, str(REPO))  # this checkout's vaelm, wherever the script is run from

from vaelm.pretrained.model_folder import CARD_FILE, CONFIG_NAME, REMOTE_CODE_FILES  # noqa: E402


def bundled_model_folders() -> list[Path]:
    """Every model folder shipped in `vaelm/pretrained/` (a folder holding `config.json`)."""
    return sorted(path.parent for path in (PACKAGE / "pretrained").glob(f"*/{CONFIG_NAME}"))


def expected_files(folder: Path) -> dict[Path, str]:
    """What the package makes of each regenerated file of `folder`: the code copies, then the card."""
    from vaelm.hub.model_card import render_model_card

    expected = {folder / name: (PACKAGE / name).read_text(encoding="utf-8") for name in REMOTE_CODE_FILES}
    # The usage snippets of a folder in this repository load it by its path from the repository root.
    inside = folder.resolve().is_relative_to(REPO)
    load_path = folder.resolve().relative_to(REPO).as_posix() if inside else None
    expected[folder / CARD_FILE] = str(render_model_card(folder, load_path=load_path))  # what `ModelCard.save` writes
    return expected


def stale_files(folders: list[Path]) -> dict[Path, str]:
    """The regenerated files of `folders` that are missing or differ from what the package makes, with their text."""
    stale = {}
    for folder in folders:
        for path, text in expected_files(folder).items():
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale[path] = text
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="Model folders (default: the bundled ones).")
    parser.add_argument("--check", action="store_true", help="Only report stale files; exit 1 when there are any.")
    args = parser.parse_args(argv)
    folders = args.folders or bundled_model_folders()
    for folder in folders:
        if not (folder / CONFIG_NAME).is_file():
            parser.error(f"{folder} is not a model folder (no {CONFIG_NAME}).")
    stale = stale_files(folders)
    for path, text in stale.items():
        if args.check:
            print(f"{path} is stale; run python scripts/refresh_remote_code.py", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"refreshed {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
