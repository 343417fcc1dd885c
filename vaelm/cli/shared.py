"""Command pieces shared by `vaelm-sample` and `vaelm-homotopy`: the model and decoding flags, the help layout,
loading the model, and reading queries from standard input."""

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from transformers import set_seed
from transformers.utils import logging as hf_logging

from ..generation.sentence_vae import DecodingConfig, SentenceVAE
from ..pretrained import DEFAULT_MODEL
from ..runtime.threads import configure_threads, num_threads_field


@dataclass
class ModelSourceArguments:
    """Which model to load, and where to run it."""

    model: str = field(
        default=DEFAULT_MODEL, metadata={"help": "Model folder written by vaelm-train, or a Hub id (default: the bundled PTB model)."}
    )
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, … (default: a GPU when there is one)."})
    num_threads: int | None = num_threads_field()


@dataclass
class DecodingArguments:
    """How latent codes become words, randomness and output format (shared with vaelm-homotopy)."""

    strategy: str = field(default="greedy", metadata={"help": "Decoding strategy.", "choices": ["greedy", "sample", "beam"]})
    temperature: float = field(default=1.0, metadata={"help": "Softmax temperature (--strategy sample)."})
    top_k: int | None = field(default=None, metadata={"help": "Sample among the k most likely words (--strategy sample)."})
    top_p: float | None = field(default=None, metadata={"help": "Nucleus sampling threshold (--strategy sample)."})
    num_beams: int = field(default=4, metadata={"help": "Beams (--strategy beam)."})
    length_penalty: float = field(default=1.0, metadata={"help": "Beam score = log p / length ** length_penalty."})
    max_new_tokens: int | None = field(default=None, metadata={"help": "Longest output, </s> included (default: the model's max_sentence_length + 1)."})
    no_unk: bool = field(
        default=True,
        metadata={"help": "Never output <unk> (the default; decoding only, scores are unaffected). --no_unk false "
                          "prints the model's raw choices, <unk> included."},
    )
    no_repeat_ngram_size: int = field(default=0, metadata={"help": "Never repeat an n-gram of this size in a sentence (0: off)."})
    seed: int | None = field(default=None, metadata={"help": "Random seed: the same seed gives the same output."})
    json: bool = field(default=False, metadata={"help": "Print one JSON object per input instead of plain lines."})

    def decoding_config(self):
        """The validated [`~vaelm.generation.DecodingConfig`]."""
        return DecodingConfig(
            strategy=self.strategy, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
            num_beams=self.num_beams, length_penalty=self.length_penalty, max_new_tokens=self.max_new_tokens,
            no_unk=self.no_unk, no_repeat_ngram_size=self.no_repeat_ngram_size,
        )


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's lines and lists as written, and shows each flag's default."""


def load_sentence_vae(model_args: ModelSourceArguments, seed: int | None = None):
    """
    The [`~vaelm.generation.SentenceVAE`] of `--model`, without progress bars, with every generator seeded.

    Args:
        model_args ([`ModelSourceArguments`]): `--model` and `--device`.
        seed (`int`, *optional*): `--seed`; the same seed gives the same output.
    """
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


__all__ = ["DecodingArguments", "HelpFormatter", "ModelSourceArguments", "isatty", "load_sentence_vae", "read_queries"]
