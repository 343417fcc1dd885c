"""`vaelm-map`: a 2-D map of the posterior means of a corpus sample, as a PNG (matplotlib) or an HTML page (plotly).

One point per sentence; PCA by default (`--projection umap` with umap-learn installed). Points are coloured by
sentence length, or by `--label_column` of a CSV/TSV/JSON-lines `--data_file`. Hovering a point of the HTML map
shows its sentence. Prints one JSON line: the output, the point count and the projection.
"""

import json
import sys
from dataclasses import dataclass, field

from . import run_command
from .sample import ModelArguments

NAME = "vaelm-map"


@dataclass
class MapArguments:
    """Flags of `vaelm-map`."""

    output: str = field(metadata={"help": "map.png (static) or map.html (interactive, self-contained)."})
    data_dir: str | None = field(default=None, metadata={"help": "Corpus folder (train.txt/valid.txt/test.txt or ptb.*.txt)."})
    split: str = field(default="test", metadata={"help": "Split of --data_dir.", "choices": ["train", "valid", "test"]})
    data_file: str | None = field(default=None, metadata={"help": "Instead of --data_dir: a .csv/.tsv/.jsonl file with a text column."})
    text_column: str = field(default="text", metadata={"help": "Sentence column of --data_file."})
    label_column: str | None = field(default=None, metadata={"help": "Column of --data_file to colour by (default: length)."})
    max_sentences: int = field(default=500, metadata={"help": "Sentences on the map (the first N)."})
    projection: str = field(default="pca", metadata={"help": "2-D projection (umap needs umap-learn).", "choices": ["pca", "umap"]})
    title: str | None = field(default=None, metadata={"help": "Title of the map."})

    def __post_init__(self):
        if (self.data_dir is None) == (self.data_file is None):
            raise ValueError("Give one of --data_dir (a corpus folder) or --data_file (a .csv/.tsv/.jsonl file).")
        if self.label_column and not self.data_file:
            raise ValueError("--label_column needs --data_file: plain-text corpora have no label column.")
        if self.max_sentences < 2:
            raise ValueError(f"--max_sentences must be at least 2, got {self.max_sentences}.")
        if not self.output.lower().endswith((".png", ".html", ".htm")):
            raise ValueError(f"--output must end in .png or .html, got {self.output!r}.")


def main(argv: list[str]) -> int:
    from transformers import HfArgumentParser
    from transformers.utils import logging as hf_logging

    from ..generation import SentenceVAE
    from ..latent_map import build_latent_map, read_labelled, read_split, save_map

    model_args, args = HfArgumentParser((ModelArguments, MapArguments), prog=NAME, description=__doc__).parse_args_into_dataclasses(
        args=argv, look_for_args_file=False
    )
    if args.output.lower().endswith((".html", ".htm")):
        from ..latent_map import require_plotly

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
    print(json.dumps(summary))
    return 0


def entry_point() -> None:
    sys.exit(run_command(NAME, main))


if __name__ == "__main__":
    entry_point()
