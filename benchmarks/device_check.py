"""The prepared GPU check (run by `benchmarks/device_check.sh`): one JSON object on stdout with

- `train`: training tokens/s of vaelm (the real `vaelm-train` step) and of the straightforward reference, both on the
  device, from `benchmarks/train_speed.py` (fp32 and bf16 autocast);
- `eval`: importance-weighted evaluation token-samples/s and the projected time of the full PTB test at K = 500 for the
  bundled model's architecture, from `benchmarks/eval_speed.py --model bundled` (fp32 and bf16);
- `ptb_2min`: a `vaelm-train` run on PTB sized to about `--train_seconds` (steps = seconds × the steps/s just
  measured), its wall time and its final valid ELBO, KL and PPL.

Data: `--data_dir` (default `$VAELM_PTB`, else `.ptb/` in the repository, else `../shared/data/ptb`) holds
`ptb.train.txt`/`ptb.valid.txt`/`ptb.test.txt`. The device machine gets only the repository, so copy the files into the
ignored `.ptb/` first and name it in `carry` (see docs/speed.md, "GPU").

`--tiny` shrinks every part (tiny model, a few steps, seconds of training) so that the CPU-side logic runs in a test
(`tests/test_speed_paths.py`); its figures mean nothing.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import vaelm.cli  # noqa: E402,F401  # isort: skip (first: OpenMP's wait policy is set before torch loads)
import eval_speed  # noqa: E402
import torch  # noqa: E402
import train_speed  # noqa: E402

PTB_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")


def default_data_dir() -> Path:
    """`$VAELM_PTB`, else the repository's ignored `.ptb/`, else `../shared/data/ptb` beside the repository."""
    if os.environ.get("VAELM_PTB"):
        return Path(os.environ["VAELM_PTB"])
    local = REPO / ".ptb"
    return local if local.is_dir() else REPO.parent / "shared" / "data" / "ptb"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the check's flags (`argv`: defaults to `sys.argv[1:]`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is one).")
    parser.add_argument("--data_dir", type=Path, default=None, help="PTB folder (see the module docstring).")
    parser.add_argument("--train_seconds", type=float, default=120.0, help="Length of the PTB training run.")
    parser.add_argument(
        "--tiny", action="store_true", help="Tiny sizes and steps: a test of the logic, not a measurement."
    )
    return parser.parse_args(argv)


def quietly(function, argv: list[str]) -> dict:
    """Run a benchmark's `main(argv)` with its own JSON line sent to stderr; return its report."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        report = function(argv)
    print(f"device_check: {function.__module__} took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return report


def check_data(data_dir: Path) -> None:
    missing = [name for name in PTB_FILES if not (data_dir / name).is_file()]
    if missing:
        raise SystemExit(
            f"device_check: {data_dir} lacks {', '.join(missing)}. Copy PTB there first, e.g. "
            f"`mkdir -p .ptb && cp ../shared/data/ptb/ptb.*.txt .ptb/` (and name .ptb in the device call's carry), "
            "or pass --data_dir / set VAELM_PTB."
        )


def train_for(data_dir: Path, steps: int, device: str, tiny: bool, sizes: list[str]) -> dict:
    """Run `vaelm-train` on PTB for `steps` steps in a fresh process; its final valid metrics and wall time."""
    output_dir = tempfile.mkdtemp(prefix="vaelm-device-check-")
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        "--data_dir",
        str(data_dir),
        "--output_dir",
        output_dir,
        *sizes,
        "--batch_size",
        "64",
        "--learning_rate",
        "1e-3",
        "--kl_schedule",
        "linear",
        "--annealing_pivot",
        str(max(1, steps // 2)),
        "--max_steps",
        str(steps),
        "--logging_steps",
        str(max(1, steps // 10)),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--per_device_eval_batch_size",
        "512",
        "--seed",
        "0",
        *(["--use_cpu", "true"] if device == "cpu" else []),
        *(["--max_length", "40"] if tiny else []),
    ]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPO)
    seconds = time.perf_counter() - started
    sys.stderr.write(result.stderr[-4000:])
    if result.returncode != 0:
        raise SystemExit(f"device_check: the PTB training failed (exit {result.returncode}); its log is above.")
    # vaelm-train writes its final metrics to all_results.json in the output folder (its log names the file).
    metrics = json.loads((Path(output_dir) / "all_results.json").read_text(encoding="utf-8"))
    return {
        "steps": steps,
        "wall_s": round(seconds, 1),
        "valid_elbo": metrics.get("eval_elbo"),
        "valid_kl": metrics.get("eval_kl"),
        "valid_rec": metrics.get("eval_rec_loss"),
        "valid_elbo_ppl": metrics.get("eval_elbo_ppl"),
        "command": " ".join(["python scripts/train.py", *command[2:]]).replace(output_dir, "OUTPUT_DIR"),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    data_dir = args.data_dir or default_data_dir()
    check_data(data_dir)
    started = time.perf_counter()
    if args.tiny:
        sizes = ["--embedding_size", "16", "--num_units", "16", "--latent_dim", "4", "--vocab_size", "200"]
        train_flags = [
            "--windows",
            "1",
            "--window_steps",
            "2",
            "--warmup_steps",
            "1",
            "--embedding_size",
            "16",
            "--num_units",
            "16",
            "--latent_dim",
            "4",
            "--vocab_size",
            "200",
            "--peak_size",
            "128",
        ]
        eval_flags = [
            "--iw_samples",
            "4",
            "--sentences",
            "2",
            "--windows",
            "1",
            "--vocab_size",
            "200",
            "--embedding_size",
            "16",
            "--hidden_size",
            "16",
            "--latent_size",
            "4",
            "--peak_size",
            "128",
        ]
    else:
        sizes = ["--embedding_size", "350", "--num_units", "200", "--latent_dim", "13", "--vocab_size", "10000"]
        # GPU steps are short: longer windows keep the clock's resolution and launch jitter out of the figures.
        train_flags = ["--windows", "5", "--window_steps", "50", "--warmup_steps", "20"]
        # The bundled model's architecture: its full-test time is the figure README quotes.
        eval_flags = [
            "--model",
            "bundled",
            "--iw_samples",
            "500",
            "--sentences",
            "64",
            "--windows",
            "3",
            "--chunk_size",
            "16384",
        ]
    common = ["--data_dir", str(data_dir), "--device", device]
    report = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__}
    train = {
        precision: quietly(train_speed.main, [*common, *train_flags, *(["--bf16"] if precision == "bf16" else [])])
        for precision in ("fp32", "bf16")
    }
    report["train"] = {
        precision: {
            key: result.get(key)
            for key in (
                "vaelm_tokens_per_s",
                "reference_tokens_per_s",
                "ratio",
                "vaelm_steps_per_s",
                "peak_gflops",
                "fraction_of_limit",
                "peak_gflops_bf16",
                "fraction_of_bf16_limit",
                "projected_ptb_epoch_s",
            )
        }
        for precision, result in train.items()
    }
    evaluation = quietly(
        eval_speed.main, [*eval_flags, "--device", device, "--ptb_test", str(data_dir / "ptb.test.txt")]
    )
    report["eval"] = {
        precision: {
            key: evaluation[precision][key]
            for key in (
                "token_samples_per_second",
                "projected_ptb_test_seconds",
                "matmul_peak_gflops",
                "fraction_of_flop_limit",
            )
        }
        for precision in ("fp32", "bf16")
    }
    steps_per_s = train["fp32"]["vaelm_steps_per_s"]
    steps = max(2, int(args.train_seconds * steps_per_s))
    report["ptb_2min"] = train_for(data_dir, steps, device, args.tiny, sizes)
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["loadavg"] = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
