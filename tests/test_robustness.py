"""Robustness: bad input gets one clear paragraph and a non-zero exit, never a traceback; messy text
trains; over-long sentences are dropped or cut with a count; a run killed with SIGKILL resumes to the same losses;
half-written checkpoints are never picked; identical seeds give identical losses; loading is safe.

Most command-level cases call `run_command("vaelm-train", main, argv)` in-process: it is exactly what the
`vaelm-train` console script runs (minus `sys.exit`), and it keeps the file fast. Two cases go through a real
subprocess: a bad file (no traceback on the real stderr) and the SIGKILL.
"""

import builtins
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, train_tiny, write_corpus
from safetensors.torch import load_file, save_file

from vaelm import VAELMConfig, build_tokenizer
from vaelm.cli import describe_error, run_command
from vaelm.cli import train as train_cli
from vaelm.cli.train import parse_arguments
from vaelm.corpora.sources import DataError, read_sentences
from vaelm.pretrained.checkpoints import last_complete_checkpoint, resolve_resume
from vaelm.pretrained.loading import ModelLoadError, load_model_and_tokenizer
from vaelm.training.kl_schedules import kl_weight_at
from vaelm.training.trainer import VAETrainer

TINY = [
    "--embedding_size",
    "16",
    "--num_units",
    "24",
    "--latent_dim",
    "4",
    "--batch_size",
    "16",
    "--annealing_pivot",
    "10",
    "--learning_rate",
    "0.01",
    "--disable_tqdm",
    "true",
    "--seed",
    "0",
]
ERROR_PREFIX = "vaelm-train: error: "
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread here and in the subprocesses: on a busy 2-core machine two threads spin and run ~5x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def cli_train(capsys, *argv: str) -> tuple[int, str]:
    """Run `vaelm-train argv` in-process; return the exit status and what went to stderr."""
    capsys.readouterr()
    status = run_command("vaelm-train", train_cli.main, [str(arg) for arg in argv])
    return status, capsys.readouterr().err


def error_line(status: int, stderr: str) -> str:
    """Check a user error (non-zero exit, no traceback) and return its `vaelm-train: error:` paragraph."""
    assert status != 0, stderr[-3000:]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def history(output_dir: Path) -> list[dict]:
    return json.loads((output_dir / "trainer_state.json").read_text())["log_history"]


def losses(log_history: list[dict]) -> list[tuple]:
    """The per-step training figures of a log history (timing-free, so two runs can be compared exactly)."""
    return [(e["step"], e["loss"], e["rec_loss"], e["kl"], e["beta"]) for e in log_history if "loss" in e]


# ------------------------------------------------------------------------------------------------ bad data
def _bad_data(kind: str, folder: Path) -> tuple[Path, list[str]]:
    """A corpus folder broken in one way, and the words the error must contain."""
    write_corpus(folder, {"train": 30, "valid": 10})
    train = folder / "train.txt"
    if kind == "missing_dir":
        return folder / "nowhere", [str(folder / "nowhere"), "--data_dir"]
    if kind == "missing_split":
        (folder / "valid.txt").unlink()
        return folder, [str(folder), "valid", "valid.txt"]
    if kind == "empty":
        train.write_bytes(b"")
        return folder, [str(train), "no sentences"]
    if kind == "blank_only":
        train.write_bytes(b"\n   \n\t\t\r\n\r\n \n")
        return folder, [str(train), "no sentences"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing_dir", "missing_split", "empty", "blank_only"])
def test_bad_data_is_one_clear_error(kind, tmp_path, capsys):
    data_dir, needles = _bad_data(kind, tmp_path / "corpus")
    line = error_line(*cli_train(capsys, "--data_dir", data_dir, "--output_dir", tmp_path / "out", *TINY))
    for needle in needles:
        assert needle in line
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_non_utf8_names_file_and_line_in_a_real_process(tmp_path):
    """The error is raised inside datasets' generator; the real console entry point still prints one paragraph."""
    corpus = write_corpus(tmp_path / "corpus", {"train": 20, "valid": 10})
    bad = corpus / "train.txt"
    bad.write_bytes(b"first line\r\nsecond line\n" + b"caf\xe9 latin-1 here\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelm.cli.train",
            "--data_dir",
            str(corpus),
            "--output_dir",
            str(tmp_path / "out"),
            *TINY,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=ONE_THREAD,
    )
    line = error_line(result.returncode, result.stderr)
    assert f"{bad}, line 3" in line and "UTF-8" in line and "0xe9" in line


def test_debug_flag_and_env_let_the_traceback_through(tmp_path, capsys, monkeypatch):
    argv = ["--data_dir", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "out"), *TINY]
    with pytest.raises(DataError, match=r"does not exist"):
        run_command("vaelm-train", train_cli.main, ["--debug", *argv])
    monkeypatch.setenv("VAELM_DEBUG", "1")
    with pytest.raises(DataError):
        run_command("vaelm-train", train_cli.main, argv)


def test_describe_error_names_foreign_errors_and_their_cause():
    assert describe_error(KeyError("text")) == "KeyError: 'text'"
    assert describe_error(DataError("x.txt is empty.")) == "x.txt is empty."
    try:
        try:
            raise FileNotFoundError("data.bin is missing")
        except FileNotFoundError as cause:
            raise RuntimeError("An error occurred while generating the dataset") from cause
    except RuntimeError as error:
        message = describe_error(error)
    assert message.startswith("An error occurred") and "FileNotFoundError: data.bin is missing" in message


# ------------------------------------------------------------------------------------------------ bad config
@pytest.mark.parametrize(
    "flag, value",
    [
        ("--hidden_size", "-5"),
        ("--latent_size", "-1"),
        ("--word_dropout", "1"),
        ("--embedding_size", "-1"),
        ("--num_layers", "0"),
        ("--keep_prob", "0"),
        ("--keep_prob", "1.5"),
        ("--batch_size", "0"),
        ("--learning_rate", "-1"),
        ("--max_length", "0"),
        ("--output_dropout", "1"),
    ],
)
def test_impossible_values_name_their_flag(flag, value, tiny_corpus, tmp_path, capsys):
    line = error_line(
        *cli_train(capsys, "--data_dir", tiny_corpus, "--output_dir", tmp_path / "out", *TINY, flag, value)
    )
    assert flag in line and value in line


@pytest.mark.parametrize(("alias", "flag"), [("--num_units", "--hidden_size"), ("--latent_dim", "--latent_size")])
def test_an_impossible_value_under_an_original_name_names_the_field(alias, flag, tiny_corpus, tmp_path, capsys):
    line = error_line(
        *cli_train(capsys, "--data_dir", tiny_corpus, "--output_dir", tmp_path / "out", *TINY, alias, "-5")
    )
    assert f"{flag} -5 is impossible" in line


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--hidden_sizes", "64"], "Unknown flag --hidden_sizes (did you mean --hidden_size?)"),
        (["--keep_probs", "0.7"], "Unknown flag --keep_probs (did you mean --keep_prob?)"),
        (["stray"], "Unexpected value 'stray' (a value must follow its flag)"),
    ],
)
def test_unknown_flags_are_named_with_the_flag_meant(argv, expected, tmp_path, capsys):
    # The data folder does not exist either: the mistyped flag is what gets reported, before any value is checked.
    line = error_line(*cli_train(capsys, "--data_dir", tmp_path / "missing", "--output_dir", tmp_path / "out", *argv))
    assert expected in line and "--help lists every flag" in line


def test_abbreviated_flags_are_refused_with_the_flag_meant(tmp_path, capsys):
    """argparse would take `--max_step 10` as `--max_steps 10`, silently; every command refuses it instead."""
    line = error_line(*cli_train(capsys, "--data_dir", tmp_path, "--output_dir", tmp_path / "out", "--max_step", "10"))
    assert "Unknown flag --max_step (did you mean --max_steps?)" in line
    from vaelm.cli import sample as sample_cli

    capsys.readouterr()
    assert run_command("vaelm-sample", sample_cli.main, ["--temp", "0.5"]) == 1
    assert "Unknown flag --temp" in capsys.readouterr().err


def test_a_config_file_that_is_not_yaml_or_json_is_named(tmp_path, capsys):
    for name in ("recipe.txt", "README.md"):
        config = tmp_path / name
        config.write_text("num_units: 64\n")
        line = error_line(*cli_train(capsys, config, "--data_dir", tmp_path, "--output_dir", tmp_path / "out"))
        assert f"{config} is given where the config file goes" in line and ".yaml/.yml/.json" in line
        assert "Unexpected value" not in line


def test_resume_flag_help_says_true_resumes_from_the_newest_checkpoint():
    help_text = " ".join(train_cli.make_parser().format_help().split())
    assert (
        "`true` resumes from the newest complete checkpoint (one whose trainer_state.json exists) in --output_dir"
        in (help_text)
    )


def test_unknown_config_file_keys_are_named_as_keys(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("num_units: 64\nlatent_sizes: 32\n")  # the original script's names are keys too
    line = error_line(*cli_train(capsys, config, "--data_dir", tmp_path / "missing", "--output_dir", tmp_path / "out"))
    assert f"Unknown key latent_sizes (did you mean latent_size?) in config file {config}" in line


def test_every_command_takes_a_config_file_of_flags(tmp_path):
    from transformers import HfArgumentParser

    from vaelm.cli import parse_flags
    from vaelm.cli.evaluate import parse_arguments as evaluate_arguments
    from vaelm.cli.push import PushArguments

    config = tmp_path / "eval.yaml"
    config.write_text(f"data_dir: {tmp_path}\nsplit: valid\niw_samples: 50\n")
    arguments = evaluate_arguments([str(config), "--iw_samples", "7"])
    assert (arguments.split, arguments.iw_samples) == ("valid", 7)  # a flag after the file wins
    config = tmp_path / "push.json"
    config.write_text('{"model": "runs/ptb", "repo_id": "me/vae"}')  # required flags may come from the file
    (push,) = parse_flags(HfArgumentParser(PushArguments), [str(config)])
    assert (push.model, push.repo_id) == ("runs/ptb", "me/vae")
    config.write_text('{"model": "runs/ptb", "repo": "me/vae"}')  # an abbreviation is fine on a command line only
    with pytest.raises(ValueError, match=f"Unknown key repo \\(did you mean repo_id\\?\\) in config file {config}"):
        parse_flags(HfArgumentParser(PushArguments), [str(config)])


def test_other_commands_name_unknown_flags_too(capsys):
    from vaelm.cli import evaluate as evaluate_cli
    from vaelm.cli import sample as sample_cli

    capsys.readouterr()
    assert run_command("vaelm-sample", sample_cli.main, ["--num_samples", "3"]) == 1
    assert "vaelm-sample: error: Unknown flag --num_samples (did you mean --num?)" in capsys.readouterr().err
    assert run_command("vaelm-evaluate", evaluate_cli.main, ["--splits", "valid"]) == 1
    assert "vaelm-evaluate: error: Unknown flag --splits (did you mean --split?)" in capsys.readouterr().err


def test_config_rejects_impossible_values():
    with pytest.raises(ValueError, match=r"hidden_size"):
        VAELMConfig(hidden_size=-3)
    with pytest.raises(ValueError, match=r"keep_prob"):
        VAELMConfig(word_dropout=1.0)
    with pytest.raises(ValueError, match=r"embedding_dropout"):
        VAELMConfig(embedding_dropout="0.5")
    with pytest.raises(ValueError, match=r"special token ids"):
        VAELMConfig(vocab_size=3)


# ------------------------------------------------------------------------------------------------ bad models
def _model_like(kind: str, source: Path, folder: Path) -> tuple[str, list[str]]:
    """A path that looks like a model but is not a usable one, and the words the error must contain."""
    if kind == "missing":
        return str(folder / "no" / "such" / "model"), ["does not exist", "Hub id"]
    folder.mkdir(parents=True)
    if kind == "not_a_model":
        (folder / "notes.txt").write_text("hello")
        return str(folder), [str(folder), "no config.json"]
    config = json.loads((source / "config.json").read_text())
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, folder / name)
    if kind == "other_model_type":
        config["model_type"] = "bert"
        shutil.copy(source / "model.safetensors", folder)
    (folder / "config.json").write_text(json.dumps(config))
    if kind == "other_model_type":
        return str(folder), [str(folder), "'bert'", "not a vaelm model"]
    if kind == "no_weights":
        return str(folder), [str(folder), "no weights", "model.safetensors"]
    if kind == "pickle_only":
        torch.save(load_file(source / "model.safetensors"), folder / "pytorch_model.bin")
        return str(folder), [str(folder), "pytorch_model.bin", "pickle", "weights_only=True"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "not_a_model", "other_model_type", "no_weights", "pickle_only"])
def test_unusable_model_path_is_one_clear_error(kind, tiny_model_dir, tiny_corpus, tmp_path, capsys):
    path, needles = _model_like(kind, tiny_model_dir, tmp_path / "model")
    line = error_line(
        *cli_train(
            capsys,
            "--data_dir",
            tiny_corpus,
            "--output_dir",
            tmp_path / "out",
            *TINY,
            "--model_name_or_path",
            path,
        )
    )
    for needle in needles:
        assert needle in line
    with pytest.raises(ModelLoadError) as raised:  # the shared loader of every command says the same
        load_model_and_tokenizer(path)
    assert all(needle in str(raised.value) for needle in needles)


def test_mismatched_tokenizer_names_both_flags(tiny_model_dir, tiny_corpus, tmp_path, capsys):
    other = tmp_path / "other_tokenizer"
    build_tokenizer(["alpha beta gamma delta epsilon"]).save_pretrained(other)
    line = error_line(
        *cli_train(
            capsys,
            "--data_dir",
            tiny_corpus,
            "--output_dir",
            tmp_path / "out",
            *TINY,
            "--model_name_or_path",
            tiny_model_dir,
            "--tokenizer",
            other,
        )
    )
    assert f"--tokenizer {other}" in line and f"--model_name_or_path {tiny_model_dir}" in line
    assert "vocab_size" in line
    with pytest.raises(ModelLoadError, match=r"has 9 entries but the model's vocab_size is"):
        load_model_and_tokenizer(tiny_model_dir, tokenizer=other)


def test_loading_needs_no_remote_code_and_refuses_damaged_files(tiny_model_dir, tmp_path, monkeypatch):
    def no_prompt(*args, **kwargs):
        raise AssertionError("loading asked whether to trust remote code")

    monkeypatch.setattr(builtins, "input", no_prompt)
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir)
    assert not model.training and len(tokenizer) == model.config.vocab_size
    from transformers import AutoModel

    assert type(AutoModel.from_pretrained(tiny_model_dir)).__name__ == "VAELMModel"  # local registration, no prompt

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "latent_size": -2}))
    with pytest.raises(ModelLoadError, match=r"config.json holds impossible values: VAELMConfig.latent_size"):
        load_model_and_tokenizer(copy)
    hidden = config["hidden_size"]
    (copy / "config.json").write_text(json.dumps({**config, "hidden_size": 2 * hidden}))
    with pytest.raises(ModelLoadError) as raised:  # weights shaped for another config: the field and both sizes
        load_model_and_tokenizer(copy)
    message = str(raised.value)
    assert f"sets hidden_size = {2 * hidden}, but the weights were trained with hidden_size = {hidden}" in message
    assert str(copy) in message and "truncated" not in message and "ignore_mismatched_sizes" not in message
    (copy / "config.json").write_text(json.dumps(config))
    weights = load_file(copy / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("lm_head")}, copy / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"missing keys: lm_head"):  # never silently left at random
        load_model_and_tokenizer(copy)
    with open(copy / "model.safetensors", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(ModelLoadError, match=r"truncated"):
        load_model_and_tokenizer(copy)
    (copy / "tokenizer.json").unlink()
    shutil.copy(tiny_model_dir / "model.safetensors", copy)
    with pytest.raises(ModelLoadError, match=r"no tokenizer.json"):
        load_model_and_tokenizer(copy)
    with pytest.raises(ModelLoadError, match=r"vaelm-user/no-such-model"):  # a Hub id that is not cached, offline
        load_model_and_tokenizer("vaelm-user/no-such-model", local_files_only=True)
    with pytest.raises(ModelLoadError, match=r"runs_ptb does not exist"):  # a mistyped folder is not looked up online
        load_model_and_tokenizer("runs_ptb")


# ------------------------------------------------------------------------------------------------ NaN loss
def test_nan_loss_stops_with_the_step_number(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "out"
    line = error_line(
        *cli_train(
            capsys,
            "--data_dir",
            tiny_corpus,
            "--output_dir",
            out,
            *TINY,
            "--max_steps",
            "20",
            "--learning_rate",
            "1e30",
        )
    )
    assert re.search(r"became (nan|inf) at step \d+", line) and "--learning_rate" in line
    assert not (out / "model.safetensors").exists()


def test_nan_loss_keeps_the_last_good_checkpoint(tiny_corpus, tmp_path, capsys, monkeypatch):
    """Weights blow up after step 7: the run stops before step 8 updates anything; checkpoint-5 stays loadable."""
    original = VAETrainer.training_step

    def blow_up_after_step_7(self, model, inputs, *rest):
        if self.state.global_step == 7:
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.fill_(float("inf"))
        return original(self, model, inputs, *rest)

    monkeypatch.setattr(VAETrainer, "training_step", blow_up_after_step_7)
    out = tmp_path / "out"
    line = error_line(
        *cli_train(
            capsys,
            "--data_dir",
            tiny_corpus,
            "--output_dir",
            out,
            *TINY,
            "--max_steps",
            "20",
            "--save_steps",
            "5",
            "--logging_steps",
            "5",
        )
    )
    assert "at step 8" in line and "--resume_from_checkpoint true" in line
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-5"]
    assert last_complete_checkpoint(out) == out / "checkpoint-5"
    model, _ = load_model_and_tokenizer(out / "checkpoint-5")
    assert all(torch.isfinite(parameter).all() for parameter in model.parameters())


# ------------------------------------------------------------------------------------------------ messy text
def test_messy_but_valid_text_trains(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus", {"train": 60, "valid": 10})
    clean = (corpus / "train.txt").read_text(encoding="utf-8").splitlines()
    messy = []
    for i, sentence in enumerate(clean):
        words = sentence.split()
        spaced = ["\t".join(words), "  ".join(words), f"  {sentence}\t ", sentence][i % 4]
        messy.append(spaced + ("\r\n" if i % 2 else "\n") + ("\n \t\r\n" if i % 7 == 0 else ""))
    (corpus / "train.txt").write_bytes(b"\xef\xbb\xbf" + "".join(messy).encode("utf-8"))
    assert read_sentences(corpus / "train.txt") == clean

    out = tmp_path / "out"
    status, stderr = cli_train(capsys, "--data_dir", corpus, "--output_dir", out, *TINY, "--max_steps", "5")
    assert status == 0 and "Traceback" not in stderr, stderr[-3000:]
    assert (out / "model.safetensors").is_file()
    _, tokenizer = load_model_and_tokenizer(out)
    vocabulary = tokenizer.get_vocab()
    assert not [word for word in vocabulary if any(c in word for c in "\ufeff\r\t ")]
    assert set(clean[0].split()) <= set(vocabulary)  # the first word survives the BOM


# ------------------------------------------------------------------------------------------------ long sentences
@pytest.mark.parametrize("mode", ["drop", "truncate"])
def test_a_5000_word_line_is_dropped_or_cut_with_a_count(mode, tmp_path, capsys, caplog):
    corpus = write_corpus(tmp_path / "corpus", {"train": 60, "valid": 10})
    words = (corpus / "train.txt").read_text(encoding="utf-8").split()
    with open(corpus / "train.txt", "a", encoding="utf-8") as handle:
        handle.write(" ".join(words[i % len(words)] for i in range(5000)) + "\n")
    flags = ["--max_length", "40"] + (["--truncate_long"] if mode == "truncate" else [])
    out = tmp_path / "out"
    status, stderr = cli_train(capsys, "--data_dir", corpus, "--output_dir", out, *TINY, "--max_steps", "5", *flags)
    assert status == 0 and "Traceback" not in stderr, stderr[-3000:]
    verb = "dropped" if mode == "drop" else "truncated"
    assert f"train: {verb} 1 of 61 sentences longer than --max_length 40 words." in caplog.text
    assert f"valid: {verb}" not in caplog.text  # only the split that had one is reported


# ------------------------------------------------------------------------------------------------ resume
RESUME_FLAGS = [*TINY, "--max_steps", "30", "--save_steps", "10", "--logging_steps", "5"]
SLOW_RUN = """
import os, sys, time
import vaelm.cli  # first, as in every command: its process set-up comes before torch
import vaelm.training.trainer

original = vaelm.training.trainer.VAETrainer.training_step

def slow(self, *args, **kwargs):
    time.sleep(float(os.environ["SLOW_STEP_S"]))
    return original(self, *args, **kwargs)

vaelm.training.trainer.VAETrainer.training_step = slow
from vaelm.cli.train import entry_point

sys.argv[0] = "vaelm-train"
entry_point()
"""


@pytest.fixture(scope="module")
def uninterrupted(one_torch_thread, tiny_corpus, tmp_path_factory) -> Path:
    """The reference: the same run as the killed one, never interrupted."""
    return train_tiny(tiny_corpus, tmp_path_factory.mktemp("uninterrupted"), *RESUME_FLAGS, "--save_strategy", "steps")


def test_sigkill_then_resume_loses_nothing(uninterrupted, tiny_corpus, tmp_path, capsys, caplog):
    out = tmp_path / "out"
    script = tmp_path / "slow_train.py"
    script.write_text(SLOW_RUN)
    process = subprocess.Popen(
        [sys.executable, str(script), "--data_dir", str(tiny_corpus), "--output_dir", str(out), *RESUME_FLAGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**ONE_THREAD, "SLOW_STEP_S": "0.1"},
    )
    try:
        deadline = time.monotonic() + 240
        while last_complete_checkpoint(out) is None:
            assert process.poll() is None, f"the run ended before it could be killed:\n{process.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint within the time limit"
            time.sleep(0.05)
        assert process.poll() is None
        process.kill()  # SIGKILL: no handler, no cleanup
        assert process.wait(timeout=60) == -9
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    killed_at = last_complete_checkpoint(out)
    assert not (out / "model.safetensors").exists()
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
        assert (killed_at / name).is_file(), name
    with pytest.raises(ModelLoadError, match=str(killed_at)):  # the unfinished folder points to its checkpoint
        load_model_and_tokenizer(out)

    # What a kill while saving leaves: a folder without trainer_state.json, or with a cut one. Never picked.
    (out / "checkpoint-28").mkdir()
    shutil.copy(killed_at / "model.safetensors", out / "checkpoint-28")
    (out / "checkpoint-29").mkdir()
    state = (killed_at / "trainer_state.json").read_text()
    (out / "checkpoint-29" / "trainer_state.json").write_text(state[: len(state) // 2])
    assert last_complete_checkpoint(out) == killed_at
    assert resolve_resume("true", str(out)) == str(killed_at)
    line = error_line(
        *cli_train(
            capsys,
            "--data_dir",
            tiny_corpus,
            "--output_dir",
            out,
            *RESUME_FLAGS,
            "--resume_from_checkpoint",
            out / "checkpoint-29",
        )
    )
    assert str(out / "checkpoint-29") in line and "cut short" in line and str(killed_at) in line

    status, stderr = cli_train(
        capsys,
        "--data_dir",
        tiny_corpus,
        "--output_dir",
        out,
        *RESUME_FLAGS,
        "--resume_from_checkpoint",
        "true",
    )
    assert status == 0, stderr[-3000:]
    assert "Skipping unfinished checkpoint folders" in caplog.text and "checkpoint-28, checkpoint-29" in caplog.text
    resumed = json.loads((out / "trainer_state.json").read_text())
    assert resumed["global_step"] == 30
    # Same losses, KL and β at every logged step as the run that was never killed: weights, optimizer, scheduler,
    # RNG (word dropout, reparameterisation) and the data order all continued exactly.
    reference = json.loads((uninterrupted / "checkpoint-30" / "trainer_state.json").read_text())["log_history"]
    assert losses(resumed["log_history"]) == losses(reference)
    # β logged at step t is the mean over the 5 steps before it, each a pure function of the global step.
    args = parse_arguments(["--output_dir", str(out), *RESUME_FLAGS])[2]
    expected_beta = [round(sum(kl_weight_at(s, args, 30) for s in range(t - 5, t)) / 5, 6) for t in range(5, 35, 5)]
    assert [row[4] for row in losses(resumed["log_history"])] == pytest.approx(expected_beta, abs=1e-6)
    assert expected_beta[0] < 0.01 and expected_beta[-1] > 0.99  # the schedule went on past its pivot


def test_resuming_at_max_steps_takes_no_step(uninterrupted, tiny_corpus, capsys):
    final = uninterrupted / "checkpoint-30"
    weights = load_file(final / "model.safetensors")
    status, stderr = cli_train(
        capsys,
        "--data_dir",
        tiny_corpus,
        "--output_dir",
        uninterrupted,
        *RESUME_FLAGS,
        "--resume_from_checkpoint",
        "true",
    )
    assert status == 0, stderr[-3000:]
    state = json.loads((uninterrupted / "trainer_state.json").read_text())
    assert state["global_step"] == 30
    assert max(entry["step"] for entry in state["log_history"]) == 30
    assert not (uninterrupted / "checkpoint-31").exists()
    saved = load_file(uninterrupted / "model.safetensors")
    assert all(torch.equal(saved[name], weights[name]) for name in weights)


# ------------------------------------------------------------------------------------------------ reproducibility
def test_same_seed_same_losses(tiny_corpus, tmp_path):
    flags = ["--max_steps", "12", "--logging_steps", "2"]
    first = losses(history(train_tiny(tiny_corpus, tmp_path / "a", *flags)))
    second = losses(history(train_tiny(tiny_corpus, tmp_path / "b", *flags)))
    other = losses(history(train_tiny(tiny_corpus, tmp_path / "c", *flags, "--seed", "1")))
    assert len(first) == 6
    assert first == second
    assert [row[1] for row in first] != [row[1] for row in other]  # the seed matters, so the equality means something
