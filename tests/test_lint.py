"""Lint and format stay clean: `ruff check` and `ruff format --check` with the rules in pyproject.toml ([tool.ruff]).

CI runs the suite (README's test command), so this is where CI runs ruff.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUFF = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))


def ruff(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([RUFF, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_check_is_clean():
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = ruff("format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_reports_a_planted_finding(tmp_path):
    # The same configuration must fail on an unused import: the check is not vacuous.
    planted = tmp_path / "planted.py"
    planted.write_text("import os\n", encoding="utf-8")
    result = ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(planted))
    assert result.returncode != 0 and "F401" in result.stdout
