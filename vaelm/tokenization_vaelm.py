"""Word-level tokenizers built with `tokenizers`, wrapped as `PreTrainedTokenizerFast`, plus Chinese segmentation.

Every tokenizer splits on whitespace, so Chinese text is cut into words by jieba *before* it reaches the
tokenizer (`segment`); that keeps `tokenizer.json` free of Python code and loadable anywhere. The character-level
option is a regex pre-tokenizer and needs no segmentation step at all.

`words` segmentation (English running text) lives entirely in `tokenizer.json`, so `AutoTokenizer` applies it in a
process without vaelm: a normalizer (curly apostrophes inside words become `'`, `…` becomes `...`, and with
`lowercase` everything is lower-cased), a regex pre-tokenizer (`WORD_PATTERN`) and a decoder (`words_decoder`) that
writes the text back without a space before `, . ! ? ; :` or closing quotes, after opening quotes, or inside `n't`,
`'s`, `'ll`, `'re`, `'ve`, `'m`, `'d`.
"""

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .word_ids import WordIds, as_arrow, distinct_words, sample_indices

logger = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]
SEGMENTATIONS = ("whitespace", "jieba", "char", "words")

# Punctuation-aware English words, tried left to right: "don't" -> do n't, "it's" -> it 's, "U.S." stays one word,
# numbers keep their inner . , :, hyphenated words stay whole, "..." and "--" are one token, other punctuation
# marks are tokens of their own. Straight double quotes are tokens too; being undirected, they decode with spaces.
WORD_PATTERN = (
    r"(?i)\w+?(?=n't\b)|\w+(?='(?:s|ll|re|ve|m|d)\b)|n't\b|'(?:s|ll|re|ve|m|d)\b"
    r"|\w(?:\.\w)+\.|\d+(?:[.,:]\d+)+|\w+(?:[-']\w+)*|\.{2,}|-{2,}|[^\w\s]"
)
# Decoding: no space before these (closing punctuation, contractions) ...
_NO_SPACE_BEFORE = r" (?=[,.!?;:)\]}”’'—]|n't\b|'(?:s|ll|re|ve|m|d)\b|\.\.\.)"
# ... nor after these (opening quotes and brackets, dashes).
_NO_SPACE_AFTER = r"(?<=[“‘(\[{—]) "


def default_segmentation(lang: str) -> str:
    """Chinese is segmented into words with jieba; everything else is split on whitespace."""
    return "jieba" if lang == "zh" else "whitespace"


def segment(texts: Iterable[str], segmentation: str) -> list[str]:
    """
    Prepare raw sentences for the whitespace-splitting tokenizer.

    Args:
        texts (`Iterable[str]`): raw sentences (an Arrow string column is returned as it is, unless jieba cuts it).
        segmentation (`str`): `"whitespace"` (returned as is), `"jieba"` (words joined by spaces) or `"char"`
            (returned as is: the tokenizer itself splits characters).

    Returns:
        `list[str]`: the sentences, ready for the tokenizer.
    """
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        if segmentation != "jieba":
            return texts
        texts = texts.to_pylist()
    if segmentation != "jieba":
        return list(texts)
    try:
        import jieba
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("Chinese word segmentation needs jieba: pip install 'vaelm[zh]'.") from error
    jieba.setLogLevel(60)
    return [" ".join(word for word in jieba.cut(text) if word.strip()) for text in texts]


def words_normalizer(lowercase: bool) -> normalizers.Normalizer:
    """The normalizer of `words` segmentation: apostrophes inside words as `'`, `…` as `...`, optionally lower case."""
    steps = [normalizers.Replace(Regex(r"(?<=\w)’(?=\w)"), "'"), normalizers.Replace("…", "...")]
    return normalizers.Sequence(steps + ([normalizers.Lowercase()] if lowercase else []))


def words_decoder() -> decoders.Decoder:
    """
    Readable text from `words` tokens: words joined by spaces, then the spaces around punctuation taken out.

    `WordPiece` with a prefix no token carries simply joins tokens with spaces; `Fuse` makes the text one piece, so
    the two `Replace` steps see the whole sentence.
    """
    return decoders.Sequence([
        decoders.WordPiece(prefix="\u0000\u0000", cleanup=False),
        decoders.Fuse(),
        decoders.Replace(Regex(_NO_SPACE_BEFORE), ""),
        decoders.Replace(Regex(_NO_SPACE_AFTER), ""),
    ])


def _words_without_unk(texts: Iterable[str]) -> Iterator[str]:
    # PTB spells rare words as a literal <unk>; counting it would add a second, ordinary <unk> entry and leave a
    # hole at the special id (len(tokenizer) != max id + 1).
    for text in texts:
        yield " ".join(word for word in text.split() if word != UNK)


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
            one distinct word at a time ([`vaelm.word_ids`]), with the same result as `WordLevelTrainer`, much faster.
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
    tokenizer = _new_tokenizer(segmentation, lowercase)
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
    return wrap_tokenizer(tokenizer, max_sentence_length)


def _new_tokenizer(segmentation: str, lowercase: bool) -> Tokenizer:
    """An untrained `WordLevel` tokenizer with the normalizer, pre-tokenizer and decoder of a segmentation."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    if segmentation == "char":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
        )
        tokenizer.decoder = decoders.Fuse()
    elif segmentation == "words":
        tokenizer.normalizer = words_normalizer(lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated")]
        )
        tokenizer.decoder = words_decoder()
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        # jieba: Chinese words join without spaces. Otherwise every word follows a space (" the company"), so that
        # a decoded continuation joins its prompt, as pipeline("text-generation") concatenates them.
        tokenizer.decoder = decoders.Fuse() if segmentation == "jieba" else spaced_words_decoder()
    if lowercase and segmentation != "words":
        tokenizer.normalizer = normalizers.Lowercase()
    return tokenizer


# ------------------------------------------------------------------------------------- the word-by-word fast path
@lru_cache(maxsize=1)
def _word_local_pipelines() -> tuple[str, ...]:
    # The (normalizer, pre-tokenizer) pairs that vaelm builds: none of them looks across a space.
    pipelines = set()
    for segmentation in SEGMENTATIONS:
        for lowercase in (False, True):
            state = json.loads(_new_tokenizer(segmentation, lowercase).to_str())
            pipelines.add(json.dumps([state["normalizer"], state["pre_tokenizer"]], sort_keys=True))
    return tuple(pipelines)


def tokenizes_word_by_word(tokenizer) -> bool:
    """
    Whether a tokenizer tokenizes a sentence as its space-separated words one after the other: a `WordLevel` model
    behind one of vaelm's own normalizer and pre-tokenizer pairs, special tokens without spaces, no padding or
    truncation. Such a tokenizer can take the fast path of `vaelm.word_ids`.

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
    sample = arrow.take(sample_indices(len(arrow))).to_pylist()
    trained = _new_tokenizer_like(tokenizer)
    trained.train_from_iterator(_words_without_unk(sample), trainers.WordLevelTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False))
    if trained.get_vocab() != _counted_vocabulary(tokenizer, pa.chunked_array([pa.array(sample, pa.string())]),
                                                  vocab_size, min_frequency):
        logger.warning("The fast vocabulary count disagrees with tokenizers' trainer on a sample; using the trainer.")
        return None
    return _counted_vocabulary(tokenizer, arrow, vocab_size, min_frequency)


def _new_tokenizer_like(tokenizer: Tokenizer) -> Tokenizer:
    other = Tokenizer(models.WordLevel(unk_token=UNK))
    other.normalizer, other.pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    return other


def word_ids_encoder(tokenizer) -> WordIds | None:
    """
    A [`vaelm.word_ids.WordIds`] giving the ids of [`encode_sentences`] word by word, or `None` when the tokenizer
    does not tokenize word by word (see [`tokenizes_word_by_word`]).
    """
    if not tokenizes_word_by_word(tokenizer):
        return None
    backend = tokenizer.backend_tokenizer
    whole, bare = backend.encode("a").ids, backend.encode("a", add_special_tokens=False).ids
    start = next((i for i in range(len(whole) - len(bare) + 1) if whole[i: i + len(bare)] == bare), None)
    if start is None:
        return None

    def encode_words(words: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in backend.encode_batch_fast(words, add_special_tokens=False)]

    return WordIds(encode_words, whole[:start], whole[start + len(bare):], tokenizer.eos_token_id)


def spaced_words_decoder() -> decoders.Replace:
    """Decode each word with a space before it: `decode(ids)` is `" w1 … wn"`, and a continuation `" wk+1 …"`."""
    return decoders.Replace(Regex("^"), " ")


def prompt_post_processor(bos_id: int) -> processors.TemplateProcessing:
    """`<s>` before the words and no `</s>` after them: tokenized text is a prompt that generation can continue."""
    return processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)])


def encode_sentences(tokenizer, texts: Sequence[str], segmentation: str = "whitespace") -> list[list[int]]:
    """
    Token ids `<s> w1 … wn </s>` of whole sentences, as training and evaluation score them; never truncated.

    The tokenizer adds only `<s>` (text is a prompt to continue); a whole sentence also ends with `</s>`. Tokenizers
    saved before that change still add `</s>` themselves, and it is not added twice.

    Args:
        tokenizer: the model's tokenizer.
        texts (`Sequence[str]`): raw sentences.
        segmentation (`str`, *optional*, defaults to `"whitespace"`): the model's `config.segmentation`.
    """
    texts = segment(texts, segmentation)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.padding is not None or backend.truncation is not None:
        ids = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    else:  # tokenizers' batch encoder straight away: twice as fast as the transformers call (benchmarks/data_speed.py)
        ids = [encoding.ids for encoding in backend.encode_batch_fast(texts, add_special_tokens=True)]
    eos = tokenizer.eos_token_id
    return [row if row and row[-1] == eos and len(row) > 1 else [*row, eos] for row in ids]


def wrap_tokenizer(tokenizer: Tokenizer, max_sentence_length: int = 200) -> PreTrainedTokenizerFast:
    """Wrap a `tokenizers.Tokenizer` so that transformers (and `AutoTokenizer`) can use and save it."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        model_max_length=max_sentence_length + 2,
        padding_side="right",
        model_input_names=["input_ids", "attention_mask"],
    )


def load_tokenizer(path: str | Path, **hub_kwargs) -> PreTrainedTokenizerFast:
    """
    Load a saved tokenizer without the custom-code prompt that `AutoTokenizer` shows for a model folder.

    Args:
        path (`str` or `Path`): a model folder, a tokenizer folder or a Hub id.
        hub_kwargs: passed to `from_pretrained` (`revision`, `token`, …).
    """
    return PreTrainedTokenizerFast.from_pretrained(str(path), **hub_kwargs)


def check_tokenizer_matches(tokenizer: PreTrainedTokenizerFast, config) -> None:
    """Raise a `ValueError` saying what to do when a tokenizer cannot serve a model's embeddings."""
    if len(tokenizer) != config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} entries but the model's vocab_size is {config.vocab_size}: they were "
            "not trained together. Use the tokenizer saved in the model folder (or drop --tokenizer)."
        )
    expected = {"pad": config.pad_token_id, "unk": config.unk_token_id, "bos": config.bos_token_id, "eos": config.eos_token_id}
    found = {
        "pad": tokenizer.pad_token_id, "unk": tokenizer.unk_token_id, "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id
    }
    if expected != found:
        raise ValueError(f"The tokenizer's special token ids {found} differ from the model's {expected}.")


__all__ = [
    "SPECIAL_TOKENS",
    "build_tokenizer",
    "check_tokenizer_matches",
    "default_segmentation",
    "encode_sentences",
    "load_tokenizer",
    "prompt_post_processor",
    "spaced_words_decoder",
    "segment",
    "tokenizes_word_by_word",
    "word_ids_encoder",
    "words_decoder",
    "words_normalizer",
    "wrap_tokenizer",
]
