"""How latent codes become words: the decoding settings shared by `SentenceVAE`, the commands, both pipelines and the
demo (one home for their defaults, choices and help). Imports no torch, so that `--help` stays fast."""

import re
from dataclasses import dataclass, field

STRATEGIES = ("greedy", "sample", "beam")
INTERPOLATIONS = ("linear", "slerp")  # the first is the default
# Points strictly between the two ends of a homotopy, by default (SentenceVAE.homotopy, vaelm-homotopy, the demo; the
# sentence-vae pipeline, which cannot import vaelm, has an equal default that a test compares).
HOMOTOPY_STEPS = 5
# Optimisation steps that fit q(z) to the observed words of a sentence to impute, by default.
IMPUTE_STEPS = 50
# `___`, `_` or `<mask>` marks the missing end of a sentence to impute.
MASK_PATTERN = re.compile(r"<mask>|_+", flags=re.IGNORECASE)
# Segmentations whose words are written without spaces between them.
UNSPACED_SEGMENTATIONS = ("jieba", "char")


@dataclass
class DecodingConfig:
    """
    How latent codes become words.

    Args:
        strategy (`str`, *optional*, defaults to `"greedy"`): `"greedy"` (the most likely word at each step),
            `"sample"` (ancestral sampling, optionally with temperature, top-k and top-p) or `"beam"` (beam search).
        temperature (`float`, *optional*, defaults to 1.0): softmax temperature of `"sample"`.
        top_k (`int`, *optional*): `"sample"` draws among the k most likely words only.
        top_p (`float`, *optional*): `"sample"` draws from the smallest set of words whose probability reaches p
            (nucleus sampling).
        num_beams (`int`, *optional*, defaults to 4): beams of `"beam"`.
        length_penalty (`float`, *optional*, defaults to 1.0): `"beam"` ranks finished sentences by
            log p / length ** length_penalty (0 ranks by log p alone).
        max_new_tokens (`int`, *optional*): the longest output in tokens, `</s>` included; defaults to the
            model's `max_sentence_length + 1`.
        suppress_unk (`bool`, *optional*, defaults to `True`): never emit `<unk>` (its probability is set to zero at
            every step), so that outputs read as text; scores and evaluation are unaffected. `False` gives the
            model's raw choices, `<unk>` included.
        no_repeat_ngram_size (`int`, *optional*, defaults to 0): never repeat an n-gram of this size within a
            sentence (transformers' logits processor; 0 switches it off). Breaks the loops that greedy and beam
            decoding of small LSTMs fall into ("i am sure i am sure …").
    """

    # Each field's metadata holds the help of its command-line flag (vaelm-sample, vaelm-homotopy derive them).
    strategy: str = field(default="greedy", metadata={"help": "Decoding strategy.", "choices": list(STRATEGIES)})
    temperature: float = field(default=1.0, metadata={"help": "Softmax temperature (--strategy sample)."})
    top_k: int | None = field(
        default=None, metadata={"help": "Sample among the k most likely words (--strategy sample)."}
    )
    top_p: float | None = field(default=None, metadata={"help": "Nucleus sampling threshold (--strategy sample)."})
    num_beams: int = field(default=4, metadata={"help": "Beams (--strategy beam)."})
    length_penalty: float = field(default=1.0, metadata={"help": "Beam score = log p / length ** length_penalty."})
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Longest output, </s> included (default: the model's max_sentence_length + 1)."}
    )
    suppress_unk: bool = field(
        default=True,
        metadata={
            "help": "Never output <unk> (decoding only; scores are unaffected). --no_suppress_unk prints the "
            "model's raw choices, <unk> included."
        },
    )
    no_repeat_ngram_size: int = field(
        default=0, metadata={"help": "Never repeat an n-gram of this size in a sentence (0: off)."}
    )

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown decoding strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}.")
        if not self.temperature > 0:
            raise ValueError(f"The temperature must be positive, got {self.temperature}.")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k}.")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}.")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be a positive integer, got {self.num_beams}.")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}.")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens}.")
        if self.strategy != "sample" and (self.top_k is not None or self.top_p is not None or self.temperature != 1.0):
            raise ValueError(
                f"temperature, top_k and top_p shape sampling; they do nothing with strategy {self.strategy!r}. "
                "Use strategy 'sample' (--strategy sample)."
            )

    def generate_kwargs(self, unk_token_id: int | None = None) -> dict:
        """
        Keyword arguments of `model.generate` for this strategy and its constraints (lengths excluded).

        Args:
            unk_token_id (`int`, *optional*): the model's `<unk>` id, which `suppress_unk` suppresses.
        """
        if self.strategy == "greedy":
            kwargs = {"do_sample": False, "num_beams": 1}
        elif self.strategy == "sample":
            # transformers' default top_k of 50 would silently truncate "pure" sampling; 0 switches it off.
            kwargs = {
                "do_sample": True,
                "num_beams": 1,
                "temperature": self.temperature,
                "top_k": self.top_k or 0,
                "top_p": 1.0 if self.top_p is None else self.top_p,
            }
        else:
            kwargs = {"do_sample": False, "num_beams": self.num_beams, "length_penalty": self.length_penalty}
        if self.suppress_unk:
            if unk_token_id is None:
                raise ValueError("suppress_unk needs the model's unk_token_id.")
            kwargs["suppress_tokens"] = [unk_token_id]
        else:  # explicit: a saved generation_config suppresses <unk> by default
            kwargs["suppress_tokens"] = None
        if self.no_repeat_ngram_size:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        return kwargs


__all__ = [
    "HOMOTOPY_STEPS",
    "IMPUTE_STEPS",
    "INTERPOLATIONS",
    "MASK_PATTERN",
    "STRATEGIES",
    "UNSPACED_SEGMENTATIONS",
    "DecodingConfig",
]
