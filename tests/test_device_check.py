"""The CPU side of `benchmarks/device_check.sh` (the prepared GPU check): the tiny mode runs every part end to end on
the CPU and prints one JSON object with every figure the GPU run reports; missing data is one clear message."""

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, write_corpus
from torch.utils.flop_counter import FlopCounterMode

import vaelm
from vaelm import VAELMConfig, VAELMModel
from vaelm.evaluation.metrics import evaluate_sequences

SCRIPT = REPO / "benchmarks" / "device_check.sh"


def run_check(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(SCRIPT), *arguments], capture_output=True, text=True, env=environment, timeout=600, cwd=REPO
    )


def ptb_named_corpus(folder: Path) -> Path:
    write_corpus(folder, {"train": 600, "valid": 60, "test": 60})
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").rename(folder / f"ptb.{split}.txt")
    return folder


def test_tiny_cpu_run_prints_one_json_object_with_every_figure(tmp_path):
    data = ptb_named_corpus(tmp_path / "ptb")
    result = run_check("--device", "cpu", "--tiny", "--data_dir", str(data), "--train_seconds", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # stdout holds the JSON object alone
    report = json.loads(lines[0])
    assert report["device"] == "cpu"
    for precision in ("fp32", "bf16"):
        train = report["train"][precision]
        assert (
            train["vaelm_tokens_per_s"] > 0 and train["reference_tokens_per_s"] > 0 and train["vaelm_steps_per_s"] > 0
        )
        assert math.isclose(train["ratio"], train["vaelm_tokens_per_s"] / train["reference_tokens_per_s"], rel_tol=0.01)
        evaluation = report["eval"][precision]
        assert evaluation["token_samples_per_second"] > 0 and evaluation["projected_ptb_test_seconds"] > 0
    assert report["train"]["bf16"]["fraction_of_bf16_limit"] > 0
    training = report["ptb_2min"]
    assert training["steps"] >= 2 and training["wall_s"] > 0
    assert 0 < training["valid_elbo"] < 1e4 and training["valid_kl"] >= 0
    assert "--max_steps" in training["command"] and "OUTPUT_DIR" in training["command"]


def test_missing_ptb_files_are_one_clear_message(tmp_path):
    result = run_check("--device", "cpu", "--tiny", "--data_dir", str(tmp_path))
    assert result.returncode != 0
    assert (
        "lacks ptb.train.txt, ptb.valid.txt, ptb.test.txt" in result.stderr and "cp ../shared/data/ptb" in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "sizes",
    [
        {"hidden_size": 40, "tie_word_embeddings": True, "latent_to_every_step": True},  # the bundled model's structure
        {"hidden_size": 32},
        {"hidden_size": 32, "cell_type": "gru", "latent_to_every_step": True},
    ],
)
def test_eval_speed_flop_count_matches_the_matmuls_the_evaluation_runs(sizes):
    # The FLOP limit of `benchmarks/eval_speed.py` (and README's K = 500 arithmetic) rests on this count.
    sys.path.insert(0, str(REPO / "benchmarks"))
    import eval_speed

    config = VAELMConfig(vocab_size=500, embedding_size=24, latent_size=6, **sizes)
    model = VAELMModel(config).eval()
    rng = random.Random(0)
    sequences = [[2] + [rng.randrange(4, 500) for _ in range(rng.randrange(5, 30))] + [3] for _ in range(20)]
    iw_samples = 64
    token_samples = sum(len(sequence) - 1 for sequence in sequences) * iw_samples
    with FlopCounterMode(display=False) as counter:
        evaluate_sequences(model, sequences, iw_samples=iw_samples, seed=0)
    expected = eval_speed.flops_per_token_sample(config, token_samples / iw_samples / len(sequences), iw_samples)
    assert counter.get_total_flops() / token_samples == pytest.approx(expected["total"], rel=0.03)


def test_eval_speed_times_the_bundled_models_architecture(capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import eval_speed

    report = eval_speed.main(
        [
            "--model",
            "bundled",
            "--iw_samples",
            "2",
            "--sentences",
            "1",
            "--windows",
            "1",
            "--precisions",
            "fp32",
            "--peak_size",
            "64",
            "--threads",
            "1",
        ]
    )
    bundled = json.loads((Path(vaelm.DEFAULT_MODEL) / "config.json").read_text())
    hidden = bundled["hidden_size"]
    assert report["config"]["hidden_size"] == hidden > 350 and report["config"]["tie_word_embeddings"]
    assert report["config"]["latent_to_every_step"]
    flops = report["flops_per_token_sample"]
    assert flops["vocabulary_projection"] == 2 * 351 * 10000 + 2 * hidden * 350  # bias row; tied hidden -> 350
    assert flops["recurrent"] == 2 * hidden * 4 * hidden
    assert report["fp32"]["projected_ptb_test_seconds"] > 0
    assert json.loads(capsys.readouterr().out) == report
