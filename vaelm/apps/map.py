"""The job of `vaelm-map`: posterior means of a corpus sample in 2-D, saved as a PNG or an interactive HTML page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from transformers.utils import logging as hf_logging

from ..generation.sentence_vae import SentenceVAE
from ..evaluation.latent_map import build_latent_map, read_labelled, read_split, require_plotly, save_map

if TYPE_CHECKING:  # the argument dataclasses belong to the command, which calls this job
    from ..cli.map import MapArguments
    from ..cli.shared import ModelSourceArguments


def draw_map(model_args: ModelSourceArguments, args: MapArguments) -> dict:
    """
    Draw the latent map that `vaelm-map` asks for.

    Args:
        model_args ([`~vaelm.cli.shared.ModelSourceArguments`]): the model and device.
        args ([`~vaelm.cli.map.MapArguments`]): the corpus, the output file and the projection.

    Returns:
        `dict`: the output path, the point count, the projection, what the colours mean, and the explained
        variance of a PCA projection.
    """
    if args.output.lower().endswith((".html", ".htm")):
        require_plotly()  # fail before the model loads
    if args.data_file:
        sentences, labels = read_labelled(args.data_file, args.text_column, args.label_column, args.max_sentences)
    else:
        sentences, labels = read_split(args.data_dir, args.split, args.max_sentences), None
    hf_logging.disable_progress_bar()
    vae = SentenceVAE.from_pretrained(model_args.model, device=model_args.device)
    latent_map = build_latent_map(vae, sentences, labels=labels, label_name=args.label_column or "label", projection=args.projection)
    path = save_map(latent_map, args.output, title=args.title)
    summary = {"output": str(path), "points": len(latent_map), "projection": latent_map.projection.method,
               "color_by": args.label_column or "length"}
    if latent_map.projection.explained:
        summary["explained_variance"] = [round(share, 4) for share in latent_map.projection.explained]
    return summary


__all__ = ["draw_map"]
