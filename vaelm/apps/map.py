"""The job of `vaelm-map`: posterior means of a corpus sample in 2-D, saved as a PNG or an interactive HTML page."""

from pathlib import Path

from transformers.utils import logging as hf_logging

from ..evaluation.latent_map import build_latent_map, read_labelled, read_split, require_plotly, save_map
from ..evaluation.settings import MAP_SENTENCES, PROJECTIONS
from ..generation.sentence_vae import SentenceVAE


def draw_map(
    model: str,
    output: str | Path,
    *,
    device: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    data_file: str | None = None,
    text_column: str = "text",
    label_column: str | None = None,
    max_sentences: int = MAP_SENTENCES,
    projection: str = PROJECTIONS[0],
    title: str | None = None,
) -> dict:
    """
    Draw the latent map of `model` for the first `max_sentences` sentences of a corpus split or a labelled file.

    Args:
        model (`str`): a model folder or Hub id.
        output (`str` or `Path`): `.png` (static) or `.html` (interactive).
        device (`str`, *optional*): where the model runs (default: a GPU when there is one).
        data_dir (`str`, *optional*): a corpus folder; its `split` is drawn.
        split (`str`, *optional*, defaults to `"test"`): the split of `data_dir`.
        data_file (`str`, *optional*): instead of `data_dir`, a `.csv`/`.tsv`/`.jsonl` file.
        text_column (`str`, *optional*, defaults to `"text"`): the sentence column of `data_file`.
        label_column (`str`, *optional*): the column of `data_file` that colours the points (default: length).
        max_sentences (`int`, *optional*, defaults to 500): sentences on the map.
        projection (`str`, *optional*, defaults to `"pca"`): one of `PROJECTIONS`.
        title (`str`, *optional*): the map's title.

    Returns:
        `dict`: the output path, the point count, the projection, what the colours mean, and the explained
        variance of a PCA projection.
    """
    if str(output).lower().endswith((".html", ".htm")):
        require_plotly()  # fail before the model loads
    if data_file:
        sentences, labels = read_labelled(data_file, text_column, label_column, max_sentences)
    else:
        sentences, labels = read_split(data_dir, split, max_sentences), None
    hf_logging.disable_progress_bar()
    vae = SentenceVAE.from_pretrained(model, device=device)
    latent_map = build_latent_map(
        vae, sentences, labels=labels, label_name=label_column or "label", projection=projection
    )
    path = save_map(latent_map, output, title=title)
    summary = {
        "output": str(path),
        "points": len(latent_map),
        "projection": latent_map.projection.method,
        "color_by": label_column or "length",
    }
    if latent_map.projection.explained:
        summary["explained_variance"] = [round(share, 4) for share in latent_map.projection.explained]
    return summary


__all__ = ["draw_map"]
