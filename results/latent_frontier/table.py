"""The frontier's table and plot from the JSON files beside this script (written by run.sh and vaelm-evaluate).

Each rate's row gives its test figures (K = 500, all 3,761 sentences; the first 1,000 reconstructed) when the test
JSON exists, else its valid ones (K = 50), saying which; the bundled model and our LSTM-LM of the same width are
read from results/. Writes frontier.md (the table between its markers) and frontier.png.

usage: python results/latent_frontier/table.py
"""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
BUNDLED = RESULTS / "ptb-wide-avg45-refit.test.json"
BUNDLED_VALID = RESULTS / "ablation" / "wide-avg45-refit.valid.k50.json"
BUNDLED_RECONSTRUCTION = HERE / "bundled.test.reconstruction.json"  # the same model, token accuracy and rec at μ
LANGUAGE_MODEL = RESULTS / "lm960.test.json"
START, END = "<!-- table -->", "<!-- /table -->"


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def rows() -> list[dict]:
    found = []
    for valid_path in sorted(HERE.glob("kl*.valid.json"), key=lambda p: float(re.findall(r"kl([\d.]+)", p.name)[0])):
        name = valid_path.name.split(".")[0]
        test = load(HERE / f"{name}.test.json")
        figures = test or load(valid_path)
        found.append({**figures, "model": f"ptb-latent, --target_kl {name[2:]}", "split": "test" if test else "valid"})
    bundled_valid = load(BUNDLED_VALID)
    if bundled_valid:
        found.append({**bundled_valid, "model": "bundled (DEFAULT_MODEL)", "split": "valid"})
    bundled = load(BUNDLED)
    if bundled:
        extra = (load(BUNDLED_RECONSTRUCTION) or {}).get("reconstruction", {})
        bundled["reconstruction"] = {**bundled["reconstruction"], **extra}
        found.append({**bundled, "model": "bundled (DEFAULT_MODEL)", "split": "test"})
    language_model = load(LANGUAGE_MODEL)
    if language_model:
        found.append({**language_model, "model": "LSTM-LM, same width as the bundled model", "split": "test"})
    return found


def cell(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(found: list[dict]) -> str:
    lines = [
        "| model | split | IW-NLL | PPL | ELBO | KL | MI | AU | BLEU-4 | exact | token acc. | rec at μ |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in found:
        recon = row.get("reconstruction") or {}
        accuracy = recon.get("token_accuracy")
        lines.append(
            f"| {row['model']} | {row['split']} (K = {row['iw_samples']}) | {row['nll']:.2f} | {row['ppl']:.1f} | "
            f"{row['elbo']:.2f} | {row['kl']:.2f} | {row['mi']:.2f} | {row['au']}/{row['latent_size']} | "
            f"{cell(recon.get('bleu4'))} | {recon.get('exact_matches', '–')} | "
            f"{cell(None if accuracy is None else 100 * accuracy, 1)}{'' if accuracy is None else ' %'} | "
            f"{cell(recon.get('rec_loss_at_mean'))} |"
        )
    return "\n".join(lines)


def plot(found: list[dict], path: Path) -> None:
    points = [row for row in found if row.get("reconstruction")]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for row in points:
        marker = "o" if row["split"] == "test" else "s"
        label = row["model"].replace("ptb-latent, --target_kl ", "R = ") + f" ({row['split']})"
        bleu = row["reconstruction"]["bleu4"]
        axes[0].scatter(row["nll"], bleu, marker=marker)
        axes[0].annotate(label, (row["nll"], bleu), fontsize=8)
        axes[1].scatter(row["kl"], bleu, marker=marker)
        axes[1].annotate(label, (row["kl"], bleu), fontsize=8)
    axes[0].set(xlabel="IW-NLL (nats per sentence)", ylabel="BLEU-4 of greedy reconstruction from μ")
    axes[1].set(xlabel="KL (nats per sentence)", ylabel="BLEU-4")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.margins(x=0.25, y=0.15)  # room for the labels
    figure.suptitle("PTB: likelihood against reconstruction (circles: test, squares: valid)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    found = rows()
    page = HERE / "frontier.md"
    text = page.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    page.write_text(f"{before}{START}\n{table(found)}\n{END}{after}")
    plot(found, HERE / "frontier.png")
    print(table(found))


if __name__ == "__main__":
    main()
