"""README.md's two training commands do what README and docs/training.md say, beyond running (tests/test_docs.py
runs every block of README and the docs): each recipe writes the folder it names, with checkpoints and the final
evaluation; the second stage continues the first; a model path that looks local fails at once.
"""

import contextlib
import io
import json
import os
import re
import shlex
import time

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

from vaelm.cli import run_command

README = (REPO / "README.md").read_text(encoding="utf-8")
TRAINING_PAGE = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
TINY_TRAINING = [
    "--embedding_size",
    "16",
    "--num_units",
    "24",
    "--latent_dim",
    "4",
    "--max_steps",
    "4",
    "--eval_steps",
    "2",
    "--save_steps",
    "2",
    "--logging_steps",
    "2",
    "--final_eval_iw_samples",
    "2",
    "--annealing_pivot",
    "2",
    "--disable_tqdm",
    "true",
]


def blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def commands(program: str, text: str = README) -> list[list[str]]:
    """Argument lists of `program` in a page's bash blocks (continuation lines joined, comments dropped)."""
    found = []
    for block in blocks("bash", text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith(program + " "):
                found.append(shlex.split(line, comments=True)[1:])
            elif line == program:
                found.append([])
    return found


def run(program: str, argv: list[str]) -> tuple[int, str, str]:
    from vaelm.cli import evaluate, homotopy, sample, train

    main = {
        "vaelm-sample": sample.main,
        "vaelm-homotopy": homotopy.main,
        "vaelm-evaluate": evaluate.main,
        "vaelm-train": train.main,
    }[program]
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


@pytest.mark.parametrize("recipe, folder", [("ptb-quick", "ptb-quick"), ("ptb", "ptb")])
def test_readme_training_commands_write_the_folders_they_name(recipe, folder, fresh_clone, tiny_corpus):
    assert [f"configuration/{recipe}.yaml", "--dataset", "ptb"] in commands("vaelm-train")
    argv = [f"configuration/{recipe}.yaml", "--data_dir", str(tiny_corpus), *TINY_TRAINING]
    status, out, err = run("vaelm-train", argv)
    assert status == 0, err[-3000:]
    assert re.search(rf"runs/{folder}(?![-\w])", README), f"README names runs/{folder}"
    path = fresh_clone / "runs" / folder  # the folder README names, from the configuration
    assert (path / "model.safetensors").is_file() and (path / "checkpoint-2").is_dir()
    assert "final_nll" in json.loads((path / "all_results.json").read_text()) and "final_nll" not in out


def test_quick_recipe_is_smaller_and_shorter_than_the_full_one():
    import yaml

    quick = yaml.safe_load((REPO / "configuration" / "ptb-quick.yaml").read_text(encoding="utf-8"))
    full = yaml.safe_load((REPO / "configuration" / "ptb.yaml").read_text(encoding="utf-8"))
    assert quick["max_steps"] * 4 <= full["max_steps"] and quick["hidden_size"] < full["hidden_size"]
    assert quick["final_eval_iw_samples"] > 1 and quick["output_dir"] == "runs/ptb-quick"


def test_continue_configuration_continues_the_main_run(fresh_clone, tiny_corpus):
    """The bundled model's second stage: configuration/ptb-continue.yaml continues runs/ptb into runs/ptb-continued."""
    assert ["configuration/ptb-continue.yaml", "--dataset", "ptb"] in commands("vaelm-train", TRAINING_PAGE)
    tiny = [*TINY_TRAINING, "--data_dir", str(tiny_corpus)]
    assert run("vaelm-train", ["configuration/ptb.yaml", *tiny])[0] == 0
    status, _, err = run("vaelm-train", ["configuration/ptb-continue.yaml", *tiny])
    assert status == 0, err[-3000:]
    record = json.loads((fresh_clone / "runs" / "ptb-continued" / "training_record.json").read_text())
    assert record["started_from"]["flag"] == "model_name_or_path" and record["started_from"]["model"].endswith("ptb")
    assert record["started_from"]["training_record"]["global_step"] == 4 and record["global_step"] == 4
    arguments = record["training_arguments"]
    assert arguments["kl_schedule"] == "constant" and arguments["ema_decay"] == 0.999
    assert record["best_step"] in (2, 4), "the best of the checkpoints is kept"
    # Stages 3 to 8, in the page's order: the cyclic continuation, three runs, each from the last; the
    # encoder refit with the decoder fixed; then twice a further cyclic run and the refit again, from the average of
    # that run and the model it started from.
    training_commands = commands("vaelm-train", TRAINING_PAGE)
    cyclic_yaml, refit_yaml = "configuration/ptb-cyclic.yaml", "configuration/ptb-refit.yaml"
    later_stages = [argv for argv in training_commands if argv[0] in (cyclic_yaml, refit_yaml)]
    assert [argv[0] for argv in later_stages] == [*[cyclic_yaml] * 3, *[refit_yaml, cyclic_yaml] * 2, refit_yaml]
    for argv in later_stages:
        assert argv[1:3] == ["--dataset", "ptb"], argv
        status, _, err = run("vaelm-train", [argv[0], *argv[3:], *tiny])
        assert status == 0, err[-3000:]
    runs = fresh_clone / "runs"
    for name, started_from in (
        ("ptb-cyclic", "ptb-continued"),
        ("ptb-cyclic2", "ptb-cyclic"),
        ("ptb-cyclic3", "ptb-cyclic2"),
        ("ptb-cyclic4", "ptb-refit"),
        ("ptb-cyclic5", "ptb-average-refit"),
    ):
        cyclic = json.loads((runs / name / "training_record.json").read_text())
        assert cyclic["training_arguments"]["lr_scheduler_kwargs"] == {"num_cycles": 4}
        assert cyclic["started_from"]["model"].endswith(started_from), (name, cyclic["started_from"]["model"])
    refit = json.loads((runs / "ptb-refit" / "training_record.json").read_text())
    assert refit["training_arguments"]["freeze_decoder"] is True and refit["started_from"]["model"].endswith(
        "ptb-cyclic3"
    )
    before, after = (load_file(str(runs / name / "model.safetensors")) for name in ("ptb-cyclic3", "ptb-refit"))
    assert all(torch.equal(before[name], after[name]) for name in before if name.startswith("decoder."))
    for averaged_refit, cyclic_run, start in (
        ("ptb-average-refit", "ptb-cyclic4", "ptb-refit"),
        ("ptb-average-refit2", "ptb-cyclic5", "ptb-average-refit"),
    ):
        last = json.loads((runs / averaged_refit / "training_record.json").read_text())
        assert last["training_arguments"]["freeze_decoder"] is True
        assert last["started_from"]["model"].endswith(cyclic_run)
        [averaged] = last["started_from"]["averaged_with"]
        assert averaged["model"].endswith(start)
        assert averaged["training_record"] == json.loads((runs / start / "training_record.json").read_text())
        first, second, result = (
            load_file(str(runs / name / "model.safetensors")) for name in (start, cyclic_run, averaged_refit)
        )
        assert all(  # the fixed decoder is the average of the two
            torch.allclose(result[name], (first[name] + second[name]) / 2, atol=1e-6)
            for name in result
            if name.startswith("decoder.")
        )


def test_a_missing_local_folder_fails_at_once(fresh_clone, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # were the Hub asked, this would retry, then fail
    started = time.monotonic()
    status, _, err = run("vaelm-sample", ["--model", "runs/ptb", "--num", "1"])
    assert status == 1 and "runs/ptb does not exist" in err and "configuration/ptb.yaml" in err
    assert time.monotonic() - started < 5, "no Hub retries for a path that looks local"
    assert not os.path.exists("runs")
