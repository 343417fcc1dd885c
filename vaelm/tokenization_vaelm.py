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

import importlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from .configuration_vaelm import SEGMENTATIONS

logger = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]

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


def new_tokenizer(segmentation: str, lowercase: bool) -> Tokenizer:
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


# Built from a corpus in vaelm.corpora.vocabulary since architecture v2; still importable from here (vaelm.compat
# lists it). A string import: this file travels with model folders, where vaelm need not be installed.
MOVED_TO_VOCABULARY = ("build_tokenizer", "tokenizes_word_by_word", "word_ids_encoder")


def __getattr__(name: str):
    if name in MOVED_TO_VOCABULARY:
        return getattr(importlib.import_module("vaelm.corpora.vocabulary"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SPECIAL_TOKENS",
    "check_tokenizer_matches",
    "default_segmentation",
    "encode_sentences",
    "load_tokenizer",
    "new_tokenizer",
    "prompt_post_processor",
    "spaced_words_decoder",
    "segment",
    "words_decoder",
    "words_normalizer",
    "wrap_tokenizer",
]
