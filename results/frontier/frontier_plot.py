"""The reconstruction / likelihood frontier of results/frontier/reconstruction_frontier.sh: a Markdown table and a plot.

Usage: python results/frontier/frontier_plot.py RUNS_DIR EVAL_DIR TABLE.md PLOT.png
Each RUNS_DIR/<name> is paired with EVAL_DIR/<name>.valid.json (a `vaelm-evaluate --output` file with a
`reconstruction` entry) and with EVAL_DIR/<name>.step<N>.valid.json (its checkpoint at step N, the half-way screen);
folders without one are left out. The table gives each run's free bits, whether z feeds
every decoder step, its steps and training time (wall_seconds.txt), then valid IW-NLL, ELBO, KL, MI, AU, corpus
BLEU-4, exact match and the length ratio (hypothesis tokens / reference tokens: above 1 when greedy
decoding loops), and the differences from the run with free bits 0.2 and z at every step at the same
step (the screens' baseline). The plot draws BLEU-4 against IW-NLL, each point labelled by its free bits.
Anything in TABLE.md below the line `<!-- notes -->` is kept when the table is written again.
"""

import json
import sys
from pathlib import Path

NOTES_MARKER = "<!-- notes -->"
BASELINE = (0.2, True)  # free bits, z at every step: the recipe of the earlier screens and of the bundled model


def run_settings(folder: Path) -> tuple[dict, dict]:
    """A run's config and training arguments: from its end (training_record.json) or from a checkpoint."""
    if (folder / "training_record.json").exists():
        config = json.loads((folder / "config.json").read_text())
        return config, json.loads((folder / "training_record.json").read_text())["training_arguments"]
    import torch  # only for a run stopped half-way: its arguments are in the checkpoint

    checkpoint = min(folder.glob("checkpoint-*/training_args.bin"))
    config = json.loads((checkpoint.parent / "config.json").read_text())
    return config, vars(torch.load(checkpoint, weights_only=False))


def load_runs(runs_dir: Path, eval_dir: Path) -> list[dict]:
    """One record per evaluated model (a run's end, or its half-way checkpoint), sorted by steps and free bits."""
    runs = []
    for folder in sorted(path for path in runs_dir.iterdir() if path.is_dir()):
        evaluations = [(path, None) for path in [eval_dir / f"{folder.name}.valid.json"] if path.exists()]
        evaluations += [
            (path, int(path.name[len(folder.name) + 5 : -len(".valid.json")]))
            for path in eval_dir.glob(f"{folder.name}.step*.valid.json")
        ]
        if not evaluations:
            continue
        config, arguments = run_settings(folder)
        wall = folder / "wall_seconds.txt"
        seconds = sum(float(line) for line in wall.read_text().split()) if wall.exists() else None
        for path, steps in evaluations:
            runs.append(
                {
                    "name": folder.name,
                    "free_bits": float(arguments["free_bits"]),
                    "every_step": bool(config.get("latent_to_every_step")),
                    "steps": steps or arguments["max_steps"],
                    "schedule_steps": arguments["max_steps"],
                    "train_seconds": seconds if steps is None else None,
                    "latent": config["latent_size"],
                    **json.loads(path.read_text()),
                }
            )
    return sorted(runs, key=lambda run: (run["steps"], not run["every_step"], run["free_bits"]))


def label(run: dict) -> str:
    return f"fb {run['free_bits']:g}" + ("" if run["every_step"] else ", z → initial state only")


def steps(run: dict) -> str:
    return str(run["steps"]) if run["steps"] == run["schedule_steps"] else f"{run['steps']} of {run['schedule_steps']}"


def table(runs: list[dict]) -> str:
    lines = [
        (
            "| run | free bits (nats/dim) | z at every step | steps | train time | K | sentences | valid IW-NLL | ELBO "
            "| KL | MI | AU | recon. sentences | BLEU-4 | exact match | length ratio "
            "| Δ IW-NLL vs fb 0.2 (same steps) | Δ BLEU-4 |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        baseline = next(
            (
                other
                for other in runs
                if (other["free_bits"], other["every_step"]) == BASELINE and other["steps"] == run["steps"]
            ),
            None,
        )
        found = run.get("reconstruction") or {}
        hours = f"{run['train_seconds'] / 3600:.2f} h" if run["train_seconds"] else "–"
        delta_nll = f"{run['nll'] - baseline['nll']:+.2f}" if baseline else "–"
        delta_bleu = (
            f"{found['bleu4'] - baseline['reconstruction']['bleu4']:+.2f}"
            if baseline and found and baseline.get("reconstruction")
            else "–"
        )
        lines.append(
            f"| {run['name']} | {run['free_bits']:g} | {'yes' if run['every_step'] else 'no'} | {steps(run)} | {hours} "
            f"| {run['iw_samples']} | {run['sentences']} | **{run['nll']:.2f}** | {run['elbo']:.2f} | {run['kl']:.2f} "
            f"| {run['mi']:.2f} | {run['au']}/{run['latent']} | {found.get('sentences', '–')} "
            f"| **{found['bleu4']:.2f}** | {100 * found['exact_match']:.1f}% "
            f"| {found['hypothesis_length'] / found['reference_length']:.2f} | {delta_nll} | {delta_bleu} |"
            if found
            else f"| {run['name']} | {run['free_bits']:g} | {'yes' if run['every_step'] else 'no'} | {steps(run)} | {hours} "
            f"| {run['iw_samples']} | {run['sentences']} | **{run['nll']:.2f}** | {run['elbo']:.2f} | {run['kl']:.2f} "
            f"| {run['mi']:.2f} | {run['au']}/{run['latent']} | – | – | – | – | {delta_nll} | – |"
        )
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    shown = [run for run in runs if run.get("reconstruction")]
    figure, axes = plt.subplots(figsize=(6.8, 4.6))
    for count in sorted({run["steps"] for run in shown}):
        for every_step, marker in ((True, "o"), (False, "s")):
            group = [run for run in shown if run["steps"] == count and run["every_step"] == every_step]
            if not group:
                continue
            legend = f"step {count}" + ("" if every_step else ", z → initial state only")
            axes.plot(
                [run["nll"] for run in group],
                [run["reconstruction"]["bleu4"] for run in group],
                marker=marker,
                linestyle="-" if every_step else "none",
                label=legend,
            )
    for run in shown:
        axes.annotate(
            label(run).split(",")[0],
            (run["nll"], run["reconstruction"]["bleu4"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=9,
        )
    if shown:
        sample = shown[0]
        axes.set_title(f"PTB valid, {sample['schedule_steps']}-step screens: reconstruction vs likelihood", fontsize=10)
        axes.set_xlabel(
            f"IW-NLL (nats per sentence, K = {sample['iw_samples']}, first {sample['sentences']} sentences)"
        )
        axes.set_ylabel(
            f"corpus BLEU-4 of greedy decoding from μ\n(first {sample['reconstruction']['sentences']} "
            "sentences, <unk> allowed)"
        )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    runs_dir, eval_dir, table_path, plot_path = (Path(argument) for argument in sys.argv[1:5])
    runs = load_runs(runs_dir, eval_dir)
    notes = ""
    if table_path.exists() and NOTES_MARKER in table_path.read_text():
        notes = table_path.read_text().split(NOTES_MARKER, 1)[1]
    header = (
        "# The reconstruction / likelihood frontier (PTB valid)\n\n"
        "Written by `results/frontier/reconstruction_frontier.sh` (and `results/frontier/frontier_plot.py`): short runs that "
        "differ "
        "only in free bits and in whether z feeds every decoder step, scored on the first sentences of `ptb.valid.txt` "
        "with the likelihood protocol (`vaelm-evaluate`, seed 0) and with greedy reconstruction from the posterior "
        "mean (`<unk>` allowed; corpus BLEU-4 and exact match). Screens: compare rows with each other, not with the "
        "bundled model's full-length figures.\n\n![BLEU-4 against IW-NLL](frontier.png)\n\n"
    )
    table_path.write_text(header + table(runs) + "\n\n" + NOTES_MARKER + (notes or "\n"), encoding="utf-8")
    plot(runs, plot_path)


if __name__ == "__main__":
    main()
