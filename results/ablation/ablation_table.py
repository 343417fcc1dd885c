"""Markdown table of PTB recipes: one row per run folder, with its valid-split evaluation JSON.

Usage: python results/ablation/ablation_table.py RUNS_DIR EVAL_DIR [RUN_DIR=EVAL_JSON ...]
Each RUNS_DIR/<name> is paired with EVAL_DIR/<name>.valid.json (folders without one are left out); extra pairs add
full-length runs to the table. A language model (latent 0) shows "LM" as its KL schedule and its exact NLL. The
"other options" column lists the issue-17 options that differ from their defaults; "train time" is the sum of the
run's wall_seconds.txt (one line per training segment, written by ablation_ptb.sh; with an auto-encoder phase,
that of <name>.autoencoder too), else the Trainer's train_runtime of the last segment.
"""

import json
import sys
from pathlib import Path

# Option -> (default, short label): the model and training options of issue 17, shown when not at their default.
OPTIONS = {
    "weight_drop": (0.0, "wdrop"),
    "locked_dropout": (False, "locked"),
    "word_type_dropout": (0.0, "typedrop"),
    "posterior_bn_gamma": (0.0, "BN γ"),
    "ema_decay": (0.0, "EMA"),
    "weight_decay": (0.0, "wd"),
}


def other_options(config: dict, args: dict, run_dir: Path) -> str:
    values = {**config, **args}
    shown = [
        f"{label} {values[name]:g}" if not isinstance(values[name], bool) else label
        for name, (default, label) in OPTIONS.items()
        if values.get(name, default) != default
    ]
    if (run_dir.parent / f"{run_dir.name}.autoencoder").is_dir():
        shown.append("AE init")
    return ", ".join(shown) or "–"


def train_hours(run_dir: Path) -> str:
    seconds = 0.0
    for folder in (run_dir, run_dir.parent / f"{run_dir.name}.autoencoder"):
        wall = folder / "wall_seconds.txt"
        if wall.exists():
            seconds += sum(float(line) for line in wall.read_text().split())
    if not seconds and (run_dir / "trainer_state.json").exists():
        history = json.loads((run_dir / "trainer_state.json").read_text())["log_history"]
        seconds = sum(entry["train_runtime"] for entry in history if "train_runtime" in entry)
    return f"{seconds / 3600:.2f} h" if seconds else "?"


def row(run_dir: Path, eval_json: Path) -> str:
    config = json.loads((run_dir / "config.json").read_text())
    record = json.loads((run_dir / "training_record.json").read_text())
    args = record["training_arguments"]
    scores = json.loads(eval_json.read_text())
    latent = config["latent_size"]
    if latent == 0:
        schedule, free_bits = "LM", "–"
    else:
        schedule = args["kl_schedule"] + (f" ×{args['kl_cycles']}" if args["kl_schedule"] == "cyclical" else "")
        free_bits = f"{args['free_bits']:g}"
    arch = f"{config['embedding_size']}/{config['hidden_size']}"
    return (
        f"| {run_dir.name} | {schedule} | {free_bits} | {latent} | {arch} | {other_options(config, args, run_dir)} | "
        f"{record['global_step']} | {train_hours(run_dir)} | {scores['iw_samples']} | **{scores['nll']:.2f}** | "
        f"{scores['elbo']:.2f} | {scores['kl']:.2f} | {scores['mi']:.2f} | {scores['au']}/{latent} |"
    )


def main() -> None:
    runs_dir, eval_dir = Path(sys.argv[1]), Path(sys.argv[2])
    pairs = [(run, eval_dir / f"{run.name}.valid.json") for run in sorted(runs_dir.iterdir()) if run.is_dir()]
    pairs += [tuple(map(Path, extra.split("=", 1))) for extra in sys.argv[3:]]
    print(
        "| recipe | KL schedule | free bits (nats/dim) | latent | emb/hidden | other options | steps | train time | K "
        "| valid IW-NLL | valid ELBO | KL | MI | AU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run_dir, eval_json in pairs:
        if eval_json.exists():
            print(row(run_dir, eval_json))


if __name__ == "__main__":
    main()
