"""Markdown table of PTB recipes: one row per run folder, with its valid-split evaluation JSON.

Usage: python benchmarks/ablation_table.py RUNS_DIR EVAL_DIR [RUN_DIR=EVAL_JSON ...]
Each RUNS_DIR/<name> is paired with EVAL_DIR/<name>.valid.json; extra pairs add full-length runs to the table.
"""

import json
import sys
from pathlib import Path


def row(run_dir: Path, eval_json: Path) -> str:
    config = json.loads((run_dir / "config.json").read_text())
    record = json.loads((run_dir / "training_record.json").read_text())
    args = record["training_arguments"]
    scores = json.loads(eval_json.read_text())
    schedule = args["kl_schedule"] + (f" ×{args['kl_cycles']}" if args["kl_schedule"] == "cyclical" else "")
    arch = f"{config['embedding_size']}/{config['hidden_size']}"
    return (
        f"| {run_dir.name} | {schedule} | {args['free_bits']:g} | {config['latent_size']} | {arch} | "
        f"{record['global_step']} | {scores['iw_samples']} | **{scores['nll']:.2f}** | {scores['elbo']:.2f} | "
        f"{scores['kl']:.2f} | {scores['mi']:.2f} | {scores['au']}/{config['latent_size']} |"
    )


def main() -> None:
    runs_dir, eval_dir = Path(sys.argv[1]), Path(sys.argv[2])
    pairs = [(run, eval_dir / f"{run.name}.valid.json") for run in sorted(runs_dir.iterdir()) if run.is_dir()]
    pairs += [tuple(map(Path, extra.split("=", 1))) for extra in sys.argv[3:]]
    print("| recipe | KL schedule | free bits (nats/dim) | latent | emb/hidden | steps | K | valid IW-NLL | valid ELBO "
          "| KL | MI | AU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run_dir, eval_json in pairs:
        if eval_json.exists():
            print(row(run_dir, eval_json))


if __name__ == "__main__":
    main()
