"""Latent maps: the posterior means of a sample of sentences, projected to 2-D, one point per sentence.

Researchers look at where sentences sit in a VAE's latent space with such maps. This module builds one from a
[`~vaelm.generation.sentence_vae.SentenceVAE`] (no second encoder: `mu` comes from the model's own `encode`) and draws it:

- [`build_latent_map`]: sentences (and optional labels) → posterior means → 2-D coordinates, by PCA (exact, fast,
  affine, so a straight path in latent space stays straight on the map) or UMAP when `umap-learn` is installed;
- [`save_png`]: a static scatter plot (matplotlib), coloured by sentence length or by label;
- [`plotly_figure`] / [`save_html`]: the same map, interactive (plotly): hovering a point shows its sentence; the
  demo adds a sentence of the user's and a homotopy path with [`LatentMap.project`].

`vaelm-map` is the command; the model card of a training run shows `latent_map.png`, the validation split drawn
by [`draw_training_map`].
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch

from ..corpora import SPLITS
from ..corpora.sources import read_sentences, split_files
from ..generation.sentence_vae import SentenceVAE
from .settings import MAP_SENTENCES, PROJECTIONS

# Where the HTML map keeps its points as JSON (for scripts and tests), next to the plotly figure.
HTML_DATA_ID = "vaelm-latent-map-data"
DEMO_INSTALL_HINT = 'pip install "vaelm[demo]"'


def _require(module: str, purpose: str):
    """Import an optional dependency, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = {"umap": "umap-learn"}.get(module, module.split(".")[0])
        hint = f"pip install {package}" if module == "umap" else DEMO_INSTALL_HINT
        raise ImportError(
            f"{purpose} needs the {package} package, which is not installed. Install it with: {hint}"
        ) from None


def require_plotly():
    """`plotly.graph_objects`, or an `ImportError` that says how to install it."""
    return _require("plotly.graph_objects", "The interactive latent map")


# ------------------------------------------------------------------------------------------------ projection
@dataclass
class Projection:
    """
    A fitted map from latent codes to the plane.

    Args:
        method (`str`): `"pca"` or `"umap"`.
        mean (`np.ndarray`, *optional*): PCA's centre, shape `(latent_size,)`.
        components (`np.ndarray`, *optional*): PCA's two axes, shape `(2, latent_size)`.
        explained (`list[float]`): PCA's share of the variance along each axis.
        reducer (`Any`, *optional*): the fitted `umap.UMAP`.
    """

    method: str
    mean: np.ndarray | None = None
    components: np.ndarray | None = None
    explained: list[float] = field(default_factory=list)
    reducer: Any = None

    def __call__(self, codes: np.ndarray | torch.Tensor) -> np.ndarray:
        """Coordinates of latent codes of shape `(n, latent_size)`, shape `(n, 2)`."""
        codes = np.asarray(torch.as_tensor(codes, dtype=torch.float64).cpu())
        if self.method == "umap":
            return np.asarray(self.reducer.transform(codes), dtype=np.float64)
        return (codes - self.mean) @ self.components.T

    def axis_titles(self) -> tuple[str, str]:
        if self.method == "umap":
            return "UMAP 1", "UMAP 2"
        return tuple(f"PC{i + 1} ({share:.0%} of variance)" for i, share in enumerate(self.explained))


def fit_projection(codes: np.ndarray | torch.Tensor, method: str = "pca", seed: int = 0) -> Projection:
    """
    Fit a 2-D projection of latent codes.

    Args:
        codes (`np.ndarray` or `torch.Tensor` of shape `(n, latent_size)`): the codes (posterior means).
        method (`str`, *optional*, defaults to `"pca"`): `"pca"` or `"umap"` (needs `umap-learn`).
        seed (`int`, *optional*, defaults to 0): UMAP's random state.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"Unknown projection {method!r}: choose one of {', '.join(PROJECTIONS)}.")
    codes = np.asarray(torch.as_tensor(codes, dtype=torch.float64).cpu())
    if codes.ndim != 2 or codes.shape[0] < 2:
        raise ValueError(f"A latent map needs at least 2 sentences, got {codes.shape[0] if codes.ndim else 0}.")
    if method == "umap":
        umap = _require("umap", "--projection umap")
        with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": reproducibility is the point
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, codes.shape[0] - 1), random_state=seed).fit(codes)
        return Projection("umap", reducer=reducer)
    mean = codes.mean(axis=0)
    _, singular, axes = np.linalg.svd(codes - mean, full_matrices=False)
    components = np.zeros((2, codes.shape[1]))
    components[: min(2, len(axes))] = axes[:2]  # a 1-D latent space gets a flat second axis
    variance = singular**2
    total = variance.sum() or 1.0
    explained = [float(variance[i] / total) if i < len(variance) else 0.0 for i in range(2)]
    return Projection("pca", mean=mean, components=components, explained=explained)


# ------------------------------------------------------------------------------------------------ the map
@dataclass
class LatentMap:
    """
    Sentences placed on the plane by their posterior means.

    Args:
        sentences (`list[str]`): one per point, as given.
        means (`torch.Tensor` of shape `(n, latent_size)`): posterior means.
        coordinates (`np.ndarray` of shape `(n, 2)`): the projected means.
        projection ([`Projection`]): the fitted projection (places further codes on the same map).
        lengths (`list[int]`): words per sentence (after segmentation, as the model reads it).
        labels (`list[str]`, *optional*): a label per sentence; the map is coloured by it when given.
        label_name (`str`, *optional*): what the labels are (legend title).
    """

    sentences: list[str]
    means: torch.Tensor
    coordinates: np.ndarray
    projection: Projection
    lengths: list[int]
    labels: list[str] | None = None
    label_name: str = "label"

    def __len__(self) -> int:
        return len(self.sentences)

    def project(self, codes: torch.Tensor | Sequence[Sequence[float]]) -> np.ndarray:
        """Place latent codes of shape `(n, latent_size)` on this map, shape `(n, 2)`."""
        return self.projection(torch.as_tensor(codes))

    def points(self) -> list[dict]:
        """One record per point: `{"x", "y", "text", "length"}` (and `"label"`)."""
        records = []
        for index, (sentence, (x, y), length) in enumerate(
            zip(self.sentences, self.coordinates.tolist(), self.lengths)
        ):
            record = {"x": x, "y": y, "text": sentence, "length": length}
            if self.labels is not None:
                record["label"] = self.labels[index]
            records.append(record)
        return records


@torch.no_grad()
def posterior_means(vae, sentences: Sequence[str], batch_size: int = 256) -> tuple[torch.Tensor, list[int]]:
    """
    Posterior means of sentences, in batches, and their lengths in words.

    Args:
        vae ([`~vaelm.generation.sentence_vae.SentenceVAE`]): the model.
        sentences (`Sequence[str]`): raw sentences (segmented by the model's tokenizer path for Chinese).
        batch_size (`int`, *optional*, defaults to 256): sentences encoded at once.

    Returns:
        `(means, lengths)`: `torch.Tensor` of shape `(n, latent_size)` (float32, on the CPU) and `list[int]`.
    """
    _check_latent(vae)
    means, lengths = [], []
    for start in range(0, len(sentences), batch_size):
        batch = vae.tokenize(sentences[start : start + batch_size])
        mu, _ = vae.model.encode(**batch)
        means.append(mu.float().cpu())
        lengths += (batch["attention_mask"].sum(1) - 2).tolist()  # <s> and </s> are not words
    return torch.cat(means), lengths


def _check_latent(vae) -> None:
    if not vae.config.has_latent:
        raise ValueError(
            "This model has no latent space (it was trained with --latent_size 0), so there is no map to draw."
        )


def build_latent_map(
    vae,
    sentences: Sequence[str],
    labels: Sequence[Any] | None = None,
    label_name: str = "label",
    projection: str = PROJECTIONS[0],
    seed: int = 0,
) -> LatentMap:
    """
    Encode sentences and project their posterior means to 2-D.

    Args:
        vae ([`~vaelm.generation.sentence_vae.SentenceVAE`]): the model.
        sentences (`Sequence[str]`): at least two non-empty sentences.
        labels (`Sequence`, *optional*): one label per sentence, to colour by (default: colour by length).
        label_name (`str`, *optional*, defaults to `"label"`): the legend title.
        projection (`str`, *optional*, defaults to `"pca"`): `"pca"` or `"umap"`.
        seed (`int`, *optional*, defaults to 0): UMAP's random state.

    Raises:
        `ValueError`: fewer than two sentences, an empty sentence, labels that do not match the sentences, or a
        model without a latent space.
    """
    sentences = list(sentences)
    if labels is not None and len(labels) != len(sentences):
        raise ValueError(f"Got {len(labels)} labels for {len(sentences)} sentences: give one label per sentence.")
    means, lengths = posterior_means(vae, sentences)
    fitted = fit_projection(means, projection, seed=seed)
    return LatentMap(
        sentences=sentences,
        means=means,
        coordinates=fitted(means),
        projection=fitted,
        lengths=lengths,
        labels=None if labels is None else [str(label) for label in labels],
        label_name=label_name,
    )


# ------------------------------------------------------------------------------------------------ reading sentences
def read_split(data_dir: str | Path, split: str = "test", max_sentences: int | None = MAP_SENTENCES) -> list[str]:
    """
    The first `max_sentences` sentences of a corpus folder's split (`test.txt` or `ptb.test.txt`, …).

    Raises:
        `DataError`: the folder or split is missing, or a line is not UTF-8 (naming the file and line).
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}: choose one of {', '.join(SPLITS)}.")
    sentences = read_sentences(split_files(data_dir, (split,))[split])
    return sentences[:max_sentences] if max_sentences else sentences


def read_labelled(
    data_file: str | Path,
    text_column: str = "text",
    label_column: str | None = None,
    max_sentences: int | None = MAP_SENTENCES,
) -> tuple[list[str], list[str] | None]:
    """
    Sentences (and labels) from a CSV, TSV or JSON-lines file, read with `datasets`.

    Args:
        data_file (`str` or `Path`): a `.csv`, `.tsv`, `.json` or `.jsonl` file.
        text_column (`str`, *optional*, defaults to `"text"`): the column holding sentences.
        label_column (`str`, *optional*): the column to colour by.
        max_sentences (`int`, *optional*): read the first N rows only.
    """
    path = Path(data_file)
    kinds = {".csv": ("csv", {}), ".tsv": ("csv", {"delimiter": "\t"}), ".json": ("json", {}), ".jsonl": ("json", {})}
    if path.suffix.lower() not in kinds:
        raise ValueError(
            f"{path}: --data_file must be a .csv, .tsv, .json or .jsonl file with a {text_column!r} column."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    builder, options = kinds[path.suffix.lower()]
    table = datasets.load_dataset(builder, data_files=str(path), split="train", **options)
    for column in (text_column, label_column):
        if column is not None and column not in table.column_names:
            raise ValueError(
                f"{path} has no column {column!r}; its columns are {', '.join(table.column_names)}. "
                "Name the right ones with --text_column / --label_column."
            )
    if max_sentences:
        table = table.select(range(min(max_sentences, len(table))))
    sentences = [str(text) if text is not None else "" for text in table[text_column]]
    for row, sentence in enumerate(sentences, start=2 if builder == "csv" else 1):
        if not sentence.strip():
            raise ValueError(f"{path}, line {row}: the {text_column!r} column is empty. Remove the row or fill it in.")
    labels = [str(label) for label in table[label_column]] if label_column else None
    return sentences, labels


# ------------------------------------------------------------------------------------------------ drawing
def _title(latent_map: LatentMap) -> str:
    return f"Posterior means of {len(latent_map)} sentences ({latent_map.projection.method.upper()})"


def save_png(latent_map: LatentMap, path: str | Path, title: str | None = None) -> Path:
    """
    Draw the map as a PNG (matplotlib), coloured by label when there are labels, else by length in words.

    The PNG's `Description` text chunk holds `{"points": n, "projection": ..., "color_by": ...}`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x, y = latent_map.coordinates[:, 0], latent_map.coordinates[:, 1]
    figure, axes = plt.subplots(figsize=(7, 5.5))
    if latent_map.labels is not None:
        names = sorted(set(latent_map.labels))
        colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
        for index, name in enumerate(names):
            chosen = np.array([label == name for label in latent_map.labels])
            axes.scatter(x[chosen], y[chosen], s=10, alpha=0.75, color=colours(index % colours.N), label=name)
        axes.legend(title=latent_map.label_name, fontsize="small", markerscale=2, loc="best")
        color_by = latent_map.label_name
    else:
        scatter = axes.scatter(x, y, s=10, alpha=0.75, c=latent_map.lengths, cmap="viridis")
        figure.colorbar(scatter, ax=axes, label="sentence length (words)")
        color_by = "length"
    x_title, y_title = latent_map.projection.axis_titles()
    axes.set(title=title or _title(latent_map), xlabel=x_title, ylabel=y_title)
    figure.tight_layout()
    description = {"points": len(latent_map), "projection": latent_map.projection.method, "color_by": color_by}
    figure.savefig(path, dpi=110, metadata={"Description": json.dumps(description)})
    plt.close(figure)
    return path


def plotly_figure(latent_map: LatentMap, extra_traces: Sequence[dict] = (), title: str | None = None):
    """
    The map as an interactive plotly figure: one marker per sentence, hovering shows it.

    Args:
        latent_map ([`LatentMap`]): the map.
        extra_traces (`Sequence[dict]`): more points to draw on it, each `{"name", "codes", "texts", "mode"}`
            (`codes` of shape `(n, latent_size)`, projected here; `mode` a plotly mode such as `"lines+markers"`).
        title (`str`, *optional*): the figure title.
    """
    go = require_plotly()
    figure = go.Figure()
    xy = latent_map.coordinates.tolist()
    hover = "%{text}<extra></extra>"
    if latent_map.labels is not None:
        for name in sorted(set(latent_map.labels)):
            chosen = [i for i, label in enumerate(latent_map.labels) if label == name]
            figure.add_trace(
                go.Scatter(
                    x=[xy[i][0] for i in chosen],
                    y=[xy[i][1] for i in chosen],
                    text=[latent_map.sentences[i] for i in chosen],
                    mode="markers",
                    name=name,
                    hovertemplate=hover,
                    marker={"size": 6, "opacity": 0.75},
                )
            )
    else:
        figure.add_trace(
            go.Scatter(
                x=[p[0] for p in xy],
                y=[p[1] for p in xy],
                text=list(latent_map.sentences),
                mode="markers",
                name="sentences",
                hovertemplate=hover,
                marker={
                    "size": 6,
                    "opacity": 0.75,
                    "color": list(latent_map.lengths),
                    "colorscale": "Viridis",
                    "colorbar": {"title": {"text": "words"}},
                },
            )
        )
    for trace in extra_traces:
        placed = latent_map.project(trace["codes"]).tolist()
        figure.add_trace(
            go.Scatter(
                x=[p[0] for p in placed],
                y=[p[1] for p in placed],
                text=list(trace["texts"]),
                name=trace["name"],
                mode=trace.get("mode", "markers"),
                hovertemplate=f"{trace['name']}: %{{text}}<extra></extra>",
                marker={
                    "size": trace.get("size", 12),
                    "symbol": trace.get("symbol", "star"),
                    "color": trace.get("color", "crimson"),
                },
                line={"color": trace.get("color", "crimson"), "width": 2},
            )
        )
    x_title, y_title = latent_map.projection.axis_titles()
    figure.update_layout(
        title={"text": title or _title(latent_map)},
        xaxis_title=x_title,
        yaxis_title=y_title,
        hovermode="closest",
        template="plotly_white",
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def save_html(latent_map: LatentMap, path: str | Path, title: str | None = None) -> Path:
    """
    Write the interactive map as one self-contained HTML file (plotly.js inlined: it opens offline).

    The points are also embedded as JSON in `<script type="application/json" id="vaelm-latent-map-data">`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = plotly_figure(latent_map, title=title).to_html(include_plotlyjs=True, full_html=True)
    data = json.dumps({"projection": latent_map.projection.method, "points": latent_map.points()}, ensure_ascii=False)
    data = data.replace("</", "<\\/")  # a sentence can never close the script element
    block = f'<script type="application/json" id="{HTML_DATA_ID}">{data}</script>\n'
    html = html.replace("</body>", block + "</body>", 1) if "</body>" in html else html + block
    path.write_text(html, encoding="utf-8")
    return path


def save_map(latent_map: LatentMap, path: str | Path, title: str | None = None) -> Path:
    """Write `path` as a PNG or an HTML file, by its extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        return save_png(latent_map, path, title)
    if suffix in (".html", ".htm"):
        return save_html(latent_map, path, title)
    raise ValueError(f"--output must end in .png (a static picture) or .html (an interactive page), got {str(path)!r}.")


def draw_training_map(model, tokenizer, dataset, path: str | Path, max_sentences: int = MAP_SENTENCES) -> Path:
    """
    The latent map of a training run's validation sentences (at most `max_sentences`), for the model card.

    Args:
        model ([`~vaelm.VAELMModel`]): the trained model.
        tokenizer: its tokenizer.
        dataset: rows with `input_ids` (`<s> … </s>`), e.g. the Trainer's `eval_dataset` (a stream is fine).
        path (`str` or `Path`): where to write the PNG.
        max_sentences (`int`, *optional*, defaults to 500): sentences drawn.
    """
    vae = SentenceVAE(model, tokenizer)
    rows = [list(row["input_ids"]) for row in islice(iter(dataset), max_sentences)]
    sentences = [vae.to_text(row[1:]) for row in rows]
    keep = [i for i, sentence in enumerate(sentences) if sentence.strip()]
    _check_latent(vae)
    pad = vae.config.pad_token_id
    width = max(len(rows[i]) for i in keep) if keep else 0
    input_ids = torch.tensor([rows[i] + [pad] * (width - len(rows[i])) for i in keep], device=vae.device)
    with torch.no_grad():
        was_training = model.training
        model.eval()
        try:
            means = torch.cat(
                [model.encode(chunk, (chunk != pad).long())[0].float().cpu() for chunk in input_ids.split(256)]
            )
        finally:
            model.train(was_training)
    fitted = fit_projection(means)
    latent_map = LatentMap(
        sentences=[sentences[i] for i in keep],
        means=means,
        coordinates=fitted(means),
        projection=fitted,
        lengths=[len(rows[i]) - 2 for i in keep],
    )
    return save_png(latent_map, path, title=f"Validation sentences: {_title(latent_map).lower()}")


__all__ = [
    "LatentMap",
    "Projection",
    "build_latent_map",
    "draw_training_map",
    "fit_projection",
    "plotly_figure",
    "posterior_means",
    "read_labelled",
    "read_split",
    "require_plotly",
    "save_html",
    "save_map",
    "save_png",
]
