"""Command pieces shared by `vaelm-sample`, `vaelm-homotopy`, `vaelm-map` and `vaelm-demo`: the model and decoding
flags, loading the model, and reading queries from standard input.

Nothing here imports torch: `--help` and a mistyped flag are answered before the model and its libraries load.
"""

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from ..generation.decoding import DecodingConfig
from ..pretrained import DEFAULT_MODEL
from ..runtime.threads import configure_threads, num_threads_field


@dataclass
class ModelSourceArguments:
    """Which model to load, and where to run it."""

    model: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "Model folder written by vaelm-train, or a Hub id (default: the bundled PTB model)."},
    )
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, … (default: a GPU when there is one)."})
    num_threads: int | None = num_threads_field()


def _decoding_config(self) -> DecodingConfig:
    """The validated [`~vaelm.generation.decoding.DecodingConfig`] of these flags."""
    return DecodingConfig(**{spec.name: getattr(self, spec.name) for spec in dataclasses.fields(DecodingConfig)})


# How latent codes become words: every field of DecodingConfig (its default, type and help) is a flag, plus the
# randomness and the output format of a command.
DecodingArguments = dataclasses.make_dataclass(
    "DecodingArguments",
    [
        *(
            (spec.name, spec.type, field(default=spec.default, metadata=dict(spec.metadata)))
            for spec in dataclasses.fields(DecodingConfig)
        ),
        (
            "seed",
            int | None,
            field(default=None, metadata={"help": "Random seed: the same seed gives the same output."}),
        ),
        (
            "json",
            bool,
            field(default=False, metadata={"help": "Print one JSON object per input instead of plain lines."}),
        ),
    ],
    namespace={"decoding_config": _decoding_config, "__module__": __name__},
)
DecodingArguments.__doc__ = "How latent codes become words, randomness and output format (derived from DecodingConfig)."


def load_sentence_vae(model_args: ModelSourceArguments, seed: int | None = None):
    """
    The [`~vaelm.generation.sentence_vae.SentenceVAE`] of `--model`, without progress bars, with every generator seeded.

    Args:
        model_args ([`ModelSourceArguments`]): `--model` and `--device`.
        seed (`int`, *optional*): `--seed`; the same seed gives the same output.
    """
    # Here, not at the top: --help and a bad flag need none of these (torch).
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    from ..generation.sentence_vae import SentenceVAE

    configure_threads(model_args.num_threads)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    vae = SentenceVAE.from_pretrained(model_args.model, device=model_args.device)
    if seed is not None:
        set_seed(seed)
    return vae


def read_queries(prompts: list[str], stdin: TextIO, stdout: TextIO) -> Iterator[list[str]]:
    """
    Groups of `len(prompts)` lines from `stdin`, until end of input; on a terminal each line is asked for with its
    prompt. A group cut short by end of input is dropped.

    Args:
        prompts (`list[str]`): one prompt per line of a group (`["> "]`, or `["[1]> ", "[2]> ", "NUM > "]`).
        stdin (`TextIO`): where lines come from.
        stdout (`TextIO`): where prompts go.
    """
    interactive = isatty(stdin)
    while True:
        answers = []
        for prompt in prompts:
            if interactive:
                stdout.write(prompt)
                stdout.flush()
            line = stdin.readline()
            if not line:
                if interactive:
                    stdout.write("\n")
                    stdout.flush()
                return
            answers.append(line.rstrip("\r\n"))
        yield answers


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["DecodingArguments", "ModelSourceArguments", "isatty", "load_sentence_vae", "read_queries"]
