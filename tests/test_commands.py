"""The command line itself: `--help` is fast (no torch, no model) and says each default once; usage mistakes read
as such; flags take what the libraries behind them take."""

import importlib
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

from vaelm.cli import run_command

COMMANDS = ["train", "prepare", "evaluate", "sample", "homotopy", "map", "demo", "push"]
# vaelm-train's flags include transformers' TrainingArguments, and importing it imports torch (as does importing
# PreTrainedConfig, which VAELMConfig's fields come from): its --help cannot avoid torch.
TORCH_FREE_HELP = [command for command in COMMANDS if command != "train"]

HELP_PROBE = """
import sys
from vaelm.cli.{command} import main
try:
    main(["--help"])
except SystemExit as exit:
    assert exit.code == 0, exit.code
print("torch" in sys.modules, "vaelm.modeling_vaelm" in sys.modules)
"""


@pytest.mark.parametrize("command", TORCH_FREE_HELP)
def test_help_imports_no_torch_and_reads_no_model(command):
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", HELP_PROBE.format(command=command)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: vaelm-" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "False False", (
        f"vaelm-{command} --help imported torch or the model"
    )


def help_entries(command: str) -> dict[str, str]:
    """Each flag's entry in `vaelm-<command> --help`, on one line."""
    text = importlib.import_module(f"vaelm.cli.{command}").make_parser().format_help()
    options = text[text.index("options:") :]
    entries = re.split(r"\n  (?=-)", options)[1:]
    return {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_states_each_default_once_and_never_none(command):
    entries = help_entries(command)
    assert len(entries) > 5
    for flag, entry in entries.items():
        shown = re.search(r" \(default: [^()]*\)$", entry)  # what the formatter appends
        if shown:  # then the help itself says nothing of the default
            assert "default" not in entry[: shown.start()].lower(), entry
        assert "(default: None)" not in entry, entry
        assert not flag.startswith("--no_no_"), f"vaelm-{command} has {flag}"


@pytest.mark.parametrize("command", ["sample", "homotopy"])
def test_suppress_unk_is_on_by_default_and_has_its_no_form(command):
    module = importlib.import_module(f"vaelm.cli.{command}")
    ends = ["--start", "a", "--end", "b"] if command == "homotopy" else []
    assert module.parse_arguments(ends)[1].suppress_unk is True
    assert module.parse_arguments([*ends, "--no_suppress_unk"])[1].suppress_unk is False
    assert module.parse_arguments([*ends, "--suppress_unk", "false"])[1].suppress_unk is False
    assert module.parse_arguments([*ends, "--suppress_unk"])[1].suppress_unk is True


def test_the_bundled_model_default_is_said_once():
    entry = help_entries("sample")["--model"]
    assert "(default: the bundled PTB model)" in entry and "/pretrained/ptb" not in entry


def test_a_usage_mistake_gets_no_debug_hint_and_a_real_error_does(capsys, tmp_path):
    from vaelm.cli import sample

    assert run_command("vaelm-sample", sample.main, ["--num_samples", "3"]) == 1
    err = capsys.readouterr().err
    assert "Unknown flag --num_samples (did you mean --num?)" in err and "--debug" not in err
    assert run_command("vaelm-sample", sample.main, ["--num", "0"]) == 1  # the dataclass's own check
    err = capsys.readouterr().err
    assert "--num must be a positive integer" in err and "--debug" not in err
    assert run_command("vaelm-sample", sample.main, ["--model", str(tmp_path / "absent"), "--num", "1"]) == 1
    err = capsys.readouterr().err
    assert "absent" in err and "(Run with --debug" in err


def test_include_num_input_tokens_seen_takes_transformers_values(tmp_path):
    from vaelm.cli.train import parse_arguments

    common = ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")]
    assert (
        parse_arguments([*common, "--include_num_input_tokens_seen", "non_padding"])[2].include_num_input_tokens_seen
        == "non_padding"
    )
    assert (
        parse_arguments([*common, "--include_num_input_tokens_seen", "all"])[2].include_num_input_tokens_seen == "all"
    )
    assert parse_arguments([*common, "--include_num_input_tokens_seen", "no"])[2].include_num_input_tokens_seen in (
        "no",
        False,
    )
    assert parse_arguments(common)[2].include_num_input_tokens_seen in ("no", False)


SAMPLE_PROBE = """
import sys
from vaelm.cli.sample import main
assert main(["--num", "1", "--seed", "0", "--num_threads", "1"]) == 0
print(sorted(name for name in ("transformers.trainer", "datasets", "vaelm.corpora.data") if name in sys.modules))
"""


def test_sampling_loads_the_model_without_the_trainer_or_datasets():
    # What makes `vaelm-sample --num 1` start fast: only the model's own libraries load (timed in
    # benchmarks/startup.py, never here).
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", SAMPLE_PROBE], capture_output=True, text=True, env=environment, timeout=300, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].split(), result.stdout
    assert lines[1] == "[]", f"imported {lines[1]}"


def test_the_trainer_state_file_name_is_transformers_own():
    from transformers.trainer import TRAINER_STATE_NAME

    from vaelm.pretrained import checkpoints

    assert checkpoints.TRAINER_STATE_NAME == TRAINER_STATE_NAME
