"""`vaelm-demo`: serve the web demo (Gradio) of a model, or export it as a Hugging Face Space.

Five tabs: Sample, Reconstruct, Interpolate, Impute and Latent map (see `vaelm.apps.demo`). The bundled PTB model is used
when `--model` is omitted. `--export DIR` writes `app.py` + `requirements.txt` into DIR (copying a local model there
first) instead of serving: the folder then deploys unchanged as a Space. Needs `pip install "vaelm[demo]"`.
"""

import sys
from dataclasses import dataclass, field

from ..corpora import SPLITS
from ..evaluation.settings import DEMO_MAP_SENTENCES, PROJECTIONS
from ..runtime.threads import configure_threads
from . import ArgumentParser, build_parser, parse_flags, run_command
from .shared import ModelSourceArguments

NAME = "vaelm-demo"


@dataclass
class DemoArguments:
    """Flags of `vaelm-demo`."""

    host: str = field(default="127.0.0.1", metadata={"help": "Address to serve on (0.0.0.0: every interface)."})
    port: int | None = field(default=None, metadata={"help": "Port (default: 7860, or the next free one)."})
    share: bool = field(default=False, metadata={"help": "Also open a temporary public gradio.live link."})
    export: str | None = field(
        default=None, metadata={"help": "Write app.py + requirements.txt into this model folder (a Space) and exit."}
    )
    requirement: str | None = field(
        default=None, metadata={"help": "With --export: how the Space installs vaelm (default vaelm[demo]==VERSION)."}
    )
    map_data: str | None = field(
        default=None, metadata={"help": "Corpus folder whose sentences fill the latent map (default: prior samples)."}
    )
    map_split: str = field(default="test", metadata={"help": "Split of --map_data.", "choices": list(SPLITS)})
    map_sentences: int = field(default=DEMO_MAP_SENTENCES, metadata={"help": "Points on the latent map."})
    projection: str = field(
        default=PROJECTIONS[0],
        metadata={"help": "2-D projection of the map (umap needs umap-learn).", "choices": list(PROJECTIONS)},
    )

    def __post_init__(self):
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"--port must be between 1 and 65535, got {self.port}.")
        if self.map_sentences < 2:
            raise ValueError(f"--map_sentences must be at least 2, got {self.map_sentences}.")


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-demo`'s flags."""
    return build_parser((ModelSourceArguments, DemoArguments), prog=NAME, description=__doc__)


def main(argv: list[str]) -> int:
    """
    `vaelm-demo` itself: parse the flags, set up threads, then export the Space files or serve the app.

    Args:
        argv (`list[str]`): the command-line arguments (without the program name).
    """
    model_args, args = parse_flags(make_parser(), argv)
    configure_threads(model_args.num_threads)
    from ..apps.demo import build_demo, export_space, require_gradio, serve  # here: --help needs no torch

    if args.export:
        for path in export_space(
            model_args.model, args.export, requirement=args.requirement, map_sentences=args.map_sentences
        ):
            print(f"wrote {path}")
        print(
            f"{args.export} deploys as a Space: see the docs, 'Demo and Space' (hf upload ORG/NAME {args.export} . --repo-type space)."
        )
        return 0
    require_gradio()
    app = build_demo(
        model_args.model,
        map_data=args.map_data,
        map_split=args.map_split,
        map_sentences=args.map_sentences,
        projection=args.projection,
        device=model_args.device,
    )
    serve(app, host=args.host, port=args.port, share=args.share)
    return 0


def entry_point() -> None:
    sys.exit(run_command(NAME, main))


if __name__ == "__main__":
    entry_point()
