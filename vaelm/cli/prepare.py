"""`vaelm-prepare`: the sentences `vaelm-train` would train on, written out once, with a report of what was dropped.

`vaelm-prepare --data_dir DIR --sentence_split --output_dir OUT` runs vaelm-train's data preparation (the same
code, files, cleaning and 90/5/5 split) and writes `OUT/train.txt`, `OUT/valid.txt`, `OUT/test.txt` (one sentence
per line: `vaelm-train --data_dir OUT` trains on them) and `OUT/report.json` (files, books, paragraphs, sentences,
words in and kept, and the words dropped by reason with examples). Prints the report's two-line summary.
"""

import sys
from dataclasses import dataclass, field

from ..runtime.threads import configure_threads, num_threads_field
from . import ArgumentParser, build_parser, parse_flags, run_command

NAME = "vaelm-prepare"


@dataclass
class PrepareArguments:
    """Flags of `vaelm-prepare` (the data flags of `vaelm-train`, under the same names)."""

    output_dir: str = field(metadata={"help": "Folder for train.txt, valid.txt, test.txt and report.json."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of text files (one sentence per line, or running text with --sentence_split)."},
    )
    dataset: str | None = field(
        default=None, metadata={"help": "ptb, bookcorpus or a Hub dataset id (instead of --data_dir)."}
    )
    text_column: str = field(default="text", metadata={"help": "Text column of a Hub dataset."})
    sentence_split: bool = field(
        default=False, metadata={"help": "The files are running text (paragraphs): cut them into sentences."}
    )
    lang: str = field(default="en", metadata={"help": "Language of the text.", "choices": ["en", "zh"]})
    segmentation: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer segmentation that --max_length counts in (default: jieba for zh, else whitespace).",
            "choices": ["whitespace", "jieba", "char", "words"],
        },
    )
    lowercase: bool = field(
        default=False, metadata={"help": "As vaelm-train --lowercase (the text is written as it is)."}
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Drop sentences longer than N tokens, as vaelm-train --max_length (default: keep all)."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of a Hub dataset's held-out splits (vaelm-train --seed)."})
    num_threads: int | None = num_threads_field()

    def __post_init__(self):
        if (self.data_dir is None) == (self.dataset is None):
            raise ValueError("Give one of --data_dir (a local folder) or --dataset (ptb, bookcorpus or a Hub id).")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"--max_length must be a positive integer, got {self.max_length}.")


def make_parser() -> ArgumentParser:
    """The parser of `vaelm-prepare`'s flags (the help layout and flag fixes every command shares)."""
    return build_parser([PrepareArguments], prog=NAME, description=__doc__)


def main(argv: list[str]) -> int:
    (args,) = parse_flags(make_parser(), argv)
    configure_threads(args.num_threads)
    from ..corpora.preparation import prepare_corpus, write_prepared  # here: --help reads no data library
    from ..corpora.sources import check_output_dir

    check_output_dir(args.output_dir)  # before the corpus is read
    prepared, report = prepare_corpus(
        data_dir=args.data_dir,
        dataset=args.dataset,
        text_column=args.text_column,
        sentence_split=args.sentence_split,
        lang=args.lang,
        segmentation=args.segmentation,
        lowercase=args.lowercase,
        max_length=args.max_length,
        seed=args.seed,
    )
    written = write_prepared(args.output_dir, prepared, report)
    print(report.summary())
    print(f"Wrote {', '.join(str(path) for path in written.values())}.")
    return 0


def entry_point() -> None:
    sys.exit(run_command(NAME, main))


if __name__ == "__main__":
    entry_point()
