"""CPU threads: `--num_threads` on every command, `OMP_NUM_THREADS` respected, the default from the usable cores minus
those other processes keep busy, the choice logged, and passive OpenMP waiting set before torch loads."""

import importlib
import logging
import os
import subprocess
import sys
import time

import pytest
import torch

from vaelm import threads
from vaelm.threads import choose_num_threads, configure_threads, runnable_elsewhere, usable_cores

COMMANDS = ["train", "evaluate", "sample", "homotopy", "push", "demo", "map"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def no_thread_environment(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


def test_usable_cores_is_the_affinity_mask():
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_flag_wins_over_environment_and_bad_values_are_clear(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_num_threads(5) == (5, "--num_threads")
    assert choose_num_threads(None) == (3, "OMP_NUM_THREADS")
    with pytest.raises(ValueError, match="--num_threads must be a positive integer, got 0"):
        choose_num_threads(0)
    monkeypatch.setenv("OMP_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS='two' is not a positive integer"):
        choose_num_threads(None)


@pytest.mark.parametrize("busy, cores, expected", [(0.0, 2, 2), (0.3, 2, 2), (1.0, 2, 1), (5.0, 2, 1), (1.2, 8, 7)])
def test_default_leaves_out_cores_that_other_processes_keep_busy(busy, cores, expected, no_thread_environment, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: busy)
    chosen, reason = choose_num_threads()
    assert chosen == expected and f"{cores} usable cores" in reason


def test_machine_wide_load_is_ignored_when_only_some_cores_are_ours(no_thread_environment, monkeypatch):
    # A container's cpuset of 2 cores on a 64-core host: the host's task count says nothing about our 2 cores.
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 40.0)
    assert choose_num_threads() == (2, "2 usable cores")


def test_local_ranks_share_the_cores(no_thread_environment, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert choose_num_threads()[0] == 4


def test_a_busy_process_is_seen():
    # A bounded busy loop: the sampled count of other runnable tasks must include it.
    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)
        assert runnable_elsewhere() >= 0.5
    finally:
        busy.kill()
        busy.wait()


def test_configure_sets_torch_and_logs_the_choice(caplog):
    with caplog.at_level(logging.INFO, logger="vaelm.threads"):
        assert configure_threads(2) == 2
    assert torch.get_num_threads() == 2
    assert "Using 2 CPU threads (--num_threads" in caplog.text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_num_threads(command, capsys):
    module = importlib.import_module(f"vaelm.cli.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    assert "--num_threads" in capsys.readouterr().out


def test_a_command_applies_and_logs_num_threads(caplog, capsys):
    from vaelm.cli.sample import main

    with caplog.at_level(logging.INFO, logger="vaelm.threads"):
        assert main(["--prior", "--num", "2", "--seed", "0", "--num_threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    assert "Using 2 CPU threads" in caplog.text
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_importing_vaelm_makes_openmp_threads_wait_passively(preset):
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if preset:
        environment["OMP_WAIT_POLICY"] = preset
    code = "import os, vaelm; print(os.environ['OMP_WAIT_POLICY'])"
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (preset or "PASSIVE")
