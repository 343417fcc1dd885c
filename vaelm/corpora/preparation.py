"""`vaelm-prepare`'s work: the sentences `vaelm-train` would read, written as train/valid/test.txt and report.json.

The sentences come from [`vaelm.corpora.sources.load_text_splits`], the function `vaelm-train` calls, with the same
arguments, so the same files, cleaning and splits. With `max_length`, sentences longer than that many tokens are
dropped as `vaelm-train --max_length` drops them: a word-level tokenizer gives one id per piece of its
pre-tokenizer, so the pieces of the segmentation's pre-tokenizer are counted (no vocabulary is needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..tokenization_vaelm import default_segmentation, new_tokenizer, segment
from . import SPLITS
from .report import PreparationReport
from .sources import check_output_dir, load_text_splits

PREPARED_FILES = {split: f"{split}.txt" for split in SPLITS}
REPORT_FILE = "report.json"


def token_counts(texts: list[str], segmentation: str = "whitespace", lowercase: bool = False) -> np.ndarray:
    """
    Tokens of each sentence without `<s>`/`</s>`, as a word-level tokenizer of `segmentation` counts them.

    Args:
        texts (`list[str]`): sentences.
        segmentation (`str`, *optional*, defaults to `"whitespace"`): the model's segmentation.
        lowercase (`bool`, *optional*, defaults to `False`): the tokenizer lower-cases (no effect on counts).
    """
    tokenizer = new_tokenizer(segmentation, lowercase)
    normalize = tokenizer.normalizer.normalize_str if tokenizer.normalizer is not None else str
    pre_tokenize = tokenizer.pre_tokenizer.pre_tokenize_str
    return np.array([len(pre_tokenize(normalize(text))) for text in segment(texts, segmentation)], dtype=np.int64)


def prepare_corpus(
    data_dir: str | Path | None = None,
    dataset: str | None = None,
    text_column: str = "text",
    sentence_split: bool = False,
    lang: str = "en",
    segmentation: str | None = None,
    lowercase: bool = False,
    max_length: int | None = None,
    seed: int = 42,
    splits: tuple[str, ...] = SPLITS,
) -> tuple[dict[str, list[str]], PreparationReport]:
    """
    The sentences of each split, as `vaelm-train` reads them, and the report of what was kept and dropped.

    Args:
        data_dir (`str` or `Path`, *optional*): a local folder (one sentence per line, or running text).
        dataset (`str`, *optional*): `ptb`, `bookcorpus` or a Hub dataset id instead.
        text_column (`str`, *optional*, defaults to `"text"`): the text column of a Hub dataset.
        sentence_split (`bool`, *optional*, defaults to `False`): `data_dir` holds running text.
        lang (`str`, *optional*, defaults to `"en"`): language of the text.
        segmentation (`str`, *optional*): the tokenizer's segmentation (default: that of `lang`), for `max_length`.
        lowercase (`bool`, *optional*, defaults to `False`): as `vaelm-train --lowercase`.
        max_length (`int`, *optional*): drop sentences of more tokens, as `vaelm-train --max_length` does.
        seed (`int`, *optional*, defaults to 42): seed of a Hub dataset's held-out splits (`vaelm-train --seed`).
        splits (`tuple[str, ...]`): the splits to prepare.
    """
    report = PreparationReport()
    raw = load_text_splits(
        data_dir=data_dir,
        dataset=dataset,
        text_column=text_column,
        splits=splits,
        seed=seed,
        sentence_split=sentence_split,
        lang=lang,
        report=report,
    )
    prepared = {}
    for split in splits:
        texts = raw[split]["text"]
        if max_length is not None:
            counts = token_counts(texts, segmentation or default_segmentation(lang), lowercase)
            report.drop_sentences("over_long", [text for text, count in zip(texts, counts) if count > max_length])
            texts = [text for text, count in zip(texts, counts) if count <= max_length]
            report.sentences_per_split[split] = len(texts)
        prepared[split] = texts
    return prepared, report


def write_prepared(
    output_dir: str | Path, prepared: dict[str, list[str]], report: PreparationReport
) -> dict[str, Path]:
    """
    Write each split as `<split>.txt` (one sentence per line, UTF-8) and `report.json` into `output_dir`.

    Args:
        output_dir (`str` or `Path`): the folder (created if missing).
        prepared (`dict[str, list[str]]`): sentences per split.
        report ([`PreparationReport`]): written as `report.json`.

    Returns:
        `dict[str, Path]`: the files written, by split, and `"report"`.
    """
    folder = check_output_dir(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, sentences in prepared.items():
        path = folder / PREPARED_FILES[split]
        path.write_text("".join(sentence + "\n" for sentence in sentences), encoding="utf-8")
        written[split] = path
    written["report"] = report.write(folder / REPORT_FILE)
    return written


__all__ = ["PREPARED_FILES", "REPORT_FILE", "prepare_corpus", "token_counts", "write_prepared"]
