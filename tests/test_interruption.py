"""Ctrl-C / SIGTERM during vaelm-train: the current step finishes, a complete checkpoint is saved (on every rank of a
2-process job), the command says how to resume and exits non-zero; resuming gives the same losses; a second Ctrl-C
stops at once."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, free_port, run_with_one_retry_on_gloo_abort, train_tiny, two_process_launcher
from test_robustness import ONE_THREAD, SLOW_RUN, TINY, cli_train

from vaelm.pretrained.checkpoints import last_complete_checkpoint

FLAGS = [*TINY, "--max_steps", "40", "--logging_steps", "1", "--save_strategy", "no"]


def start(script: Path, argv: list, log: Path, slow_step_s: float, launcher: list | None = None) -> subprocess.Popen:
    """Start a slowed-down vaelm-train (each step sleeps first) in its own process group, stdout+stderr to `log`."""
    return subprocess.Popen(
        [*(launcher or [sys.executable]), str(script), *map(str, argv)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
        start_new_session=True,
        env={**ONE_THREAD, "PYTHONPATH": str(REPO), "SLOW_STEP_S": str(slow_step_s), "PYTHONUNBUFFERED": "1"},
    )


def wait_for_steps(process: subprocess.Popen, log: Path, steps: int, timeout: float = 240) -> None:
    """Wait until the run has logged `steps` training steps (one `step N/M (…): loss …` line per step)."""
    deadline = time.monotonic() + timeout
    while len(re.findall(r"step \d+/\d+ \(", log.read_text(errors="replace"))) < steps:
        assert process.poll() is None, f"the run ended before the signal:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {steps} steps within the time limit:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def losses(folder: Path) -> dict[int, tuple]:
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: (entry["loss"], entry["rec_loss"], entry["kl"]) for entry in history if "rec_loss" in entry}


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "slow_train.py"
    path.write_text(SLOW_RUN)
    return path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_checkpoint_and_resume_gives_the_same_losses(signum, script, tiny_corpus, tmp_path, capsys):
    reference = train_tiny(tiny_corpus, tmp_path / "reference", *FLAGS)
    out, log = tmp_path / "out", tmp_path / "train.log"
    process = start(script, ["--data_dir", tiny_corpus, "--output_dir", out, *FLAGS], log, slow_step_s=0.15)
    try:
        wait_for_steps(process, log, 3)
        process.send_signal(signum)
        status = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert status == 130, text[-3000:]
    assert "Traceback" not in text
    checkpoint = last_complete_checkpoint(out)
    assert checkpoint is not None, text[-3000:]
    step = int(checkpoint.name.split("-")[1])
    assert 3 <= step < 40
    assert f"vaelm-train: interrupted: training stopped at step {step}" in text
    assert "training done" not in text and f"training stopped at step {step} of 40" in text
    assert "--resume_from_checkpoint true" in text
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
        assert (checkpoint / name).is_file(), name
    assert not (out / "model.safetensors").exists(), "an interrupted run is not a finished model"

    status, stderr = cli_train(
        capsys, "--data_dir", tiny_corpus, "--output_dir", out, *FLAGS, "--resume_from_checkpoint", "true"
    )
    assert status == 0, stderr[-3000:]
    resumed, expected = losses(out), losses(reference)
    assert sorted(resumed) == list(range(1, 41))
    assert resumed == expected, "every step's loss, rec and KL must match the uninterrupted run"


def test_second_ctrl_c_stops_at_once(script, tiny_corpus, tmp_path):
    out, log = tmp_path / "out", tmp_path / "train.log"
    process = start(script, ["--data_dir", tiny_corpus, "--output_dir", out, *FLAGS], log, slow_step_s=3.0)
    try:
        wait_for_steps(process, log, 1)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        status = process.wait(timeout=60)
        waited = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert status == 130, text[-3000:]
    assert "press Ctrl-C again to stop at once" in text
    assert waited < 2.5, "the second Ctrl-C must not wait for the 3-second step to finish"
    assert last_complete_checkpoint(out) is None


def test_ctrl_c_of_a_two_process_accelerate_job(script, tiny_corpus, tmp_path):
    out, log = tmp_path / "ddp", tmp_path / "ddp.log"
    launcher = two_process_launcher()
    argv = ["--data_dir", tiny_corpus, "--output_dir", out, *FLAGS, "--batch_size", "8"]
    process = start(script, argv, log, slow_step_s=0.3, launcher=launcher)
    try:
        wait_for_steps(process, log, 2)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the launcher forwards it to the ranks
        status = process.wait(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert status != 0
    assert "world size 2" in text, text[-4000:]
    checkpoint = last_complete_checkpoint(out)
    assert checkpoint is not None, text[-4000:]
    step = int(checkpoint.name.split("-")[1])
    assert 2 <= step < 40
    # Both ranks stopped at the same step and saved into the same checkpoint.
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file(), text[-4000:]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == [checkpoint.name]
    assert text.count(f"interrupted: training stopped at step {step}") == 1, text[-4000:]  # by the main process
    assert text.count("received: finishing the current step") == 1, text[-4000:]

    resume = run_with_one_retry_on_gloo_abort(
        lambda: subprocess.run(
            [*launcher[:-1], str(free_port()), "scripts/train.py", *map(str, argv), "--resume_from_checkpoint", "true"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**ONE_THREAD, "PYTHONPATH": str(REPO)},
            timeout=600,
        )
    )
    assert resume.returncode == 0, resume.stderr[-4000:]
    assert sorted(losses(out)) == list(range(1, 41))
