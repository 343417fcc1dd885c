"""Training from a stream (`--streaming`): files read lazily, a vocabulary from a sample, length-grouped batches,
one shard per rank.

A folder of `.txt`, `.jsonl` or `.parquet` files becomes a `datasets.IterableDataset` whose shards are the files,
so `datasets.distributed.split_dataset_by_node` gives each rank its own files when their number divides evenly
(otherwise each rank keeps every world_size-th sentence): either way one epoch sees every sentence exactly once
across ranks. Memory stays bounded by the buffers (`--stream_buffer` sentences, `--vocab_sample` sentences for the
vocabulary), whatever the corpus size.
"""

import json
import random
import zlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
from datasets.distributed import split_dataset_by_node
from datasets.iterable_dataset import ArrowExamplesIterable

from . import SPLITS
from .report import PreparationReport
from .sentences import sentences_from_lines
from .sources import DataError, iter_sentence_columns, read_lines

STREAM_SUFFIXES = (".txt", ".jsonl", ".parquet")
TABLE_ROWS = 2000  # sentences per Arrow table of a stream (besides blocks of plain text files)


def stream_files(data_dir: str | Path) -> dict[str, list[Path]]:
    """
    The files of each split of a streamed folder.

    `train.*`, `valid.*` and `test.*` files (with one of `STREAM_SUFFIXES`, or many of them as `train-00001.jsonl`
    …) name their split. In a folder with no such names every file serves every split: sentences are assigned by
    [`held_out_split`].
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"Data folder {folder} does not exist.")
    files = sorted(path for path in folder.iterdir() if path.suffix in STREAM_SUFFIXES and path.is_file())
    if not files:
        raise DataError(f"{folder} holds no {'/'.join(STREAM_SUFFIXES)} file to stream.")
    named = {split: [path for path in files if _split_of(path) == split] for split in SPLITS}
    return named if named["train"] else {"train": files}


def _split_of(path: Path) -> str:
    # train.txt, train-00001.jsonl, ptb.train.txt -> "train"
    return path.name.removeprefix("ptb.").split("-")[0].split(".")[0]


def _file_sentences(paths: list[str], text_column: str, sentence_split: bool, lang: str) -> Iterator[dict]:
    """Rows `{"text": sentence}` of some files (a generator whose `paths` list `datasets` shards by file)."""
    for name in paths:
        path = Path(name)
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(columns=[text_column]):
                for text in batch.column(0).to_pylist():
                    yield from _rows(str(text or ""), sentence_split, lang)
        elif path.suffix == ".jsonl":
            for number, line in enumerate(read_lines(path), start=1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line)[text_column]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise DataError(
                        f"{path}, line {number}: not a JSON object with a {text_column!r} field "
                        f"({error}). Fix the line or pass --text_column."
                    ) from None
                yield from _rows(str(text), sentence_split, lang)
        elif sentence_split:
            for sentence in sentences_from_lines(read_lines(path), lang):
                yield {"text": sentence}
        else:
            for line in read_lines(path):
                if line.split():
                    yield {"text": " ".join(line.split())}


def _rows(text: str, sentence_split: bool, lang: str) -> Iterator[dict]:
    if sentence_split:
        for sentence in sentences_from_lines(text.splitlines(), lang):
            yield {"text": sentence}
    elif text.split():
        yield {"text": " ".join(text.split())}


def _file_tables(paths: list[str], text_column: str, sentence_split: bool, lang: str) -> Iterator[tuple[str, pa.Table]]:
    """Tables of `{"text": sentence}` rows of some files: plain text files are read by Arrow a block at a time."""
    for name in paths:
        path = Path(name)
        if path.suffix == ".txt" and not sentence_split:
            for index, column in enumerate(iter_sentence_columns(path)):
                yield f"{name}:{index}", pa.table({"text": column})
            continue
        rows = _file_sentences([name], text_column, sentence_split, lang)
        # the lambda runs inside this iteration only, so binding `rows` late is what is wanted
        for index, batch in enumerate(iter(lambda: list(islice(rows, TABLE_ROWS)), [])):  # noqa: B023
            yield f"{name}:{index}", pa.table({"text": pa.array([row["text"] for row in batch], pa.string())})


def stream_dataset(paths: list[Path], text_column: str = "text", sentence_split: bool = False, lang: str = "en"):
    """An `IterableDataset` of `{"text": sentence}` rows read lazily from `paths` (one shard per file)."""
    tables = ArrowExamplesIterable(
        _file_tables,
        {
            "paths": [str(path) for path in paths],
            "text_column": text_column,
            "sentence_split": sentence_split,
            "lang": lang,
        },
    )
    return datasets.IterableDataset(
        tables, info=datasets.DatasetInfo(features=datasets.Features({"text": datasets.Value("string")}))
    )


def stream_text_splits(
    data_dir: str | Path,
    splits: tuple[str, ...] = SPLITS,
    text_column: str = "text",
    sentence_split: bool = False,
    lang: str = "en",
    validation_size: int = 2000,
    report: PreparationReport | None = None,
) -> datasets.IterableDatasetDict:
    """
    Streamed splits of a local folder (see [`stream_files`]).

    Args:
        data_dir (`str` or `Path`): the folder.
        splits (`tuple[str, ...]`): the splits to return.
        text_column (`str`, *optional*, defaults to `"text"`): the field of `.jsonl`/`.parquet` rows.
        sentence_split (`bool`, *optional*, defaults to `False`): the text is running text, cut into sentences.
        lang (`str`, *optional*, defaults to `"en"`): its language.
        validation_size (`int`, *optional*, defaults to 2000): with no valid/test files, the sentences are split
            by [`held_out_split`] (90/5/5), and valid and test stop after `validation_size` sentences each.
        report ([`PreparationReport`], *optional*): receives the number of files (a stream is not counted ahead).
    """
    files = stream_files(data_dir)
    empty = [path for path in files["train"] if path.stat().st_size == 0]
    if len(empty) == len(files["train"]):
        names = ", ".join(str(path) for path in empty)
        raise DataError(
            f"Nothing to stream: the training file{'s' if len(empty) > 1 else ''} {names} "
            f"{'are' if len(empty) > 1 else 'is'} empty. Put one sentence per line in "
            f"{'them' if len(empty) > 1 else 'it'} (running text with --sentence_split), or point "
            "--data_dir at the folder that holds your corpus."
        )
    if report is not None:
        report.files += sum(len(paths) for paths in files.values())
        report.notes.append(f"{data_dir} is streamed: its sentences are counted as training reads them, not here.")
    options = {"text_column": text_column, "sentence_split": sentence_split, "lang": lang}
    if all(files.get(split) for split in splits):
        return datasets.IterableDatasetDict({split: stream_dataset(files[split], **options) for split in splits})
    everything = stream_dataset(files["train"], **options)
    parts = {
        split: everything.filter(lambda row, split=split: held_out_split(row["text"]) == split) for split in splits
    }
    for split in ("valid", "test"):
        if split in parts:
            parts[split] = parts[split].take(validation_size)
    return datasets.IterableDatasetDict(parts)


def held_out_split(sentence: str) -> str:
    """
    The split of a sentence of a folder without split files: by a checksum of its text, 1 in 20 goes to valid and
    1 in 20 to test. Deterministic whatever the order or sharding, and a repeated sentence never straddles splits.
    """
    bucket = zlib.crc32(sentence.encode("utf-8")) % 20
    return "valid" if bucket == 18 else "test" if bucket == 19 else "train"


def vocabulary_sample(stream, size: int) -> list[str]:
    """The first `size` sentences of a stream: what the vocabulary is built from (bounded memory)."""
    sample = [row["text"] for row in islice(iter(stream), size)]
    if not sample:
        raise DataError(
            "The training stream holds no sentence: its files are empty or hold only blank lines (or "
            "no sentence survived --sentence_split). Put one sentence per line in them, or point "
            "--data_dir at the folder that holds your corpus."
        )
    return sample


def group_by_length(tokenized, batch_size: int, buffer_size: int = 10_000, seed: int = 42):
    """
    Length-grouped batches within a buffer: each run of `buffer_size` sentences is sorted by length, cut into
    batches of `batch_size`, and the batches are shuffled, so a batch holds sentences of similar length (little
    padding) while the order of batches stays random.

    Args:
        tokenized (`datasets.IterableDataset`): rows with `input_ids` and `length`.
        batch_size (`int`): sentences per batch (per device).
        buffer_size (`int`, *optional*, defaults to 10000): sentences sorted together.
        seed (`int`, *optional*, defaults to 42): seed of the batch order.
    """
    buffer_size = max(batch_size, buffer_size - buffer_size % batch_size)  # whole batches per buffer

    def regroup(table: pa.Table) -> pa.Table:
        # Seeded by the buffer's content, so a resumed run that reads the same buffer orders it the same way.
        first = table.column("input_ids")[0].as_py() if table.num_rows else []
        rng = random.Random(f"{seed}:{first}:{table.num_rows}")
        order = np.argsort(table.column("length").to_numpy(), kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        rng.shuffle(batches)
        return table.take(np.concatenate(batches)) if batches else table

    # On Arrow batches: a chain of batched maps over Python rows slows down with every buffer (datasets joins the
    # keys of every row of a batch).
    return tokenized.with_format("arrow").map(regroup, batched=True, batch_size=buffer_size).with_format(None)


def rank_shard(dataset, rank: int, world_size: int):
    """This rank's part of a stream (`split_dataset_by_node`): all ranks together read every sentence once."""
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size) if world_size > 1 else dataset


__all__ = [
    "group_by_length",
    "held_out_split",
    "rank_shard",
    "stream_dataset",
    "stream_files",
    "stream_text_splits",
    "vocabulary_sample",
]
