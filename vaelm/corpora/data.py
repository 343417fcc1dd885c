"""Sentences -> token ids: every split tokenized (word by word with Arrow where the tokenizer allows it), and the
padding collator.

Where the sentences come from (local folders, running text, PTB, Hub datasets) is [`vaelm.corpora.sources`]; its
names are importable from here too, as they were before the split.
"""

import itertools
import logging
from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..tokenization_vaelm import encode_sentences, segment
from .report import PreparationReport
from .sources import (
    DataError,
    _in_memory_dataset,
)
from .vocabulary import word_ids_encoder
from .word_ids import WordIds, forget_split, limit_lengths, list_array, sample_indices

logger = logging.getLogger(__name__)

STREAM_BATCH = 10_000  # sentences of a stream tokenized together (fewer, larger batches: less overhead per batch)


# ------------------------------------------------------------------------------------------------ tokenization
def tokenize_splits(
    raw: datasets.DatasetDict | datasets.IterableDatasetDict,
    tokenizer,
    segmentation: str = "whitespace",
    max_length: int | None = None,
    truncate: bool = False,
    report: PreparationReport | None = None,
) -> datasets.DatasetDict | datasets.IterableDatasetDict:
    """
    Segment (Chinese) and tokenize every split with a batched, cached `map`; add a `length` column.

    Args:
        raw: splits with a `text` column.
        tokenizer: the word-level tokenizer.
        segmentation (`str`): see [`vaelm.tokenization_vaelm.segment`].
        max_length (`int`, *optional*): longest sentence in words (`<s>`/`</s>` not counted); longer ones are
            dropped, or cut when `truncate`. The number affected is logged. `None` keeps everything.
        truncate (`bool`, *optional*, defaults to `False`): cut over-long sentences instead of dropping them.
        report ([`PreparationReport`], *optional*): receives the over-long sentences dropped (in-memory splits).
    """

    if isinstance(raw, datasets.DatasetDict):
        encoder = word_ids_encoder(tokenizer)  # one for every split: each distinct word is tokenized once
        fast = (
            {
                split: _tokenize_word_by_word(raw[split], split, tokenizer, encoder, segmentation, max_length, truncate)
                for split in raw
            }
            if encoder is not None
            else {}
        )
        if fast and all(result is not None for result in fast.values()):
            for split, (_, too_long) in fast.items():
                _report_long(report, split, raw[split], too_long, truncate)
            fast = {split: result[0] for split, result in fast.items()}
        forget_split()
        if fast and all(dataset is not None for dataset in fast.values()):
            return datasets.DatasetDict(fast)
    if isinstance(raw, datasets.IterableDatasetDict):
        return _tokenize_stream(raw, tokenizer, segmentation, max_length, truncate)

    def encode(batch):
        # verbose=False: over-long sentences are dropped or cut (and counted) below, not by the tokenizer.
        ids = encode_sentences(tokenizer, batch["text"], segmentation)
        if max_length is not None and truncate:
            cut = [len(row) > max_length + 2 for row in ids]
            ids = [row if len(row) <= max_length + 2 else row[: max_length + 1] + row[-1:] for row in ids]
            return {"input_ids": ids, "length": [len(row) for row in ids], "truncated": cut}
        return {"input_ids": ids, "length": [len(row) for row in ids]}

    columns = raw["train"].column_names if "train" in raw else next(iter(raw.values())).column_names
    progress = {} if isinstance(raw, datasets.IterableDatasetDict) else {"desc": "Tokenizing"}  # streams take no desc
    tokenized = raw.map(encode, batched=True, batch_size=2000, remove_columns=columns, **progress)
    if max_length is not None and truncate:
        if not isinstance(tokenized, datasets.IterableDatasetDict):  # a stream cannot be counted ahead
            for split in tokenized:
                cut = sum(tokenized[split]["truncated"])
                if cut:
                    logger.warning(
                        "%s: truncated %d of %d sentences longer than --max_length %d words.",
                        split,
                        cut,
                        len(tokenized[split]),
                        max_length,
                    )
        tokenized = tokenized.remove_columns("truncated")
    if max_length is None or truncate or isinstance(tokenized, datasets.IterableDatasetDict):
        if max_length is not None and isinstance(tokenized, datasets.IterableDatasetDict) and not truncate:
            tokenized = tokenized.filter(lambda batch: [n <= max_length + 2 for n in batch["length"]], batched=True)
        return tokenized
    filtered = tokenized.filter(
        lambda batch: [n <= max_length + 2 for n in batch["length"]], batched=True, desc="Dropping long sentences"
    )
    for split in filtered:
        lengths = tokenized[split].data.column("length") if tokenized[split]._indices is None else None
        if lengths is None:
            lengths = pa.chunked_array([pa.array(tokenized[split]["length"], pa.int64())])
        _report_long(
            report, split, raw[split], pc.greater(lengths, max_length + 2).to_numpy(zero_copy_only=False), truncate
        )
        dropped = len(tokenized[split]) - len(filtered[split])
        if dropped:
            logger.warning(
                "%s: dropped %d of %d sentences longer than --max_length %d words.",
                split,
                dropped,
                len(tokenized[split]),
                max_length,
            )
        if len(filtered[split]) == 0:
            raise DataError(f"No {split} sentence is at most {max_length} words long; raise --max_length.")
    return filtered


def _tokenize_stream(
    raw: datasets.IterableDatasetDict, tokenizer, segmentation: str, max_length: int | None, truncate: bool
) -> datasets.IterableDatasetDict:
    """
    `tokenize_splits` of streamed splits: one `map` on Arrow batches (the length limit applied inside, without a
    count), word by word when the tokenizer allows it and its first batch gives [`encode_sentences`]'s ids.
    """
    encoder = word_ids_encoder(tokenizer)
    word_by_word = {}  # set by the first batch's check

    def encode(table: pa.Table) -> pa.Table:
        texts = table.column("text").combine_chunks()
        rows = None
        if encoder is not None and word_by_word.get("ok", True):
            segmented = pa.array(segment(texts, segmentation), pa.string()) if segmentation == "jieba" else texts
            offsets, values = encoder.encode(segmented)
            if "ok" not in word_by_word:
                rows = encode_sentences(tokenizer, texts.to_pylist(), segmentation)
                word_by_word["ok"] = [values[a:b].tolist() for a, b in itertools.pairwise(offsets)] == rows
                if not word_by_word["ok"]:
                    logger.warning(
                        "Word-by-word token ids differ from the tokenizer's on the stream's first batch; "
                        "tokenizing with the tokenizer itself (slower)."
                    )
        if encoder is None or not word_by_word.get("ok", False):
            rows = rows if rows is not None else encode_sentences(tokenizer, texts.to_pylist(), segmentation)
            offsets = np.concatenate([[0], np.cumsum([len(row) for row in rows], dtype=np.int64)])
            values = np.fromiter((i for row in rows for i in row), dtype=np.int32, count=int(offsets[-1]))
        if max_length is not None:
            offsets, values, lengths, _ = limit_lengths(offsets, values, max_length + 2, truncate)
        else:
            lengths = np.diff(offsets)
        return pa.table({"input_ids": list_array(offsets, values), "length": pa.array(lengths, pa.int64())})

    return datasets.IterableDatasetDict(
        {
            split: part.with_format("arrow")
            .map(encode, batched=True, batch_size=STREAM_BATCH, remove_columns=part.column_names)
            .with_format(None)
            for split, part in raw.items()
        }
    )


def text_column(dataset: datasets.Dataset) -> pa.ChunkedArray:
    """The `text` column of an in-memory split as Arrow strings (no Python object per sentence)."""
    if dataset._indices is not None:  # a selection or shuffle of a table: make the rows contiguous
        dataset = dataset.flatten_indices()
    return dataset.data.column("text")


def _report_long(
    report: PreparationReport | None, split: str, dataset: datasets.Dataset, too_long: np.ndarray | None, truncate: bool
) -> None:
    """Count the sentences of `dataset` that `too_long` marks as dropped (or cut, with `truncate`) in `report`."""
    if report is None or too_long is None or not too_long.any():
        return
    long_texts = text_column(dataset).filter(pa.array(too_long)).to_pylist()
    if truncate:
        report.notes.append(f"{split}: {len(long_texts)} sentences over --max_length were cut to it.")
    else:
        report.drop_sentences("over_long", long_texts)
        report.sentences_per_split[split] = report.sentences_per_split.get(split, 0) - len(long_texts)


def _tokenize_word_by_word(
    dataset: datasets.Dataset,
    split: str,
    tokenizer,
    encoder: WordIds,
    segmentation: str,
    max_length: int | None,
    truncate: bool,
) -> tuple[datasets.Dataset, np.ndarray | None] | None:
    """
    `tokenize_splits` of one in-memory split through [`vaelm.corpora.word_ids`]: the same rows, columns and warnings, with
    no Python object per sentence, and which rows were over `max_length`. `None` when the ids differ from
    [`encode_sentences`] on a sample of the split (the caller then tokenizes with the tokenizer itself).
    """
    texts = text_column(dataset)
    if texts.null_count or (not pa.types.is_string(texts.type) and not pa.types.is_large_string(texts.type)):
        return None
    rows = sample_indices(len(texts))
    expected = encode_sentences(tokenizer, texts.take(rows).to_pylist(), segmentation)
    if segmentation == "jieba":
        texts = pa.chunked_array([pa.array(segment(texts, segmentation), pa.string())], pa.string())
    offsets, values = encoder.encode(pa.concat_arrays(texts.take(rows).chunks) if rows else pa.array([], pa.string()))
    if [values[a:b].tolist() for a, b in itertools.pairwise(offsets)] != expected:
        logger.warning(
            "%s: word-by-word token ids differ from the tokenizer's on a sample; tokenizing with the "
            "tokenizer itself (slower).",
            split,
        )
        return None
    columns, lengths, affected, masks = [], [], 0, []
    for offsets, values in encoder.encode_all(texts):
        if max_length is not None:
            offsets, values, counts, too_long = limit_lengths(offsets, values, max_length + 2, truncate)
            affected += int(too_long.sum())
            masks.append(np.asarray(too_long, dtype=bool))
        else:
            counts = np.diff(offsets)
        columns.append(list_array(offsets, values))
        lengths.append(pa.array(counts, pa.int64()))
    table = pa.table(
        {"input_ids": pa.chunked_array(columns, pa.list_(pa.int32())), "length": pa.chunked_array(lengths, pa.int64())}
    )
    if affected:
        logger.warning(
            "%s: %s %d of %d sentences longer than --max_length %d words.",
            split,
            "truncated" if truncate else "dropped",
            affected,
            len(texts),
            max_length,
        )
    if not truncate and max_length is not None and table.num_rows == 0:
        raise DataError(f"No {split} sentence is at most {max_length} words long; raise --max_length.")
    return _in_memory_dataset(table), (np.concatenate(masks) if masks else None)


@dataclass
class VAELMCollator:
    """
    Pad `input_ids` to the longest sentence of the batch (right padding) and build the attention mask.

    Args:
        pad_token_id (`int`): the id of `<pad>`.
    """

    pad_token_id: int = 0

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        rows = [feature["input_ids"] for feature in features]
        longest = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
            attention_mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


__all__ = ["VAELMCollator", "text_column", "tokenize_splits"]
