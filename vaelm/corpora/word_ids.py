"""Word counts and token ids of whole corpora at Arrow speed: each distinct word goes through the tokenizer once.

vaelm's word-level tokenizers never look across a space: their normalizers and pre-tokenizers act inside
whitespace-separated words, and their special tokens hold no space. A sentence's ids are therefore the ids of its
space-separated words, tokenized alone, one after the other. So a corpus is cut at spaces by Arrow
(`pyarrow.compute.split_pattern`), its words are numbered by `dictionary_encode`, each distinct word is tokenized
once (words follow Zipf's law: a few hundred thousand distinct words for millions of sentences), and the sentences'
ids are gathered with numpy, with no Python object per sentence or per token.

Which tokenizers qualify is decided by `vaelm.corpora.vocabulary.tokenizes_word_by_word`; callers also compare the
result with the tokenizer's own on a sample of the corpus (`sample_indices`) before trusting it.
"""

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK = 1 << 18  # sentences per Arrow pass: bounds the temporary arrays (a few tens of MB) and keeps int32 offsets
SAMPLE = 1000  # sentences compared with the tokenizer's own ids before the fast ids are trusted


def as_arrow(texts) -> pa.ChunkedArray | None:
    """`texts` as an Arrow string column (no copy when it is one already); `None` for what is not a sequence of str."""
    if isinstance(texts, pa.ChunkedArray):
        chunked = texts
    elif isinstance(texts, pa.Array):
        chunked = pa.chunked_array([texts])
    elif isinstance(texts, (list, tuple)):
        try:
            chunked = pa.chunked_array([pa.array(texts, type=pa.string())])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
    else:
        return None
    if not (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)) or chunked.null_count:
        return None
    return chunked


def _pieces(texts: pa.ChunkedArray) -> list[pa.Array]:
    return [chunk.slice(start, CHUNK) for chunk in texts.chunks for start in range(0, len(chunk), CHUNK)]


def _threads() -> int:
    # Arrow's and numpy's kernels release the GIL, so pieces run side by side on Arrow's CPU count (set to
    # --num_threads by vaelm.runtime.threads.configure_threads).
    return max(1, pa.cpu_count())


def parallel_map(function, pieces: list) -> Iterator:
    """`map` on Arrow's CPU count of threads (for functions that spend their time in Arrow or numpy)."""
    if _threads() == 1 or len(pieces) == 1:
        return map(function, pieces)
    pool = ThreadPoolExecutor(_threads())
    try:
        return iter(list(pool.map(function, pieces)))
    finally:
        pool.shutdown()


# The word split of the corpus counted last (its pieces kept alive, so their buffer addresses cannot be reused),
# handed to the tokenization of that same corpus instead of being computed twice.
_last_split: dict[tuple, tuple] = {}


def forget_split() -> None:
    """Drop the kept word split (once the corpus it belongs to is tokenized)."""
    _last_split.clear()


def _piece_key(piece: pa.Array) -> tuple:
    return (*tuple(buffer.address if buffer is not None else 0 for buffer in piece.buffers()), piece.offset, len(piece))


def _split(piece: pa.Array) -> tuple[np.ndarray, pa.DictionaryArray]:
    """Word offsets of each sentence and its words, numbered (`indices` into the distinct `dictionary`)."""
    kept = _last_split.pop(_piece_key(piece), None)
    if kept is not None:
        return kept[1]
    words = pc.split_pattern(piece, " ")
    offsets = words.offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0], pc.dictionary_encode(words.flatten())


def distinct_words(texts: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """
    The distinct space-separated words of a corpus and how often each occurs.

    Args:
        texts (`pa.ChunkedArray`): sentences.

    Returns:
        `tuple[list[str], np.ndarray]`: the words and their counts.
    """
    pieces = _pieces(texts)

    def count(piece: pa.Array) -> tuple:
        split = _split(piece)
        indices = split[1].indices.to_numpy(zero_copy_only=False)
        return split, split[1].dictionary, np.bincount(indices, minlength=len(split[1].dictionary))

    counted = list(parallel_map(count, pieces))
    _last_split.clear()
    _last_split.update({_piece_key(piece): (piece, split) for piece, (split, _, _) in zip(pieces, counted)})
    if not counted:
        return [], np.zeros(0, dtype=np.int64)
    table = pa.table(
        {
            "word": pa.concat_arrays([words.cast(pa.large_string()) for _, words, _ in counted]),
            "count": pa.array(np.concatenate([counts for _, _, counts in counted])),
        }
    )
    totals = table.group_by("word", use_threads=False).aggregate([("count", "sum")])
    return totals.column("word").to_pylist(), totals.column("count_sum").to_numpy()


class WordIds:
    """
    Token ids of sentences, each distinct word tokenized once by `encode_words` and remembered.

    Args:
        encode_words (`Callable[[list[str]], list[list[int]]]`): the tokenizer's ids of single words, without
            special tokens.
        prefix (`Sequence[int]`): ids before every sentence's words (`<s>`).
        suffix (`Sequence[int]`): ids after them (what the tokenizer's post-processor adds there, if anything).
        eos_id (`int`): `</s>`, appended unless a row of more than one id already ends with it (as
            `vaelm.tokenization_vaelm.encode_sentences` does).
    """

    def __init__(self, encode_words, prefix: Sequence[int], suffix: Sequence[int], eos_id: int):
        self.encode_words, self.prefix, self.suffix, self.eos_id = encode_words, list(prefix), list(suffix), eos_id
        # Every word met so far and its ids: word k has ids values[starts[k]: starts[k] + lengths[k]].
        self.words = pa.array([], pa.large_string())
        self.lengths = np.zeros(0, dtype=np.int64)
        self.starts = np.zeros(0, dtype=np.int64)
        self.values = np.zeros(0, dtype=np.int32)

    def _known(self, dictionary: pa.Array) -> np.ndarray:
        """Positions of a piece's distinct words among the known words, tokenizing the new ones."""
        dictionary = dictionary.cast(pa.large_string())
        found = pc.index_in(dictionary, value_set=self.words)
        if found.null_count:
            new = dictionary.filter(pc.is_null(found))
            rows = self.encode_words(new.to_pylist())
            lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            values = np.fromiter((i for row in rows for i in row), dtype=np.int32, count=int(lengths.sum()))
            self.starts = np.concatenate([self.starts, len(self.values) + np.cumsum(lengths) - lengths])
            self.values = np.concatenate([self.values, values])
            self.lengths = np.concatenate([self.lengths, lengths])
            self.words = pa.concat_arrays([self.words, new])
            found = pc.index_in(dictionary, value_set=self.words)
        return found.to_numpy(zero_copy_only=False).astype(np.int64)

    def encode(self, piece: pa.Array, split: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """
        Ids `prefix w… suffix [</s>]` of each sentence of `piece`, as row offsets (int64) and values (int32).
        """
        sentence_words, encoded = split or _split(piece)
        known = self._known(encoded.dictionary)[encoded.indices.to_numpy(zero_copy_only=False)]
        return self._rows(sentence_words, self.lengths[known], self.starts[known])

    def _rows(self, sentence_words: np.ndarray, lengths: np.ndarray, starts: np.ndarray):
        ends = np.cumsum(lengths)  # the sentence's tokens, flattened
        positions = np.arange(ends[-1] if len(ends) else 0)
        tokens = self.values[np.repeat(starts - (ends - lengths), lengths) + positions]
        bounds = np.concatenate([[0], ends])[sentence_words]  # first token of each sentence, and the end
        counts = np.diff(bounds)
        rows = len(counts)
        before, after = len(self.prefix), len(self.suffix)
        if after:
            last = np.full(rows, self.suffix[-1])
        else:
            fallback = self.prefix[-1] if before else -1
            last = np.where(counts > 0, tokens[np.maximum(bounds[1:] - 1, 0)] if len(tokens) else fallback, fallback)
        natural = before + counts + after
        add_eos = ~((natural > 1) & (last == self.eos_id))
        offsets = np.concatenate([[0], np.cumsum(natural + add_eos)])
        values = np.empty(offsets[-1], dtype=np.int32)
        values[positions + np.repeat(offsets[:-1] + before - bounds[:-1], counts)] = tokens
        for position, token in enumerate(self.prefix):
            values[offsets[:-1] + position] = token
        for position, token in enumerate(self.suffix):
            values[offsets[:-1] + before + counts + position] = token
        values[offsets[1:][add_eos] - 1] = self.eos_id
        return offsets, values

    def encode_all(self, texts: pa.ChunkedArray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """
        [`encode`] over a whole corpus, `CHUNK` sentences at a time: the word splits and the gathering of ids run on
        Arrow's threads, the new words are tokenized in between.
        """
        splits = list(parallel_map(_split, _pieces(texts)))
        located = [
            (words, self._known(encoded.dictionary)[encoded.indices.to_numpy(zero_copy_only=False)])
            for words, encoded in splits
        ]
        del splits
        yield from parallel_map(lambda item: self._rows(item[0], self.lengths[item[1]], self.starts[item[1]]), located)


def limit_lengths(offsets: np.ndarray, values: np.ndarray, longest: int, truncate: bool):
    """
    Rows of at most `longest` ids: longer ones are cut to their first `longest - 1` ids and their last (`</s>`) when
    `truncate`, otherwise dropped.

    Returns:
        `tuple`: offsets, values, the kept rows' lengths, the mask of rows that were too long.
    """
    lengths = np.diff(offsets)
    too_long = lengths > longest
    if not too_long.any():
        return offsets, values, lengths, too_long
    position = np.arange(len(values)) - np.repeat(offsets[:-1], lengths)
    row_length = np.repeat(lengths, lengths)
    if truncate:
        keep = (row_length <= longest) | (position < longest - 1) | (position == row_length - 1)
        lengths = np.minimum(lengths, longest)
    else:
        keep = np.repeat(~too_long, lengths)
        lengths = lengths[~too_long]
    return np.concatenate([[0], np.cumsum(lengths)]), values[keep], lengths, too_long


def list_array(offsets: np.ndarray, values: np.ndarray) -> pa.ListArray:
    """An Arrow `list<int32>` column from row offsets and values."""
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, type=pa.int32()))


def sample_indices(size: int, sample: int = SAMPLE) -> list[int]:
    """`sample` row numbers spread evenly over `size` rows (all of them when there are fewer)."""
    return sorted(set(np.linspace(0, size - 1, num=min(size, sample), dtype=np.int64).tolist())) if size else []


__all__ = [
    "CHUNK",
    "SAMPLE",
    "WordIds",
    "as_arrow",
    "distinct_words",
    "forget_split",
    "limit_lengths",
    "list_array",
    "parallel_map",
    "sample_indices",
]
