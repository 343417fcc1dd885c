"""Shared pytest fixtures: tiny corpora written on the fly (PTB's format too), a small shipped Chinese corpus, a tiny
trained model, and the real corpora for the few tests marked `corpora`.

The suite needs nothing beside the clone. The tests marked `corpora` read the full corpora (their size is what they
check); they run only when `VAELM_SHARED_DATA` names the folder that holds them (`ptb/`, `books/raw/`, …), and are
deselected otherwise, so README's test command runs the same tests everywhere. CI runs them as a second step.
"""

import os
import random
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
# The real corpora: only for the tests marked `corpora`, only when this variable names their folder.
SHARED_DATA = Path(os.environ["VAELM_SHARED_DATA"]) if os.environ.get("VAELM_SHARED_DATA") else None
CORPORA_MARKER = "corpora"

# Tiny models run fastest on one thread; subprocesses (CLI tests) inherit the setting through the environment.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

SUBJECTS = ["the company", "mr. <unk>", "the bank", "investors", "the board", "a new york firm"]
VERBS = ["said it will buy", "agreed to sell", "expects to issue", "plans to trade"]
OBJECTS = ["N shares", "its stock", "the unit", "N million of bonds", "a stake in the bank"]
ENDINGS = ["", "this week", "next year", "in new york"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a test server or `accelerate launch --main_process_port`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_process_launcher() -> list[str]:
    """`accelerate launch` of two CPU processes on a free port: the command line before the script and its flags."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
    ]


# The model and batch of the multi-process tests: small enough that start-up dominates.
MULTI_PROCESS_MODEL_FLAGS = ["--embedding_size", "16", "--num_units", "16", "--latent_dim", "4", "--batch_size", "8"]

# What gloo prints when one rank of a job on this host aborts. Seen on 2-core machines, in each of the multi-process
# tests in turn, at start-up (before any step) and once at exit (before vaelm-train left its process group in order);
# every rerun passed.
GLOO_ABORT = "terminate called without an active exception"


def run_with_one_retry_on_gloo_abort(launch: Callable[[], Any]) -> Any:
    """
    Run a multi-process job, and once more if a rank aborted with gloo's signature (`GLOO_ABORT`); any other failure
    is returned as it is. `launch()` returns the job's `subprocess.CompletedProcess`, or a list of them.
    """
    result = launch()
    processes = result if isinstance(result, list) else [result]
    if any(process.returncode != 0 and GLOO_ABORT in process.stderr for process in processes):
        result = launch()
    return result


def templated_sentences(count: int, rng: random.Random) -> list[str]:
    """`count` short templated sentences, lower-case, with PTB's `<unk>` and `N` among their words."""
    return [
        " ".join(
            part for part in (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(ENDINGS)) if part
        )
        for _ in range(count)
    ]


def write_corpus(
    folder: Path, sentences: dict[str, int] | None = None, seed: int = 0, ptb_format: bool = False
) -> Path:
    """Write train/valid/test.txt of short templated sentences: structured enough that a tiny model learns fast.

    Args:
        folder: where to write (created if needed).
        sentences: the number of sentences of each split.
        seed: the seed of the sentence choice.
        ptb_format: write PTB's files instead (`ptb.train.txt`, …, each line with PTB's leading and trailing space).
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (sentences or {"train": 400, "valid": 40, "test": 40}).items():
        lines = templated_sentences(count, rng)
        if ptb_format:
            (folder / f"ptb.{split}.txt").write_text("".join(f" {line} \n" for line in lines), encoding="utf-8")
        else:
            (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def shared_corpus(*parts: str) -> Path:
    """A folder of the real corpora (tests marked `corpora` only, which run when `VAELM_SHARED_DATA` is set)."""
    if SHARED_DATA is None:
        raise RuntimeError("set VAELM_SHARED_DATA to the folder of the real corpora to run the tests marked `corpora`")
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} is absent: VAELM_SHARED_DATA must name a folder that holds {'/'.join(parts)}")
    return path


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", f"{CORPORA_MARKER}: reads the real corpora of $VAELM_SHARED_DATA (deselected when it is not set)"
    )


def pytest_report_header(config) -> str:
    if SHARED_DATA is None:
        return "real corpora: off (tests marked `corpora` deselected; set VAELM_SHARED_DATA to add them)"
    return f"real corpora: {SHARED_DATA}"


def pytest_collection_modifyitems(config, items) -> None:
    if SHARED_DATA is not None:
        return
    deselected = [item for item in items if item.get_closest_marker(CORPORA_MARKER)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker(CORPORA_MARKER)]


@pytest.fixture(scope="session")
def ptb_dir() -> Path:
    """The real PTB (tests marked `corpora`)."""
    return shared_corpus("ptb")


@pytest.fixture(scope="session")
def tiny_ptb(tmp_path_factory) -> Path:
    """A tiny corpus in PTB's format: `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt`, lower-case, `<unk>`, `N`."""
    return write_corpus(tmp_path_factory.mktemp("ptb"), ptb_format=True, seed=1)


@pytest.fixture(scope="session")
def tiny_data_root(tiny_ptb, tmp_path_factory) -> Path:
    """A folder like the real corpora's for the commands of the docs (`data/ptb` → `tiny_data_root/ptb`)."""
    root = tmp_path_factory.mktemp("data")
    (root / "ptb").symlink_to(tiny_ptb, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def luxun_dir() -> Path:
    """A small Chinese corpus shipped with the tests: the first sentences of Lu Xun's fiction (public domain)."""
    return FIXTURES / "luxun"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def train_tiny(data_dir: Path, output_dir: Path, *extra: str) -> Path:
    """Train a very small model in-process through the same code path as `vaelm-train`."""
    from vaelm.cli.train import parse_arguments
    from vaelm.training.job import train

    argv = [
        "--data_dir",
        str(data_dir),
        "--output_dir",
        str(output_dir),
        "--embedding_size",
        "16",
        "--num_units",
        "24",
        "--latent_dim",
        "4",
        "--batch_size",
        "16",
        "--max_steps",
        "30",
        "--annealing_pivot",
        "10",
        "--learning_rate",
        "0.01",
        "--logging_steps",
        "10",
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "true",
        "--seed",
        "0",
        *extra,
    ]
    train(*parse_arguments(argv))
    return output_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_corpus, tmp_path_factory) -> Path:
    """A model folder (weights, config, tokenizer, custom code) trained for a few steps on `tiny_corpus`."""
    return train_tiny(tiny_corpus, tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_gru_model_dir(tiny_corpus, tmp_path_factory) -> Path:
    """As `tiny_model_dir`, with GRU cells (`vaelm-train --cell_type gru`)."""
    return train_tiny(tiny_corpus, tmp_path_factory.mktemp("tiny_gru_model"), "--cell_type", "gru")


@pytest.fixture(params=["lstm", "gru"])
def trained_model_dir(request) -> Path:
    """The tiny trained model folder of each recurrent cell."""
    return request.getfixturevalue("tiny_model_dir" if request.param == "lstm" else "tiny_gru_model_dir")
