"""The vocabulary of a corpus: a word-level tokenizer trained on the training sentences.

Counting goes one distinct word at a time with Arrow ([`vaelm.corpora.word_ids`]), with the same result as
`tokenizers`' `WordLevelTrainer`, which is checked on a sample first and used instead where they disagree. The
tokenizer's pieces (normalizer, pre-tokenizer, decoder of each segmentation) are defined in
[`vaelm.tokenization_vaelm`], which travels with a model folder.
"""

import json
import logging
from collections.abc import Iterable, Iterator
from functools import lru_cache

import pyarrow as pa
from tokenizers import Tokenizer, models, trainers
from transformers import PreTrainedTokenizerFast

from ..configuration_vaelm import SEGMENTATIONS
from ..tokenization_vaelm import (
    BOS,
    SPECIAL_TOKENS,
    UNK,
    new_tokenizer,
    prompt_post_processor,
    wrap_tokenizer,
)
from .word_ids import WordIds, as_arrow, distinct_words, sample_indices

logger = logging.getLogger(__name__)


def _words_without_unk(texts: Iterable[str]) -> Iterator[str]:
    # PTB spells rare words as a literal <unk>; counting it would add a second, ordinary <unk> entry and leave a
    # hole at the special id (len(tokenizer) != max id + 1).
    for text in _python_strings(texts):
        yield " ".join(word for word in text.split() if word != UNK)


def _python_strings(texts) -> Iterator[str]:
    """The strings of a list or of an Arrow string column (whose items are Arrow scalars), a slice at a time."""
    if isinstance(texts, pa.ChunkedArray):
        for chunk in texts.chunks:
            yield from _python_strings(chunk)
    elif isinstance(texts, pa.Array):
        for start in range(0, len(texts), 10_000):
            yield from (text for text in texts.slice(start, 10_000).to_pylist() if text is not None)
    else:
        yield from texts


def build_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 10000,
    min_frequency: int = 1,
    segmentation: str = "whitespace",
    max_sentence_length: int = 200,
    lowercase: bool = False,
) -> PreTrainedTokenizerFast:
    """
    Train a word-level tokenizer on (already segmented) training sentences.

    Args:
        texts (`Iterable[str]`): training sentences, after `segment`. A list or an Arrow string column is counted
            one distinct word at a time ([`vaelm.corpora.word_ids`]), with the same result as `WordLevelTrainer`, much faster.
        vocab_size (`int`, *optional*, defaults to 10000): largest vocabulary, special tokens included.
        min_frequency (`int`, *optional*, defaults to 1): words seen fewer times become `<unk>`.
        segmentation (`str`, *optional*, defaults to `"whitespace"`): `"char"` makes every character a token.
        max_sentence_length (`int`, *optional*, defaults to 200): recorded as the tokenizer's `model_max_length`
            (in tokens, with `<s>` and `</s>`).
        lowercase (`bool`, *optional*, defaults to `False`): lower-case text in the tokenizer's normalizer.

    Returns:
        `PreTrainedTokenizerFast` that encodes text as `<s> w1 … wn`: a prompt that generation continues (as
        `pipeline("text-generation")` expects). Whole sentences end with `</s>`: see [`encode_sentences`].
    """
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}.")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"--vocab_size {vocab_size} leaves no room for words: the vocabulary holds the {len(SPECIAL_TOKENS)} "
            f"special tokens {' '.join(SPECIAL_TOKENS)} and then the most frequent words. Give --vocab_size above "
            f"{len(SPECIAL_TOKENS)} (PTB uses 10000)."
        )
    tokenizer = new_tokenizer(segmentation, lowercase)
    vocabulary = _fast_vocabulary(tokenizer, texts, vocab_size, min_frequency)
    if vocabulary is None:
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
        )
        tokenizer.train_from_iterator(_words_without_unk(texts), trainer=trainer)
    else:
        tokenizer.model = models.WordLevel(vocabulary, unk_token=UNK)
        tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.post_processor = prompt_post_processor(tokenizer.token_to_id(BOS))
    return wrap_tokenizer(tokenizer, max_sentence_length, segmentation)


# ------------------------------------------------------------------------------------- the word-by-word fast path
@lru_cache(maxsize=1)
def _word_local_pipelines() -> tuple[str, ...]:
    # The (normalizer, pre-tokenizer) pairs that vaelm builds: none of them looks across a space.
    pipelines = set()
    for segmentation in SEGMENTATIONS:
        for lowercase in (False, True):
            state = json.loads(new_tokenizer(segmentation, lowercase).to_str())
            pipelines.add(json.dumps([state["normalizer"], state["pre_tokenizer"]], sort_keys=True))
    return tuple(pipelines)


def tokenizes_word_by_word(tokenizer) -> bool:
    """
    Whether a tokenizer tokenizes a sentence as its space-separated words one after the other: a `WordLevel` model
    behind one of vaelm's own normalizer and pre-tokenizer pairs, special tokens without spaces, no padding or
    truncation. Such a tokenizer can take the fast path of `vaelm.corpora.word_ids`.

    Args:
        tokenizer: a `PreTrainedTokenizerFast` or a `tokenizers.Tokenizer`.
    """
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not isinstance(backend, Tokenizer) or backend.padding is not None or backend.truncation is not None:
        return False
    state = json.loads(backend.to_str())
    pipeline = json.dumps([state["normalizer"], state["pre_tokenizer"]], sort_keys=True)
    return (
        state["model"]["type"] == "WordLevel"
        and pipeline in _word_local_pipelines()
        and not any(char.isspace() for token in state["added_tokens"] for char in token["content"])
    )


def _vocabulary_from_counts(counts: dict[str, int], vocab_size: int, min_frequency: int) -> dict[str, int]:
    # What tokenizers' WordLevelTrainer keeps: special tokens first, then words by falling count, ties by text.
    ordered = sorted(sorted(counts), key=counts.__getitem__, reverse=True)  # stable: equal counts stay by text
    entries = SPECIAL_TOKENS + [word for word in ordered if counts[word] >= min_frequency]
    return {word: index for index, word in enumerate(entries[:vocab_size])}


def _counted_vocabulary(tokenizer: Tokenizer, texts, vocab_size: int, min_frequency: int) -> dict[str, int]:
    words, counts = distinct_words(texts)
    normalize = tokenizer.normalizer.normalize_str if tokenizer.normalizer is not None else str
    pre_tokenize = tokenizer.pre_tokenizer.pre_tokenize_str
    totals: dict[str, int] = {}
    for word, count in zip(words, counts.tolist()):
        for piece in word.split():  # as _words_without_unk splits
            if piece != UNK:
                for token, _ in pre_tokenize(normalize(piece)):
                    totals[token] = totals.get(token, 0) + count
    return _vocabulary_from_counts(totals, vocab_size, min_frequency)


def _fast_vocabulary(tokenizer: Tokenizer, texts, vocab_size: int, min_frequency: int) -> dict[str, int] | None:
    """
    The vocabulary `WordLevelTrainer` would build from `texts`, counted per distinct word with Arrow; `None` when
    `texts` is no list or Arrow column, or when the trainer disagrees on a sample of them (then the trainer runs).
    """
    arrow = as_arrow(texts)
    if arrow is None or not tokenizes_word_by_word(tokenizer):
        return None
    if len(arrow) == 0:
        raise ValueError(
            "There is no training sentence to build a vocabulary from: the training files are empty or "
            "hold only blank lines. Put one sentence per line in them (or pass --sentence_split for "
            "running text), or reuse a vocabulary with --tokenizer."
        )
    sample = arrow.take(sample_indices(len(arrow))).to_pylist()
    trained = _new_tokenizer_like(tokenizer)
    trained.train_from_iterator(
        _words_without_unk(sample),
        trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
        ),
    )
    if trained.get_vocab() != _counted_vocabulary(
        tokenizer, pa.chunked_array([pa.array(sample, pa.string())]), vocab_size, min_frequency
    ):
        logger.warning("The fast vocabulary count disagrees with tokenizers' trainer on a sample; using the trainer.")
        return None
    return _counted_vocabulary(tokenizer, arrow, vocab_size, min_frequency)


def _new_tokenizer_like(tokenizer: Tokenizer) -> Tokenizer:
    other = Tokenizer(models.WordLevel(unk_token=UNK))
    other.normalizer, other.pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    return other


def word_ids_encoder(tokenizer) -> WordIds | None:
    """
    A [`vaelm.corpora.word_ids.WordIds`] giving the ids of [`encode_sentences`] word by word, or `None` when the tokenizer
    does not tokenize word by word (see [`tokenizes_word_by_word`]).
    """
    if not tokenizes_word_by_word(tokenizer):
        return None
    backend = tokenizer.backend_tokenizer
    whole, bare = backend.encode("a").ids, backend.encode("a", add_special_tokens=False).ids
    start = next((i for i in range(len(whole) - len(bare) + 1) if whole[i : i + len(bare)] == bare), None)
    if start is None:
        return None

    def encode_words(words: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in backend.encode_batch_fast(words, add_special_tokens=False)]

    return WordIds(encode_words, whole[:start], whole[start + len(bare) :], tokenizer.eos_token_id)


__all__ = ["build_tokenizer", "tokenizes_word_by_word", "word_ids_encoder"]
