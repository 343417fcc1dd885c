"""README.md's commands run as written, so that README and code cannot drift apart.

Every `vaelm-sample`/`vaelm-homotopy` line of README's bash blocks runs in a folder where nothing was trained (so the
bundled model is used), the main training command runs with tiny settings substituted (as README says, it trains for
hours), `vaelm-evaluate` lines run on a few sentences with few samples, and the Python blocks run as they are.
"""

import contextlib
import io
import json
import os
import re
import shlex
import time

import pytest

from conftest import REPO
from vaelm.cli import run_command

README = (REPO / "README.md").read_text(encoding="utf-8")
TINY_TRAINING = ["--embedding_size", "16", "--num_units", "24", "--latent_dim", "4", "--max_steps", "4",
                 "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "2", "--final_eval_iw_samples", "2",
                 "--annealing_pivot", "2", "--disable_tqdm", "true"]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def commands(program: str) -> list[list[str]]:
    """Argument lists of `program` in README's bash blocks (continuation lines joined, comments dropped)."""
    found = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith(program + " "):
                found.append(shlex.split(line, comments=True)[1:])
            elif line == program:
                found.append([])
    return found


def run(program: str, argv: list[str]) -> tuple[int, str, str]:
    from vaelm.cli import evaluate, homotopy, sample, train

    main = {"vaelm-sample": sample.main, "vaelm-homotopy": homotopy.main, "vaelm-evaluate": evaluate.main,
            "vaelm-train": train.main}[program]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run_command(program, main, argv)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture()
def fresh_clone(tmp_path, monkeypatch):
    """A working directory like a fresh clone's: the configuration folder, no runs/."""
    (tmp_path / "configuration").symlink_to(REPO / "configuration")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_main_command_and_configuration(fresh_clone, tiny_corpus):
    (main,) = [argv for argv in commands("vaelm-train") if argv[:1] == ["configuration/ptb.yaml"]][:1]
    assert main == ["configuration/ptb.yaml", "--dataset", "ptb"]
    assert "runs/ptb`" in README and "DURATION_PLACEHOLDER" not in README
    argv = ["configuration/ptb.yaml", "--data_dir", str(tiny_corpus), *TINY_TRAINING]
    status, out, err = run("vaelm-train", argv)
    assert status == 0, err[-3000:]
    folder = fresh_clone / "runs" / "ptb"  # the folder README names, from the configuration
    assert (folder / "model.safetensors").is_file() and (folder / "checkpoint-2").is_dir()
    assert '"final_nll"' in out


def test_readme_continue_configuration_continues_the_main_run(fresh_clone, tiny_corpus):
    """The bundled model's second stage: configuration/ptb-continue.yaml continues runs/ptb into runs/ptb-continued."""
    assert ["configuration/ptb-continue.yaml", "--dataset", "ptb"] in commands("vaelm-train")
    tiny = [*TINY_TRAINING, "--data_dir", str(tiny_corpus)]
    assert run("vaelm-train", ["configuration/ptb.yaml", *tiny])[0] == 0
    status, _, err = run("vaelm-train", ["configuration/ptb-continue.yaml", *tiny])
    assert status == 0, err[-3000:]
    record = json.loads((fresh_clone / "runs" / "ptb-continued" / "training_record.json").read_text())
    assert record["started_from"]["flag"] == "model_name_or_path" and record["started_from"]["model"].endswith("ptb")
    assert record["started_from"]["training_record"]["global_step"] == 4 and record["global_step"] == 4
    assert record["training_arguments"]["kl_schedule"] == "constant" and record["training_arguments"]["ema_decay"] == 0.999
    assert record["best_step"] in (2, 4), "the best of the checkpoints is kept"


def test_readme_sampling_commands_use_the_bundled_model(fresh_clone):
    lines = commands("vaelm-sample") + [["--homotopy", *argv] for argv in commands("vaelm-homotopy")]
    assert len(lines) >= 8
    for argv in lines:
        program = "vaelm-homotopy" if argv[:1] == ["--homotopy"] else "vaelm-sample"
        argv = argv[1:] if program == "vaelm-homotopy" else argv
        if not argv:
            continue  # the interactive form (covered by the interactive tests)
        assert "--model" not in argv, "README's sampling commands work on a fresh clone: the bundled model"
        status, out, err = run(program, argv)
        assert status == 0, f"{program} {shlex.join(argv)}: {err[-2000:]}"
        text = out.strip().splitlines()
        assert text and all(line.strip() for line in text), (program, argv, out)
        assert not any(line.split().count("<unk>") > len(line.split()) / 2 for line in text), out


def test_readme_evaluate_commands_on_a_few_sentences(fresh_clone, ptb_dir):
    lines = commands("vaelm-evaluate")
    assert lines
    for argv in lines:
        if "..." in argv or "--model" in argv:
            continue  # a pattern ("--model runs/ptb ..."), not a command to run as is
        argv = [str(ptb_dir) if arg == "../shared/data/ptb" else arg for arg in argv]
        status, out, err = run("vaelm-evaluate", [*argv, "--max_sentences", "5", "--iw_samples", "2"])
        assert status == 0, err[-2000:]
        assert "NLL" in err and "KL" in err and '"nll"' in out and "posterior_mean_variances" not in out


def test_readme_python_blocks_run(fresh_clone, capsys):
    for block in blocks("python"):
        if "your-name/" in block:
            continue  # Hub ids of a reader's own repositories
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - README's own code
    assert "the company said" in capsys.readouterr().out


def test_a_missing_local_folder_fails_at_once(fresh_clone, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # were the Hub asked, this would retry, then fail
    started = time.monotonic()
    status, _, err = run("vaelm-sample", ["--model", "runs/ptb", "--num", "1"])
    assert status == 1 and "runs/ptb does not exist" in err and "configuration/ptb.yaml" in err
    assert time.monotonic() - started < 5, "no Hub retries for a path that looks local"
    assert not os.path.exists("runs")
