"""`vaelm-map`: a 2-D map of the posterior means of a corpus sample, as a PNG (matplotlib) or an HTML page (plotly).

One point per sentence; PCA by default (`--projection umap` with umap-learn installed). Points are coloured by
sentence length, or by `--label_column` of a CSV/TSV/JSON-lines `--data_file`. Hovering a point of the HTML map
shows its sentence. Prints one JSON line: the output, the point count and the projection.
"""

import dataclasses
import json
import sys
from dataclasses import dataclass, field

from ..corpora import SPLITS
from ..evaluation.settings import MAP_SENTENCES, PROJECTIONS
from ..runtime.threads import configure_threads
from . import ArgumentParser, build_parser, parse_flags, run_command
from .shared import ModelSourceArguments

NAME = "vaelm-map"


@dataclass
class MapArguments:
    """Flags of `vaelm-map`."""

    output: str = field(metadata={"help": "map.png (static) or map.html (interactive, self-contained)."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Corpus folder (train.txt/valid.txt/test.txt or ptb.*.txt)."}
    )
    split: str = field(default="test", metadata={"help": "Split of --data_dir.", "choices": list(SPLITS)})
    data_file: str | None = field(
        default=None, metadata={"help": "Instead of --data_dir: a .csv/.tsv/.jsonl file with a text column."}
    )
    text_column: str = field(default="text", metadata={"help": "Sentence column of --data_file."})
    label_column: str | None = field(
        default=None, metadata={"help": "Column of --data_file to colour by (default: length)."}
    )
    max_sentences: int = field(default=MAP_SENTENCES, metadata={"help": "Sentences on the map (the first N)."})
    projection: str = field(
        default=PROJECTIONS[0],
        metadata={"help": "2-D projection (umap needs umap-learn).", "choices": list(PROJECTIONS)},
    )
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


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-map`'s flags."""
    return build_parser((ModelSourceArguments, MapArguments), prog=NAME, description=__doc__)


def main(argv: list[str]) -> int:
    """
    `vaelm-map` itself: parse the flags, set up threads, draw the map, print its summary as one JSON line.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    model_args, args = parse_flags(make_parser(), argv)
    configure_threads(model_args.num_threads)
    from ..apps.map import draw_map  # here: --help needs no torch

    print(json.dumps(draw_map(model_args.model, device=model_args.device, **dataclasses.asdict(args))))
    return 0


def entry_point() -> None:
    sys.exit(run_command(NAME, main))


if __name__ == "__main__":
    entry_point()
