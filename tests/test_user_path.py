"""What a new user meets: a training log people can read, in a file as on a terminal; a second stage that
names the first stage's resume command; model files with ordinary permissions; no empty cache folder after a failed
download; the demo naming its own `--share` flag; extras that install everything the test suite uses."""

import configparser
import json
import logging
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import REPO, free_port
from test_robustness import TINY, cli_train

from vaelm.corpora.sources import DataError, download_ptb, load_text_splits
from vaelm.pretrained.model_folder import RUN_CONFIGURATION_NAME
from vaelm.training import progress_log
from vaelm.training.progress_log import ProgressLog, format_duration

LOG_FLAGS = [flag for flag in TINY if flag not in ("--disable_tqdm", "true")]  # bars left to the default


def umask_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def train_to_file(argv: list, log: Path) -> str:
    """Run vaelm-train in a subprocess with stdout and stderr redirected to `log` (as a cluster job does)."""
    with log.open("w") as handle:
        result = subprocess.run(
            [sys.executable, "-m", "vaelm.cli.train", *map(str, argv)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            timeout=600,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        )
    text = log.read_text(encoding="utf-8")
    assert result.returncode == 0, text[-3000:]
    return text


def test_training_log_in_a_file_is_readable_and_a_resume_says_so(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    argv = [
        "--data_dir",
        tiny_corpus,
        "--output_dir",
        out,
        *LOG_FLAGS,
        "--logging_steps",
        "10",
        "--save_strategy",
        "steps",
        "--save_steps",
        "20",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "20",
    ]
    text = train_to_file([*argv, "--max_steps", "40"], tmp_path / "first.log")
    assert "\r" not in text, "no carriage-return progress bars in a redirected log"
    assert f"Training into {out.resolve()}: 40 steps, 16 sentences per step." in text
    assert (
        "Schedule: progress every 10 steps; evaluation every 20 steps; a checkpoint every 20 steps, the first at "
        "step 20."
    ) in text
    assert re.search(r"Device: cpu, 1 CPU thread, world size 1\.", text)
    progress = re.findall(r"step (\d+)/40 \([\d.]+ %\): loss [\d.]+, rec [\d.]+, KL [-\d.e]+, β [\d.e-]+.*", text)
    assert progress == ["10", "20", "30", "40"], text[-3000:]
    line = next(line for line in text.splitlines() if "step 10/40" in line)
    eta = r"; [\d.]+ steps/s; ETA \d+ (s|min)[^;]*\(done ≈ (\w{3} )?\d\d:\d\d\); checkpoint-20 in "
    assert re.search(eta, line), line
    assert "evaluation at step 20: ELBO" in text
    assert re.search(r"training done at step 40: 40 steps in \d+ (s|min|h)", text)
    # The configuration is in a file the log names, not in the log.
    configuration = out / RUN_CONFIGURATION_NAME
    assert f"The run's full configuration: {configuration}" in text
    assert "transformers_version" not in text and "{'loss'" not in text
    record = json.loads(configuration.read_text())
    assert record["command"][0] == "vaelm-train" and "--max_steps" in record["command"]
    assert record["model_config"]["latent_size"] == 4 and record["training_arguments"]["max_steps"] == 40
    # Weights follow the umask like every other file (safetensors writes them 0600).
    for folder in (out, out / "checkpoint-20"):
        assert (folder / "model.safetensors").stat().st_mode & 0o777 == umask_mode(), folder
        assert (folder / "config.json").stat().st_mode & 0o777 == umask_mode()

    text = train_to_file([*argv, "--max_steps", "60", "--resume_from_checkpoint", "true"], tmp_path / "resumed.log")
    assert "\r" not in text
    assert "Resumed from checkpoint-40 (step 40 of 60); 20 steps to go." in text
    assert f"Reusing the tokenizer saved in {out / 'checkpoint-40'}" in text
    assert "Building a word-level tokenizer" not in text, "a resumed run reuses its tokenizer"
    assert re.findall(r"step (\d+)/60 ", text) == ["50", "60"]
    assert "steps/s; ETA" in text


def test_the_log_ends_with_the_answer(tiny_corpus, tmp_path):
    """The final evaluation is announced and shows progress; each evaluation is logged once; the last lines name the
    model folder, its figures and the commands to try it; the metrics are in a file the log names."""
    out = tmp_path / "run"
    argv = ["--data_dir", tiny_corpus, "--output_dir", out, *TINY]
    argv += ["--eval_strategy", "steps", "--eval_steps", "15", "--final_eval_iw_samples", "3", "--max_steps", "30"]
    text = train_to_file(argv, tmp_path / "train.log")
    lines = [line for line in text.splitlines() if line.strip()]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    evaluated = [entry["step"] for entry in history if "eval_loss" in entry]
    assert evaluated == [15, 30]
    assert re.findall(r"evaluation at step (\d+):", text) == ["15", "30"], "each evaluation once"
    assert "Final evaluation: the full protocol on 40 valid sentences with K = 3 importance samples, about" in text
    assert re.search(r"final evaluation: 40/40 sentences \(100 %\) in \d+ s", text), "a progress line"
    last = lines[-5:]
    results = out / "all_results.json"
    assert f"The model is in {out.resolve()}; every figure is in {results}." in last[0]
    assert re.search(r"valid \(K = 3, 40 sentences\): IW-NLL [\d.]+ \(PPL [\d.]+\), ELBO [\d.]+, KL ", last[1])
    assert last[-2].endswith(f"vaelm-sample --model {out} --num 5 --strategy sample --top_p 0.9")
    assert last[-1].endswith(f"vaelm-evaluate --model {out} --data_dir {tiny_corpus} --split test")
    metrics = json.loads(results.read_text())
    assert metrics["final_iw_samples"] == 3 and metrics["final_nll"] > 0 and "eval_elbo" in metrics
    assert '"final_nll"' not in text, "the metrics go to the file, not raw into the log"


def test_the_eta_includes_the_final_evaluation():
    """Its cost in steps, from the step rate: on the issue's measurement of the quick recipe (2,000 steps in 13 min
    01 s, then 2 min 17 s of final evaluation on 3,370 sentences at K = 20) the estimate is within 10 %."""
    plan = progress_log.FinalEvaluationPlan(sentences=3370, iw_samples=20, batch_size=64)
    rate = 2000 / (13 * 60 + 1)
    assert plan.seconds(rate) == pytest.approx(2 * 60 + 17, rel=0.1)
    log = ProgressLog()
    args = SimpleNamespace(eval_strategy="no", save_strategy="no")
    state = SimpleNamespace(global_step=1000, max_steps=2000, num_train_epochs=1, eval_steps=None, save_steps=None)
    without = log.seconds_left(args, state, rate)
    log.final_evaluation = plan
    assert log.seconds_left(args, state, rate) == pytest.approx(without + plan.seconds(rate))
    assert "about 2 min" in plan.announcement(rate)


def test_a_stopped_run_is_not_logged_as_done(caplog):
    """An interruption ends training before its last step: the log says stopped, never done."""
    log = ProgressLog()
    args = SimpleNamespace()
    for step, expected in ((124, "training stopped at step 124 of 2,000"), (2000, "training done at step 2,000")):
        state = SimpleNamespace(global_step=step, max_steps=2000, is_world_process_zero=True)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=progress_log.__name__):
            log.on_log(args, state, None, logs={"train_runtime": 60.0, "train_loss": 90.0})
        assert caplog.messages[-1].startswith(expected), caplog.messages
        assert ("done" in caplog.messages[-1]) == (step == 2000)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_steps_per_second_come_from_a_window_and_the_eta_counts_pauses(monkeypatch, caplog, tmp_path):
    clock = FakeClock()
    monkeypatch.setattr(progress_log.time, "monotonic", clock)
    args = SimpleNamespace(
        output_dir=str(tmp_path),
        per_device_train_batch_size=64,
        gradient_accumulation_steps=1,
        world_size=1,
        device="cpu",
        logging_strategy="steps",
        eval_strategy="steps",
        save_strategy="steps",
        metric_for_best_model=None,
    )
    state = SimpleNamespace(
        global_step=0,
        max_steps=1000,
        logging_steps=10,
        eval_steps=100,
        save_steps=200,
        num_train_epochs=1,
        is_world_process_zero=True,
    )
    log = ProgressLog(window_steps=50)
    caplog.set_level(logging.INFO, logger=progress_log.__name__)
    log.on_train_begin(args, state, None)
    assert "the first at step 200" in caplog.text

    def step(seconds: float) -> None:
        clock.now += seconds
        state.global_step += 1
        log.on_step_end(args, state, None)
        if state.global_step % 100 == 0:  # an evaluation of 20 s
            clock.now += 20
            log.on_evaluate(args, state, None)
        if state.global_step % 200 == 0:  # a checkpoint of 4 s
            clock.now += 4
            log.on_save(args, state, None)

    step(30.0)  # the first step also sets things up: it does not count
    for _ in range(249):
        step(0.5)
    assert log.steps_per_second() == pytest.approx(2.0), "evaluations, checkpoints and the first step are left out"
    # 750 steps at 2/s, then 8 evaluations (300 … 1000) of 20 s and 4 checkpoints (400 … 1000) of 4 s.
    assert log.seconds_left(args, state, 2.0) == pytest.approx(375 + 8 * 20 + 4 * 4)
    caplog.clear()
    log.on_log(args, state, None, logs={"loss": 95.3, "rec_loss": 93.2, "kl": 2.1, "beta": 0.5})
    assert "step 250/1,000 (25.0 %): loss 95.3, rec 93.2, KL 2.1, β 0.5; 2.00 steps/s" in caplog.text
    assert f"ETA {format_duration(551)} (done ≈ " in caplog.text and "checkpoint-400 in 1 min 15 s" in caplog.text
    for _ in range(50):  # the pace changes: the window follows within 50 steps, whatever came before
        step(1.0)
    assert log.steps_per_second() == pytest.approx(1.0)

    resumed = ProgressLog()
    resumed.resumed_from = str(tmp_path / "checkpoint-300")
    state.global_step = 300
    caplog.clear()
    resumed.on_train_begin(args, state, None)
    assert "Resumed from checkpoint-300 (step 300 of 1,000); 700 steps to go." in caplog.text
    assert "the next at step 400" in caplog.text
    assert resumed.steps_per_second() is None, "after a resume, the pace is measured afresh"


def test_a_second_stage_on_an_unfinished_first_stage_names_its_resume_command(tiny_corpus, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    stage_one = tmp_path / "stage-one.yaml"
    tiny = dict(zip(TINY[::2], TINY[1::2]))
    stage_one.write_text(
        yaml.safe_dump(
            {
                **{flag.lstrip("-"): value for flag, value in tiny.items()},
                "data_dir": str(tiny_corpus),
                "output_dir": str(first),
                "max_steps": 20,
                "save_strategy": "steps",
                "save_steps": 10,
            }
        )
    )
    stage_two = tmp_path / "stage-two.yaml"
    stage_two.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tiny_corpus),
                "model_name_or_path": str(first),
                "output_dir": str(second),
                "max_steps": 5,
                "save_strategy": "no",
                "disable_tqdm": True,
            }
        )
    )
    status, stderr = cli_train(capsys, stage_one)
    assert status == 0, stderr[-3000:]
    # What a first stage stopped after its last checkpoint leaves: checkpoints and its configuration, no model.
    for path in first.iterdir():
        if path.is_file() and path.name != RUN_CONFIGURATION_NAME:
            path.unlink()

    status, stderr = cli_train(capsys, stage_two)
    assert status == 1
    command = re.search(r"finish that run first with `([^`]+)`", stderr)
    assert command, stderr
    assert command.group(1) == shlex.join(["vaelm-train", str(stage_one), "--resume_from_checkpoint", "true"])
    assert f"its last complete checkpoint is {first / 'checkpoint-20'}, at step 20 of 20" in stderr
    assert "rerun the same command" not in stderr, "the failing command is not the one to resume"

    status, stderr = cli_train(capsys, *shlex.split(command.group(1))[1:])  # the command, as given
    assert status == 0, stderr[-3000:]
    assert (first / "model.safetensors").is_file()
    status, stderr = cli_train(capsys, stage_two)
    assert status == 0, stderr[-3000:]
    assert (second / "model.safetensors").is_file()


def test_a_failed_ptb_download_leaves_no_empty_cache_folder(tmp_path, monkeypatch):
    cache = tmp_path / "home" / ".cache" / "vaelm"
    monkeypatch.setenv("VAELM_CACHE", str(cache))
    monkeypatch.setenv("VAELM_PTB_URL", "http://127.0.0.1:9/")  # nothing listens there: as without a network
    with pytest.raises(DataError, match="Could not download"):
        load_text_splits(dataset="ptb", splits=("valid",))
    assert not (tmp_path / "home").exists(), "the folders the download created are removed again"
    kept = tmp_path / "mine"
    kept.mkdir()
    with pytest.raises(DataError, match="Could not download"):
        download_ptb(kept / "ptb", base_url="http://127.0.0.1:9/")
    assert kept.is_dir() and not (kept / "ptb").exists(), "a folder that was there before stays"


def test_the_demo_names_its_share_flag(monkeypatch, capsys):
    import gradio as gr

    from vaelm.apps.demo import serve

    with gr.Blocks() as app:
        gr.Markdown("vaelm")
    monkeypatch.setattr(app, "block_thread", lambda: None)  # serve() returns instead of waiting for Ctrl-C
    port = free_port()
    try:
        serve(app, host="127.0.0.1", port=port)
    finally:
        app.close()
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert f"Running on local URL:  http://127.0.0.1:{port}" in text
    assert "rerun with --share" in text
    assert "share=True" not in text and "launch()" not in text, text


def extras() -> dict[str, set[str]]:
    """Each extra of setup.cfg and the distributions it installs, `vaelm[a,b]` (another of its extras) expanded."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    written = {
        extra: [line.strip() for line in value.splitlines() if line.strip()]
        for extra, value in parser["options.extras_require"].items()
    }

    def names(extra: str) -> set[str]:
        found = set()
        for requirement in written[extra]:
            itself = re.fullmatch(r"vaelm\[([\w,\s-]+)\]", requirement)
            if itself:
                found |= {name for other in itself.group(1).split(",") for name in names(other.strip())}
            else:
                found.add(re.split(r"[<>=!~\s;]", requirement, maxsplit=1)[0].lower().replace("_", "-"))
        return found

    return {extra: names(extra) for extra in written}


def test_extras_install_everything_the_suite_and_ci_use():
    declared = extras()
    assert declared["docs"] == {"mkdocs-material", "mkdocstrings[python]"}
    assert declared["dev"] == declared["all"] == declared["test"]
    for extra, names in declared.items():
        assert names <= declared["all"], f"[all] lacks {names - declared['all']} of [{extra}]"
    # Every optional import the suite guards with importorskip is installed by [test] and [all]: nothing skipped.
    guarded = set()
    for path in (REPO / "tests").glob("*.py"):
        guarded |= set(re.findall(r"importorskip\(\"([\w.]+)\"\)", path.read_text(encoding="utf-8")))
    assert {"gradio", "gradio_client", "plotly", "playwright.sync_api"} <= guarded
    wanted = {name.split(".")[0].replace("_", "-") for name in guarded}
    wanted |= {"pytest", "jieba", "import-linter", "ruff", "mkdocs-material", "mkdocstrings[python]"}
    for extra in ("test", "all"):
        assert wanted <= declared[extra], f"[{extra}] lacks {wanted - declared[extra]}"
    assert '-e ".[test]"' in (REPO / ".ci" / "run").read_text(), "CI installs the [test] extra"
