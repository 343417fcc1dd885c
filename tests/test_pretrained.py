"""The reference PTB model that ships with the package (`vaelm.DEFAULT_MODEL`)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

import vaelm
from vaelm.pretrained.model_folder import CARD_FILE, REMOTE_CODE_FILES

MODEL = Path(vaelm.DEFAULT_MODEL)


def run(args: list[str]) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environment, timeout=300, cwd=REPO
    )


def test_bundled_model_folder_is_complete_and_small():
    files = {path.name for path in MODEL.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "configuration_vaelm.py",
        "modeling_vaelm.py",
        "tokenization_vaelm.py",
        "pipeline_vaelm.py",
        "eval_results.json",
        "README.md",
        "training_curves.png",
    } <= files
    assert (MODEL / "model.safetensors").stat().st_size <= 30_000_000
    config = json.loads((MODEL / "config.json").read_text())
    assert config["model_type"] == "vaelm" and config["vocab_size"] == 10000


def refresh(*args: str) -> subprocess.CompletedProcess:
    return run([str(REPO / "scripts" / "refresh_remote_code.py"), *args])


def test_bundled_code_copies_and_card_are_regenerated_from_the_package(tmp_path):
    # The shipped modules are the package's own (remote-code loading runs today's code), and the card is what the
    # package renders today: one script regenerates both, and its check is this test.
    result = refresh("--check")
    assert result.returncode == 0, result.stderr[-2000:]
    # Any stale file is named, and refreshing fixes every one.
    folder = tmp_path / "ptb"
    shutil.copytree(MODEL, folder)
    for name in (*REMOTE_CODE_FILES, CARD_FILE):
        (folder / name).write_text((folder / name).read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    stale = refresh(str(folder), "--check")
    assert stale.returncode == 1
    assert [line.split()[0] for line in stale.stderr.splitlines() if " is stale" in line] == [
        str(folder / name) for name in (*REMOTE_CODE_FILES, CARD_FILE)
    ]
    assert refresh(str(folder)).returncode == 0
    assert refresh(str(folder), "--check").returncode == 0
    for name in REMOTE_CODE_FILES:
        assert (folder / name).read_bytes() == (REPO / "vaelm" / name).read_bytes()


def test_sample_without_model_uses_the_bundled_model():
    result = run(["-m", "vaelm.cli.sample", "--num", "3", "--seed", "0"])
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.split() for line in lines)
    again = run(["-m", "vaelm.cli.sample", "--num", "3", "--seed", "0"])
    assert again.stdout == result.stdout


def test_homotopy_and_evaluate_without_model(tiny_ptb):
    result = run(
        [
            "-m",
            "vaelm.cli.homotopy",
            "--start",
            "the company said it will buy shares",
            "--end",
            "investors are worried about the market",
            "--steps",
            "3",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.strip().splitlines()) == 5
    result = run(
        [
            "-m",
            "vaelm.cli.evaluate",
            "--data_dir",
            str(tiny_ptb),
            "--split",
            "test",
            "--iw_samples",
            "5",
            "--max_sentences",
            "20",
            "--no_progress",
            "true",
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["sentences"] == 20 and summary["nll"] <= summary["elbo"]
    assert summary["kl"] > 1, "the bundled model is not collapsed"


def test_readme_and_results_page_rows_are_the_bundled_models_own_evaluation():
    """The bundled row of README and of the results page, README's command for it and the model's eval_results.json
    (what the card shows) agree."""
    evaluation = json.loads((MODEL / "eval_results.json").read_text())
    assert (evaluation["split"], evaluation["sentences"], evaluation["iw_samples"]) == ("test", 3761, 500)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for page in (readme, (REPO / "docs" / "results.md").read_text(encoding="utf-8")):
        (row,) = [line for line in page.splitlines() if line.startswith("| **vaelm, bundled model**")]
        cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")]
        assert cells[1:7] == [
            f"{evaluation['nll']:.2f}",
            f"{evaluation['ppl']:.1f}",
            f"{evaluation['elbo']:.1f}",
            f"{evaluation['kl']:.2f}",
            f"{evaluation['mi']:.2f}",
            f"{evaluation['au']}/32",
        ]
    card = (MODEL / "README.md").read_text(encoding="utf-8")
    assert f"value: {evaluation['nll']}" in card  # the card renders eval_results.json itself
    # The command README gives for the row is the one that produced it, on the bundled model by default.
    (command,) = [
        line.split("#")[0].split() for line in readme.splitlines() if line.endswith("# the bundled model's row")
    ]
    recorded = evaluation["command"].split()
    assert command[0] == recorded[0] == "vaelm-evaluate" and "--model" not in command
    for flag in ("--split", "--iw_samples", "--seed"):
        assert command[command.index(flag) + 1] == recorded[recorded.index(flag) + 1], flag
    assert ("--bf16" in command) == ("--bf16" in recorded and recorded[recorded.index("--bf16") + 1] == "true")
    assert recorded[recorded.index("--model") + 1] == "vaelm/pretrained/ptb"
