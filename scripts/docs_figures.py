"""Regenerate the outputs that README.md and docs/ quote from a run, and read their code blocks for the tests.

The quoted outputs are the `console` blocks: `$ command` lines, each followed by what it printed. This script reruns
every console block that is neither marked as run with tiny settings nor skipped, in the repository root, and
writes what the commands print now into the page (the latent map's figure `docs/latent_map_ptb.png` and its
explained variance, the bundled model's samples, reconstructions and homotopies). `tests/test_docs.py` reads the
blocks with the same functions and fails when a quoted output no longer matches.

A block is marked by an HTML comment on the line before its fence:

- `<!-- docs-test: tiny -->`: the tests run its commands with tiny settings (a few steps of a tiny model) and do not
  compare its output, which comes from the full run the page describes;
- `<!-- docs-test: skip CATEGORY: why -->`: not run by the tests; CATEGORY is one of `SKIP_CATEGORIES`.

`data/NAME` in a command stands for a local corpus folder; this script reads it from `--data_root`.

Usage: python scripts/docs_figures.py [--data_root ../shared/data]   (rewrites the console blocks in place)
       python scripts/docs_figures.py --check                       (exit status 1 if one is stale)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP_CATEGORIES = {
    "hours": "trains for an hour or more",
    "network": "needs the network (PyPI, the Hugging Face Hub, a second machine)",
    "gpu": "needs a GPU machine",
}
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<kind>tiny|skip)(?:\s+(?P<category>\w+):\s*(?P<reason>.*?))?\s*-->")
FENCE = re.compile(r"^```(?P<language>[\w-]*)\s*$")
RUNNABLE = ("bash", "console", "python")
PROGRAMS = ("train", "evaluate", "sample", "homotopy", "map", "demo", "push")
SCRIPT_PROGRAMS = {"push_to_hub": "push"}


@dataclass
class Block:
    """A fenced code block of a Markdown page."""

    file: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    kind: str = "run"  # "run", "tiny" or "skip"
    category: str = ""
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(REPO).as_posix() if self.file.is_relative_to(REPO) else self.file}:{self.line}"


def doc_files(root: Path = REPO) -> list[Path]:
    """README.md and every page under docs/, in a fixed order.

    Args:
        root: the repository.
    """
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def find_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file, with the marker of the comment just before each.

    Args:
        path: a Markdown file.
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks, index = [], 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = next((j for j in range(index + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{path}:{index + 1}: a code block that is never closed")
        block = Block(path, index + 1, fence["language"], "\n".join(lines[index + 1 : end]) + "\n")
        previous = lines[index - 1].strip() if index else ""
        marker = MARKER.fullmatch(previous)
        if marker:
            block.kind = marker["kind"]
            block.category, block.reason = marker["category"] or "", marker["reason"] or ""
        blocks.append(block)
        index = end + 1
    return blocks


def logical_lines(text: str) -> list[str]:
    """Shell lines of a block: continuation lines joined, blank and comment-only lines dropped.

    Args:
        text: the block's text.
    """
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.split("\n") if line.strip() and not line.strip().startswith("#")]


def console_steps(text: str) -> list[tuple[str, list[str], list[str]]]:
    """A console block as (command, its lines as written, the lines it printed) triples.

    Args:
        text: the block's text: `$ command` lines (continued with a trailing backslash), each followed by output.
    """
    steps: list[tuple[str, list[str], list[str]]] = []
    lines = text.rstrip("\n").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("$ "):
            if not steps:
                raise ValueError(f"console output before any command: {line!r}")
            steps[-1][2].append(line)
            index += 1
            continue
        written, command = [line], line[2:]
        while command.endswith("\\") and index + 1 < len(lines):
            index += 1
            written.append(lines[index])
            command = command[:-1] + " " + lines[index].strip()
        steps.append((command.strip(), written, []))
        index += 1
    return steps


def program_of(argv: list[str]) -> tuple[str | None, list[str]]:
    """The vaelm command an argument list runs (`vaelm-X ...` or `python scripts/X.py ...`), and its arguments.

    Args:
        argv: a command line, split.
    """
    if argv and argv[0].startswith("vaelm-") and argv[0][len("vaelm-") :] in PROGRAMS:
        return argv[0], argv[1:]
    if len(argv) >= 2 and argv[0] == "python" and re.fullmatch(r"scripts/\w+\.py", argv[1]):
        name = Path(argv[1]).stem
        name = SCRIPT_PROGRAMS.get(name, name)
        if name in PROGRAMS:
            return f"vaelm-{name}", argv[2:]
    return None, argv


def with_data_root(argv: list[str], data_root: Path) -> list[str]:
    """`argv` with each `data/NAME...` argument read from `data_root/NAME...`.

    Args:
        argv: a command's arguments.
        data_root: the folder that holds the corpora.
    """
    return [str(data_root / arg[len("data/") :]) if arg.startswith("data/") else arg for arg in argv]


def run_program(program: str, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """Run a vaelm command in this process, as its console script would; return (status, stdout, stderr).

    Args:
        program: `vaelm-train`, `vaelm-sample`, ...
        argv: its arguments.
        stdin: text for standard input (interactive commands), or None to leave it alone.
    """
    import importlib

    from vaelm.cli import run_command

    main = importlib.import_module(f"vaelm.cli.{program[len('vaelm-') :]}").main
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    try:
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = run_command(program, main, argv)
    finally:
        sys.stdin = saved_stdin
    return status, out.getvalue(), err.getvalue()


def regenerate(path: Path, data_root: Path) -> tuple[str, list[str]]:
    """The page with the output of each of its compared console blocks rerun, and the commands run.

    Args:
        path: a Markdown page.
        data_root: the folder that holds the corpora named `data/NAME` in commands.
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    ran = []
    for block in reversed(find_blocks(path)):  # from the end, so that earlier line numbers stay valid
        if block.language != "console" or block.kind != "run":
            continue
        new = []
        for command, written, _ in console_steps(block.text):
            program, argv = program_of(shlex.split(command))
            if program is None:
                raise SystemExit(f"{block.where}: only vaelm commands can be regenerated here: {command}")
            status, out, err = run_program(program, with_data_root(argv, data_root))
            if status != 0:
                raise SystemExit(f"{block.where}: {command} failed:\n{err[-2000:]}")
            new += written + out.rstrip("\n").split("\n")
            ran.append(command)
        end = block.line + block.text.count("\n")
        lines[block.line : end] = new
    return "\n".join(lines), ran


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_root = os.environ.get("VAELM_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument(
        "--data_root", default=default_root, help="The folder whose subfolders the commands' data/NAME arguments name."
    )
    parser.add_argument("--check", action="store_true", help="Only check; exit status 1 if a quoted output is stale.")
    args = parser.parse_args(argv)
    if args.check:  # the commands write files (docs/latent_map_ptb.png): into a scratch folder
        scratch = Path(tempfile.mkdtemp(prefix="docs_figures_"))
        (scratch / "docs").mkdir()
        os.chdir(scratch)
    else:
        os.chdir(REPO)  # the commands write where the pages say
    stale = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        new, ran = regenerate(path, Path(args.data_root))
        for command in ran:
            print(f"{path.relative_to(REPO)}: $ {command}", file=sys.stderr)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("stale outputs in: " + ", ".join(str(path.relative_to(REPO)) for path in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
