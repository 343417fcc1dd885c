"""Word-level tokenizers built with `tokenizers`, wrapped as `PreTrainedTokenizerFast`, plus Chinese segmentation.

Every tokenizer splits on whitespace, so Chinese text is cut into words by jieba *before* it reaches the
tokenizer (`segment`); that keeps `tokenizer.json` free of Python code and loadable anywhere. The character-level
option is a regex pre-tokenizer and needs no segmentation step at all.

`words` segmentation (English running text) lives entirely in `tokenizer.json`, so `AutoTokenizer` applies it in a
process without vaelm: a normalizer (with `lowercase`, everything is lower-cased; otherwise nothing changes), a
regex pre-tokenizer (`WORD_PATTERN`) and a decoder (`words_decoder`) that writes the text back as it was written:
no space before `, . ! ? ; : %` or closing quotes, after opening quotes or a currency sign before a number, or
inside `n't`, `'s`, `'ll`, `'re`, `'ve`, `'m`, `'d` (either apostrophe), and a space before `'em`, `'twas`, `'tis` …
"""

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]

# Words that English writes with a leading apostrophe ('em, 'twas, 'tis, 'way, 'gainst, 'mong …): one token each,
# written back after a space, not glued to the word before like a closing quote. A curly ’ that starts a word is
# always such an elision ("’art", "’ere"; an opening quote is ‘); a straight ' only before these words.
ELISIONS = (
    "em",
    "twas",
    "tis",
    "twere",
    "twill",
    "tween",
    "twixt",
    "way",
    "gainst",
    "mong",
    "neath",
    "cause",
    "round",
    "nough",
    "un",
    "im",
    "er",
)
_ELISION = "(?:" + "|".join(ELISIONS) + r")\b"
# Punctuation-aware English words, tried left to right: "don't" -> do n't, "it’s" -> it ’s (either apostrophe, kept
# as written), "’twas" stays one word, "U.S." stays one word, numbers keep their inner . , :, hyphenated words stay
# whole ("sou’-wester" too), "..." and "--" are one token, other punctuation marks are tokens of their own. Straight
# double quotes are tokens too; being undirected, they decode with spaces.
WORD_PATTERN = (
    r"(?i)\w+?(?=n['’]t\b)|\w+(?=['’](?:s|ll|re|ve|m|d)\b)|n['’]t\b|['’](?:s|ll|re|ve|m|d)\b"
    rf"|(?<!\w)(?:’(?=\w)\w+(?:['’]?-\w+|['’]\w+)*|'{_ELISION})"
    r"|\w(?:\.\w)+\.|\d+(?:[.,:]\d+)+|\w+(?:['’]?-\w+|['’]\w+)*|\.{2,}|-{2,}|[^\w\s]"
)
# Decoding: no space before these (closing punctuation, contractions, a closing apostrophe that starts no elision) ...
_NO_SPACE_BEFORE = (
    r"(?i) (?=[,.!?;:%…)\]}”—]|’(?!\w)|'(?!" + _ELISION + r")|n['’]t\b|['’](?:s|ll|re|ve|m|d)\b|\.\.\.|--(?!-))"
)
# ... nor after these (opening quotes and brackets, dashes, a currency sign before its number).
_NO_SPACE_AFTER = r"(?<=[“‘(\[{—]) |(?<=[^-]--) |(?<=[£$€¥]) (?=\d)"


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
    if type(texts).__module__.startswith("pyarrow"):  # an Arrow column (no pyarrow import: this file travels)
        if segmentation != "jieba":
            return texts
        texts = texts.to_pylist()
    if segmentation != "jieba":
        return list(texts)
    cut = _jieba_cut()
    return [" ".join(word for word in cut(text) if word.strip()) for text in texts]


def _jieba_cut():
    """jieba's `cut`, or an `ImportError` that says how to install it (never a silent `<unk>` for every word)."""
    try:  # inside try: transformers' check of a model folder's imports does not demand jieba of English models
        import jieba
    except ImportError:
        raise ImportError(
            "This Chinese model segments text into words with jieba, which is not installed: pip install jieba "
            "(or pip install 'vaelm[zh]'). Without it every sentence would become <unk>."
        ) from None
    jieba.setLogLevel(60)
    return jieba.cut


def words_normalizer(lowercase: bool) -> normalizers.Normalizer:
    """
    The normalizer of `words` segmentation: lower case with `lowercase`, otherwise the text as written (curly and
    straight apostrophes, `…`, stay what they are, so that text decodes as it was written).
    """
    return normalizers.Sequence([normalizers.Lowercase()] if lowercase else [])


def words_decoder() -> decoders.Decoder:
    """
    Readable text from `words` tokens: words joined by spaces, then the spaces around punctuation taken out.

    `WordPiece` with a prefix no token carries simply joins tokens with spaces; `Fuse` makes the text one piece, so
    the two `Replace` steps see the whole sentence.
    """
    return decoders.Sequence(
        [
            decoders.WordPiece(prefix="\u0000\u0000", cleanup=False),
            decoders.Fuse(),
            decoders.Replace(Regex(_NO_SPACE_BEFORE), ""),
            decoders.Replace(Regex(_NO_SPACE_AFTER), ""),
        ]
    )


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
        # jieba: Chinese words join without spaces; other words with one space between them ("the company said"). A
        # continuation's leading space (pipeline("text-generation") appends it to its prompt) is VAELMTokenizer's.
        tokenizer.decoder = decoders.Fuse() if segmentation == "jieba" else spaced_words_decoder()
    if lowercase and segmentation != "words":
        tokenizer.normalizer = normalizers.Lowercase()
    return tokenizer


def spaced_words_decoder() -> decoders.Decoder:
    """
    Words joined by single spaces: `decode(ids)` is `"w1 … wn"`. (Tokenizers saved before vaelm 0.4 put a space
    before every word, `decoders.Replace("^", " ")`; [`VAELMTokenizer`] reads both the same way.)
    """
    return decoders.Sequence([decoders.WordPiece(prefix="\u0000\u0000", cleanup=False), decoders.Fuse()])


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
        cut = {"presegmented": True} if getattr(tokenizer, "segmentation", None) == "jieba" else {}
        ids = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False, **cut)["input_ids"]
    else:  # tokenizers' batch encoder straight away: twice as fast as the transformers call (benchmarks/data_speed.py)
        ids = [encoding.ids for encoding in backend.encode_batch_fast(texts, add_special_tokens=True)]
    eos = tokenizer.eos_token_id
    return [row if row and row[-1] == eos and len(row) > 1 else [*row, eos] for row in ids]


def wrap_tokenizer(
    tokenizer: Tokenizer, max_sentence_length: int = 200, segmentation: str = "whitespace"
) -> PreTrainedTokenizerFast:
    """
    Wrap a `tokenizers.Tokenizer` as a [`VAELMTokenizer`] that transformers (and `AutoTokenizer`) can use and save.

    Args:
        tokenizer (`tokenizers.Tokenizer`): the trained word-level tokenizer.
        max_sentence_length (`int`, *optional*, defaults to 200): longest sentence in words.
        segmentation (`str`, *optional*, defaults to `"whitespace"`): one of `SEGMENTATIONS`, kept in
            `tokenizer_config.json` (`"jieba"` makes the tokenizer cut Chinese text into words itself).
    """
    return VAELMTokenizer(
        tokenizer_object=tokenizer,
        segmentation=segmentation,
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
    Load a saved tokenizer as a [`VAELMTokenizer`], without the custom-code prompt that `AutoTokenizer` shows for a
    model folder (tokenizers saved by any vaelm version).

    Args:
        path (`str` or `Path`): a model folder, a tokenizer folder or a Hub id.
        hub_kwargs: passed to `from_pretrained` (`revision`, `token`, …).
    """
    tokenizer = VAELMTokenizer.from_pretrained(str(path), **hub_kwargs)
    for key in LOADING_KEYS:  # where this copy came from, not part of the tokenizer: not to be saved with it again
        tokenizer.init_kwargs.pop(key, None)
    return tokenizer


# What transformers adds to a loaded tokenizer's `init_kwargs` and would write into a re-saved tokenizer_config.json.
LOADING_KEYS = ("is_local", "local_files_only")


CONTEXT_WORD = "a"  # a word a continuation is decoded after, to learn whether a space joins it to what precedes


class VAELMTokenizer(PreTrainedTokenizerFast):
    """
    vaelm's word-level tokenizer: a `PreTrainedTokenizerFast` (everything lives in `tokenizer.json`) that also

    - cuts Chinese text into words with jieba before encoding when `segmentation` is `"jieba"` (as training did),
      and stops with an error that names jieba where it is missing, instead of encoding every sentence as `<unk>`;
    - decodes a sentence (ids that start with `<s>`) without a leading space, and a continuation (ids that do not,
      as `pipeline("text-generation")` decodes what follows its prompt) with the space that joins it to its prompt;
    - encodes an empty prompt as no ids (not `<s>`), so that the `text-generation` pipeline starts the sentence
      itself and returns it without a leading space.

    This file travels with every model folder (`tokenizer_config.json` names the class in `auto_map`), so
    `AutoTokenizer.from_pretrained(folder, trust_remote_code=True)` gives the same tokenizer without vaelm. English
    models also load as a plain `PreTrainedTokenizerFast` (their `tokenizer_class`); Chinese models name this class,
    since text that jieba has not cut would be `<unk>`.

    Args:
        segmentation (`str`, *optional*, defaults to `"whitespace"`): one of `SEGMENTATIONS`.
        kwargs: `PreTrainedTokenizerFast`'s (`tokenizer_object` or `tokenizer_file`, special tokens, …).
    """

    _auto_class = "AutoTokenizer"  # save_pretrained copies this file and writes auto_map
    # No __init__ of its own: transformers then loads tokenizer.json as it is, instead of rebuilding the backend.

    @property
    def segmentation(self) -> str:
        """The segmentation the tokenizer was built for (its `tokenizer_config.json`), `"whitespace"` if unsaid."""
        return self.init_kwargs.get("segmentation") or "whitespace"

    def _encode_plus(self, text, text_pair=None, *args, is_split_into_words: bool = False, **kwargs):
        presegmented = kwargs.pop("presegmented", False)  # encode_sentences has already cut the text
        if isinstance(text, str) and not text.strip() and text_pair is None and not is_split_into_words:
            # An empty prompt is no ids at all, not `<s>`: `pipeline("text-generation")` then lets generation start
            # the sentence, and decodes it from its `<s>` (no leading space), instead of as a continuation of "".
            text, kwargs["add_special_tokens"] = "", False
        if self.segmentation == "jieba" and not is_split_into_words and not presegmented:
            text = self._segment(text)
            text_pair = self._segment(text_pair) if text_pair is not None else None
        return super()._encode_plus(text, text_pair, *args, is_split_into_words=is_split_into_words, **kwargs)

    @staticmethod
    def _segment(text):
        if isinstance(text, str):
            return segment([text], "jieba")[0]
        if isinstance(text, (list, tuple)) and all(isinstance(item, str) for item in text):
            return segment(text, "jieba")
        return text

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None, **kwargs) -> str:
        ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
        text = super()._decode(
            ids,
            skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )
        if not text:
            return text
        if ids and ids[0] == self.bos_token_id:  # a sentence from its start
            return text[1:] if self._space_before_every_word() and text.startswith(" ") else text
        if self._space_before_every_word():  # decoded as " w1 w2": already joins what precedes
            return text
        special = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = self.convert_ids_to_tokens([i for i in ids if i not in special])
        return self.backend_tokenizer.decoder.decode([CONTEXT_WORD, *tokens])[len(CONTEXT_WORD) :]

    def _space_before_every_word(self) -> bool:
        # Tokenizers saved before vaelm 0.4 (the bundled model's) decode every word with a space before it.
        if getattr(self, "_old_spacing", None) is None:
            self._old_spacing = self.backend_tokenizer.decoder.decode(["a", "b"]) == " a b"
        return self._old_spacing

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedTokenizerFast.save_pretrained`; English models name the plain class as their
        `tokenizer_class`, so that `AutoTokenizer` loads them with no custom code."""
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        config_file = Path(save_directory) / "tokenizer_config.json"
        if self.segmentation != "jieba" and config_file.is_file():
            config = json.loads(config_file.read_text(encoding="utf-8"))
            config["tokenizer_class"] = "TokenizersBackend"
            config_file.write_text(
                json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        return saved


def check_tokenizer_matches(tokenizer: PreTrainedTokenizerFast, config) -> None:
    """Raise a `ValueError` saying what to do when a tokenizer cannot serve a model's embeddings."""
    if len(tokenizer) != config.vocab_size:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} entries but the model's vocab_size is {config.vocab_size}: they were "
            "not trained together. Use the tokenizer saved in the model folder (or drop --tokenizer)."
        )
    expected = {
        "pad": config.pad_token_id,
        "unk": config.unk_token_id,
        "bos": config.bos_token_id,
        "eos": config.eos_token_id,
    }
    found = {
        "pad": tokenizer.pad_token_id,
        "unk": tokenizer.unk_token_id,
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
    }
    if expected != found:
        raise ValueError(f"The tokenizer's special token ids {found} differ from the model's {expected}.")


__all__ = [
    "ELISIONS",
    "SPECIAL_TOKENS",
    "VAELMTokenizer",
    "check_tokenizer_matches",
    "default_segmentation",
    "encode_sentences",
    "load_tokenizer",
    "new_tokenizer",
    "prompt_post_processor",
    "segment",
    "spaced_words_decoder",
    "words_decoder",
    "words_normalizer",
    "wrap_tokenizer",
]
