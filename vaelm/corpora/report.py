"""What data preparation did to a corpus: text in, sentences out, and every dropped word with its reason.

A [`PreparationReport`] is filled while files are read and cut into sentences ([`vaelm.corpora.sentences`]) and
while splits are tokenized (over-long sentences). `vaelm-prepare` writes it as `report.json`, and `vaelm-train`
logs its [`PreparationReport.summary`] and keeps the same file in its output folder.

Words are whitespace-separated pieces of the input. For a local folder of text, `words_in` (every word of every
file) equals `words_kept` (the words of the sentences kept) plus the words dropped under each reason, so the
report accounts for every word; `unaccounted` says what is left over (zero unless the sentence splitter itself
added or removed spaces).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# Why words are dropped: the one list of reasons (keys of `dropped`), with the words used in the summary line.
REASONS = {
    "licence": "Project Gutenberg licence header/footer and markers",
    "headings": "chapter/part/book headings and their title lines",
    "contents": "tables of contents",
    "indented": "tables and indented blocks",
    "illustrations": "[Illustration]/[Footnote] blocks",
    "speaker_labels": "speaker labels of dramatic text",
    "fragments": "short lines that do not end like a sentence",
    "markup": "_italic_ markers",
    "no_letters": "pieces without a letter or digit (* * *, lone punctuation)",
    "blank_rows": "blank rows of a dataset",
    "over_long": "sentences over --max_length tokens",
}
EXAMPLES = 3  # examples kept per reason
EXAMPLE_CHARS = 160


@dataclass
class PreparationReport:
    """
    Counts of one data preparation. All counts are over the splits that were prepared.

    Args:
        files (`int`): input files read.
        books (`int`): books found (a `*** START OF … ***`/`*** END OF … ***` pair each; a file without markers is
            one book).
        paragraphs (`int`): paragraphs of running text kept (before sentence splitting).
        sentences (`int`): sentences kept.
        words_in (`int`): words of the input.
        words_kept (`int`): words of the kept sentences.
        dropped (`dict[str, int]`): words dropped per reason (keys of `REASONS`).
        dropped_pieces (`dict[str, int]`): paragraphs, lines or sentences dropped per reason.
        examples (`dict[str, list[str]]`): a few dropped pieces per reason.
        sentences_per_split (`dict[str, int]`): sentences of each split.
        notes (`list[str]`): what could not be counted (streams, Hub datasets).
    """

    files: int = 0
    books: int = 0
    paragraphs: int = 0
    sentences: int = 0
    words_in: int = 0
    words_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_pieces: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    sentences_per_split: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, text: str, words: int | None = None) -> None:
        """
        Count `text` as dropped for `reason`.

        Args:
            reason (`str`): one of `REASONS`.
            text (`str`): what was dropped (kept as an example while there are fewer than `EXAMPLES`).
            words (`int`, *optional*): its words, when they are not simply `len(text.split())`.
        """
        if reason not in REASONS:
            raise KeyError(f"Unknown reason {reason!r}; add it to vaelm.corpora.report.REASONS.")
        count = len(text.split()) if words is None else words
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        self.dropped_pieces[reason] = self.dropped_pieces.get(reason, 0) + 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < EXAMPLES and text.strip():
            short = " ".join(text.split())
            examples.append(short if len(short) <= EXAMPLE_CHARS else short[: EXAMPLE_CHARS - 1] + "…")

    def merge(self, other: PreparationReport) -> PreparationReport:
        """Add the counts of `other` (another file's report) to this one; returns `self`."""
        for name in ("files", "books", "paragraphs", "sentences", "words_in", "words_kept"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, words in other.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + words
            self.dropped_pieces[reason] = self.dropped_pieces.get(reason, 0) + other.dropped_pieces.get(reason, 0)
            mine = self.examples.setdefault(reason, [])
            mine.extend(other.examples.get(reason, [])[: max(0, EXAMPLES - len(mine))])
        for split, count in other.sentences_per_split.items():
            self.sentences_per_split[split] = self.sentences_per_split.get(split, 0) + count
        self.notes.extend(note for note in other.notes if note not in self.notes)
        return self

    def drop_sentences(self, reason: str, sentences: list[str]) -> None:
        """Count whole kept sentences as dropped afterwards (e.g. over-long ones): they leave `words_kept`."""
        for sentence in sentences:
            self.drop(reason, sentence)
            self.words_kept -= len(sentence.split())
            self.sentences -= 1

    @property
    def unaccounted(self) -> int:
        """Words of the input neither kept nor dropped for a reason (0 when every word is accounted for)."""
        return self.words_in - self.words_kept - sum(self.dropped.values())

    def to_dict(self) -> dict:
        """The report as `report.json` holds it."""
        return {
            "files": self.files,
            "books": self.books,
            "paragraphs": self.paragraphs,
            "sentences": self.sentences,
            "sentences_per_split": self.sentences_per_split,
            "words_in": self.words_in,
            "words_kept": self.words_kept,
            "words_dropped": {reason: self.dropped[reason] for reason in REASONS if reason in self.dropped},
            "pieces_dropped": {reason: self.dropped_pieces[reason] for reason in REASONS if reason in self.dropped},
            "words_unaccounted": self.unaccounted,
            "reasons": {reason: REASONS[reason] for reason in REASONS if reason in self.dropped},
            "examples": {reason: self.examples[reason] for reason in REASONS if self.examples.get(reason)},
            "notes": self.notes,
        }

    def summary(self) -> str:
        """Two lines for a log: what went in and came out, then the words dropped by reason."""
        kept = f"{self.words_kept / self.words_in:.1%}" if self.words_in else "n/a"
        first = (
            f"Data: {self.files:,} files, {self.books:,} books, {self.paragraphs:,} paragraphs -> "
            f"{self.sentences:,} sentences; {self.words_kept:,} of {self.words_in:,} words kept ({kept})."
        )
        reasons = ", ".join(f"{reason} {self.dropped[reason]:,}" for reason in REASONS if self.dropped.get(reason))
        second = (
            f"Dropped words: {reasons or 'none'}"
            + (f"; {self.unaccounted:,} unaccounted" if self.unaccounted else "")
            + "."
        )
        if self.notes:
            second += " " + " ".join(self.notes)
        return first + "\n" + second

    def write(self, path: str | Path) -> Path:
        """Write `report.json` (UTF-8, indented) to `path`."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


__all__ = ["EXAMPLES", "REASONS", "PreparationReport"]
