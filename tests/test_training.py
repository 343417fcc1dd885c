"""KL schedules, the VAETrainer loss and logging, vaelm-train end to end (English, Chinese, YAML) and a 2-process run."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MULTI_PROCESS_MODEL_FLAGS, REPO, run_with_one_retry_on_gloo_abort, train_tiny, two_process_launcher

from vaelm.training.kl_schedules import kl_weight_at
from vaelm.training.trainer import VAETrainingArguments


def schedule(name: str, **options) -> VAETrainingArguments:
    return VAETrainingArguments(output_dir="unused", kl_schedule=name, **options)


def test_sigmoid_pivot_is_the_original_schedule():
    args = schedule("sigmoid_pivot", annealing_pivot=60000)
    assert kl_weight_at(0, args) < 1e-30
    assert kl_weight_at(57000, args) < 0.01
    assert kl_weight_at(60000, args) == pytest.approx(0.5)
    assert kl_weight_at(63000, args) > 0.99
    assert kl_weight_at(61000, args) == pytest.approx(1 / (1 + math.exp(-(1000 / 60000) * 100)))
    gentle = schedule("sigmoid_pivot", annealing_pivot=100, annealing_steepness=1)
    assert 0.2 < kl_weight_at(0, gentle) < 0.3


def test_logistic_linear_constant_and_cyclical():
    logistic = schedule("logistic", annealing_pivot=2500, annealing_rate=0.0025)
    assert kl_weight_at(2500, logistic) == pytest.approx(0.5)
    assert kl_weight_at(0, logistic) == pytest.approx(1 / (1 + math.exp(6.25)))
    linear = schedule("linear", annealing_pivot=100)
    assert [kl_weight_at(t, linear) for t in (0, 25, 100, 500)] == [0.0, 0.25, 1.0, 1.0]
    assert kl_weight_at(7, schedule("constant", kl_weight=0.3)) == 0.3
    cyclical = schedule("cyclical", kl_cycles=4, kl_cycle_ratio=0.5)
    values = [kl_weight_at(t, cyclical, total_steps=400) for t in (0, 50, 99, 100, 150, 399)]
    assert values == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    assert kl_weight_at(25, cyclical, total_steps=400) == 0.5
    # Without a pivot, the schedules pivot at half the run.
    assert kl_weight_at(500, schedule("sigmoid_pivot"), total_steps=1000) == pytest.approx(0.5)


def log_lines(folder: Path) -> list[dict]:
    return json.loads((folder / "trainer_state.json").read_text())["log_history"]


def test_tiny_training_run_logs_components_and_loss_falls(tiny_corpus, tmp_path):
    out = train_tiny(
        tiny_corpus,
        tmp_path / "run",
        "--max_steps",
        "60",
        "--logging_steps",
        "5",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "30",
        "--kl_schedule",
        "linear",
        "--annealing_pivot",
        "30",
        "--free_bits",
        "0.1",
    )
    history = log_lines(out)
    train_logs = [entry for entry in history if "rec_loss" in entry and "loss" in entry]
    assert len(train_logs) == 12
    assert train_logs[-1]["rec_loss"] < train_logs[0]["rec_loss"] - 5, "the reconstruction loss must fall"
    assert [round(entry["beta"], 3) for entry in train_logs[:2]] == [
        round(sum(range(0, 5)) / 5 / 30, 3),
        round(sum(range(5, 10)) / 5 / 30, 3),
    ]
    assert all(entry["kl"] >= 0 for entry in train_logs)
    evals = [entry for entry in history if "eval_elbo" in entry]
    assert len(evals) >= 2
    last = evals[-1]
    assert last["eval_elbo"] == pytest.approx(last["eval_rec_loss"] + last["eval_kl"], abs=1e-3)
    assert last["eval_loss"] == pytest.approx(last["eval_elbo"], rel=0.05)
    assert last["eval_elbo_ppl"] > 1
    assert (out / "training_curves.png").stat().st_size > 10000


def test_cell_type_flag_trains_a_gru(tiny_gru_model_dir):
    saved = json.loads((tiny_gru_model_dir / "config.json").read_text())
    assert saved["cell_type"] == "gru"
    train_logs = [entry for entry in log_lines(tiny_gru_model_dir) if "rec_loss" in entry and "loss" in entry]
    assert len(train_logs) == 3
    assert train_logs[-1]["rec_loss"] < train_logs[0]["rec_loss"] - 3, "the reconstruction loss must fall"


def test_cell_type_flag_rejects_other_cells(capsys):
    from vaelm.cli.train import parse_arguments

    with pytest.raises(SystemExit):
        parse_arguments(["--output_dir", "unused", "--cell_type", "rnn"])
    assert "invalid choice: 'rnn' (choose from 'lstm', 'gru')" in capsys.readouterr().err


def run_cli(args: list[str], env=None, timeout=600) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, env=environment, timeout=timeout, cwd=REPO)


def test_original_flags_yaml_and_overrides(tiny_corpus, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data_dir: {tiny_corpus}\nembedding_size: 16\nnum_units: 24\nlatent_dim: 3\nbatch_size: 8\n"
        "max_steps: 4\nannealing_pivot: 2\nkeep_prob: 0.5\nlearning_rate: 2.0e-4\nsave_strategy: 'no'\n"
        "report_to: none\ndisable_tqdm: true\n"
    )
    out = tmp_path / "model"
    result = run_cli([sys.executable, "scripts/train.py", str(config), "--latent_dim", "6", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "config.json").read_text())
    assert saved["latent_size"] == 6, "a flag after the YAML file overrides it"
    assert (saved["embedding_size"], saved["hidden_size"], saved["word_dropout"]) == (16, 24, 0.5)
    args = json.loads(json.dumps(log_lines(out)))  # the run logged and finished
    assert args[-1]["step"] == 4


def test_chinese_training_uses_a_word_vocabulary(luxun_dir, tmp_path):
    corpus = tmp_path / "zh"
    corpus.mkdir()
    for split, count in (("train", 300), ("valid", 30)):
        lines = (luxun_dir / f"{split}.txt").read_text(encoding="utf-8").splitlines()[:count]
        (corpus / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = train_tiny(corpus, tmp_path / "zh_model", "--lang", "zh", "--max_steps", "5")
    saved = json.loads((out / "config.json").read_text())
    assert (saved["lang"], saved["segmentation"]) == ("zh", "jieba")
    vocab = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert sum(len(word) > 1 for word in vocab if not word.startswith("<")) > 100, "multi-character words expected"


def test_two_process_accelerate_launch(tiny_corpus, tmp_path):
    out = tmp_path / "ddp"

    def launch():
        return run_cli(
            [
                *two_process_launcher(),
                "scripts/train.py",
                "--data_dir",
                str(tiny_corpus),
                "--output_dir",
                str(out),
                *MULTI_PROCESS_MODEL_FLAGS,
                "--max_steps",
                "6",
                "--logging_steps",
                "3",
                "--save_strategy",
                "no",
                "--disable_tqdm",
                "true",
            ]
        )

    result = run_with_one_retry_on_gloo_abort(launch)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "world size 2" in result.stderr, result.stderr[-4000:]
    # The closing lines (the model's folder, its valid figures, the commands to try it) come once, from the main process.
    assert result.stderr.count("every figure is in") == 1, result.stderr[-4000:]
    assert (out / "model.safetensors").is_file()
    train_logs = [entry for entry in log_lines(out) if "rec_loss" in entry]
    assert len(train_logs) == 2 and all(math.isfinite(entry["rec_loss"]) for entry in train_logs)


def test_leave_process_group_destroys_the_group_it_waited_on(tmp_path):
    """vaelm-train's last step under `accelerate launch`: a barrier, then the default group is destroyed."""
    import torch.distributed as distributed

    from vaelm.runtime.distributed import leave_process_group

    assert leave_process_group() is False, "no group: nothing to leave"
    distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert distributed.is_initialized()
    assert leave_process_group() is True
    assert not distributed.is_initialized()
