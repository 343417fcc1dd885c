"""CPU threads: `--num_threads` on every command, `OMP_NUM_THREADS` respected, the default from the usable cores, the
choice logged, and passive OpenMP waiting set before torch loads."""

import importlib
import logging
import os
import subprocess
import sys
import time

import pytest
import torch

from vaelm.runtime import threads
from vaelm.runtime.threads import choose_num_threads, configure_threads, usable_cores

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


def test_default_is_the_usable_cores(no_thread_environment, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 3)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.3)
    assert choose_num_threads() == (3, "3 usable cores")


def test_default_leaves_out_the_cores_other_processes_keep_busy(no_thread_environment, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.9)
    assert choose_num_threads() == (1, "2 usable cores, 1 kept busy by other processes")
    monkeypatch.setattr(threads, "busy_cores", lambda: 5.0)  # never fewer than one thread
    assert choose_num_threads()[0] == 1


def test_busy_cores_sees_a_busy_loop():
    """A real busy-loop process pinned to one of this process's cores shows up as about one busy core."""
    core = min(os.sched_getaffinity(0))
    loop = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import os, time\nos.sched_setaffinity(0, {{{core}}})\n"
            "end = time.time() + 3\nwhile time.time() < end: pass",
        ]
    )
    try:
        time.sleep(0.5)
        busy = threads.busy_cores(0.5)
    finally:
        loop.kill()
        loop.wait()
    assert 0.7 <= busy <= len(os.sched_getaffinity(0))


def test_local_ranks_share_the_cores(no_thread_environment, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert choose_num_threads()[0] == 4


def test_configure_sets_torch_and_logs_the_choice(caplog):
    with caplog.at_level(logging.INFO, logger="vaelm.runtime.threads"):
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

    with caplog.at_level(logging.INFO, logger="vaelm.runtime.threads"):
        assert main(["--prior", "--num", "2", "--seed", "0", "--num_threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    assert "Using 2 CPU threads" in caplog.text
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_the_commands_make_openmp_threads_wait_passively_and_import_vaelm_changes_nothing(preset):
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if preset:
        environment["OMP_WAIT_POLICY"] = preset

    def policy(code: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert policy("import os, vaelm; print(os.environ.get('OMP_WAIT_POLICY'))") == str(preset)
    # Set before torch loads (libgomp reads it then): every command imports vaelm.cli first.
    code = "import os, sys, vaelm.cli; assert 'torch' not in sys.modules; import vaelm.cli.train; "
    assert policy(code + "print(os.environ['OMP_WAIT_POLICY'])") == (preset or "PASSIVE")
