"""The fast data path (`vaelm.corpora.word_ids`: Arrow reading, vocabulary counted and ids gathered per distinct word) gives
exactly what the tokenizer itself gives, for every segmentation, and falls back to it when it cannot."""

import logging
import subprocess
import sys

import pytest
from conftest import REPO
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from vaelm.configuration_vaelm import SEGMENTATIONS
from vaelm.corpora import word_ids
from vaelm.corpora.data import text_column, tokenize_splits
from vaelm.corpora.sources import load_text_splits, read_sentence_column, read_sentences
from vaelm.corpora.vocabulary import _words_without_unk, build_tokenizer, tokenizes_word_by_word
from vaelm.tokenization_vaelm import (
    SPECIAL_TOKENS,
    encode_sentences,
    new_tokenizer,
    prompt_post_processor,
    segment,
    wrap_tokenizer,
)

# Punctuation, contractions, straight and curly quotes, unicode case (final sigma, dotted I), PTB's literal <unk>,
# special tokens in the text, a line that is empty after normalisation, numbers and abbreviations, Chinese.
LINES = [
    "\ufeffHello, world!  Don't “quote” me — it’s fine…",
    "the <unk> rose <unk> N percent",
    "<unk>",
    "…",
    "U.S. officials paid $3.14 for a well-known rock'n'roll band --- twice...",
    "ΣΊΣΥΦΟΣ Σίσυφος İstanbul ÉCOLE straße",
    "<s> x </s>",
    "x </s>",
    "</s>",
    "'tis y'all can't won't I'm we'd they're you've",
    "\"Quoted,\" she said. 'Single' (brackets) [square] {curly}!?",
    "\tTabs\tand  runs   of spaces, NBSP\u00a0here and a form\x1cseparator ",
    "我爱北京天安门。他说：“你好！”",
    "ZZZrare words appear once",
    "   ",
    "",
    "the end.\r",
]


@pytest.fixture()
def corpus(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text("\n".join(LINES * 3) + "\n", encoding="utf-8")
    return tmp_path


def reference_tokenizer(texts, segmentation, lowercase, vocab_size):
    """The tokenizer as tokenizers' own WordLevelTrainer builds it (the path before the fast one)."""
    tokenizer = new_tokenizer(segmentation, lowercase)
    tokenizer.train_from_iterator(
        _words_without_unk(texts),
        trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False),
    )
    tokenizer.post_processor = prompt_post_processor(tokenizer.token_to_id("<s>"))
    return tokenizer


def test_arrow_reader_reads_what_the_line_reader_reads(corpus):
    path = corpus / "train.txt"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n", 5) + b"\n\n \t\nlast line without newline")
    assert read_sentence_column(path).to_pylist() == read_sentences(path)


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("segmentation", SEGMENTATIONS)
def test_fast_path_gives_the_tokenizers_vocabulary_and_ids(corpus, segmentation, lowercase, monkeypatch, caplog):
    monkeypatch.setattr(word_ids, "CHUNK", 7)  # many pieces: words met in one piece are reused in the next
    raw = load_text_splits(data_dir=corpus, splits=("train", "valid"))
    texts = raw["train"]["text"][:]
    train_texts = segment(text_column(raw["train"]), segmentation)
    with caplog.at_level(logging.WARNING):
        tokenizer = build_tokenizer(train_texts, vocab_size=40, segmentation=segmentation, lowercase=lowercase)
    reference = reference_tokenizer(segment(texts, segmentation), segmentation, lowercase, vocab_size=40)
    assert tokenizer.backend_tokenizer.to_str() == reference.to_str()
    assert tokenizes_word_by_word(tokenizer)
    expected = encode_sentences(tokenizer, texts, segmentation)
    assert any(tokenizer.unk_token_id in row[1:-1] for row in expected)  # rare words do become <unk>
    with caplog.at_level(logging.WARNING):
        for max_length, truncate in [(None, False), (4, False), (4, True)]:
            tokenized = tokenize_splits(raw, tokenizer, segmentation, max_length, truncate)["train"]
            rows = expected
            if max_length is not None:
                limit = max_length + 2
                rows = (
                    [row if len(row) <= limit else row[: limit - 1] + row[-1:] for row in rows]
                    if truncate
                    else [row for row in rows if len(row) <= limit]
                )
            assert tokenized["input_ids"][:] == rows
            assert tokenized["length"][:] == [len(row) for row in rows]
    assert "differ" not in caplog.text and "disagrees" not in caplog.text  # the fast paths were taken


def test_other_tokenizers_and_a_failed_sample_check_fall_back_to_the_tokenizer(corpus, monkeypatch, caplog):
    raw = load_text_splits(data_dir=corpus, splits=("train", "valid"))
    texts = raw["train"]["text"][:]
    # A pre-tokenizer vaelm does not build: not known to stay inside words, so the tokenizer itself runs.
    other = Tokenizer(models.WordLevel(unk_token="<unk>"))
    other.pre_tokenizer = pre_tokenizers.Whitespace()
    other.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, show_progress=False))
    other.post_processor = prompt_post_processor(other.token_to_id("<s>"))
    other = wrap_tokenizer(other)
    assert not tokenizes_word_by_word(other)
    assert tokenize_splits(raw, other)["train"]["input_ids"][:] == encode_sentences(other, texts)
    # A fast path that went wrong is caught by the sample check.
    tokenizer = build_tokenizer(text_column(raw["train"]), segmentation="words", lowercase=True)
    real_rows = word_ids.WordIds._rows
    monkeypatch.setattr(word_ids.WordIds, "_rows", lambda self, *a: (lambda o, v: (o, v * 0))(*real_rows(self, *a)))
    with caplog.at_level(logging.WARNING):
        tokenized = tokenize_splits(raw, tokenizer, "words")["train"]
    assert "differ from the tokenizer's on a sample" in caplog.text
    assert tokenized["input_ids"][:] == encode_sentences(tokenizer, texts, "words")


def test_sentence_splitting_in_two_processes_and_with_a_kept_buffer_matches_bling_fire(tmp_path, monkeypatch):
    import blingfire
    import pyarrow as pa

    from vaelm.corpora.sentences import _text_to_sentences
    from vaelm.corpora.sources import raw_text_splits

    texts = ["", "x", "Mr. Holmes sat. “Well,” said he, “it’s late!” U.S. law… 我爱北京。", "word " * 40_000 + "end."]
    assert [_text_to_sentences()(text) for text in texts] == [blingfire.text_to_sentences(text) for text in texts]
    for index in range(3):
        paragraphs = [f"Book {index}, paragraph {p}. Dr. Watson came in. “Why?” he asked.\n" for p in range(60)]
        (tmp_path / f"book{index}.txt").write_text("\n".join(paragraphs), encoding="utf-8")
    serial = raw_text_splits(tmp_path)
    monkeypatch.setattr(pa, "cpu_count", lambda: 2)
    assert raw_text_splits(tmp_path) == serial
    assert len(serial["train"]) > 400 and serial["valid"] and serial["test"]


@pytest.mark.parametrize("segmentation", ["words", "jieba"])
def test_streamed_files_read_in_blocks_give_the_same_sentences_and_ids(corpus, segmentation):
    from vaelm.corpora.sources import iter_sentence_columns
    from vaelm.corpora.streaming import stream_text_splits

    path = corpus / "train.txt"
    blocks = list(iter_sentence_columns(path, block_size=40))  # blocks cut inside lines, carried to the next
    assert len(blocks) > 3 and [s for block in blocks for s in block.to_pylist()] == read_sentences(path)
    stream = stream_text_splits(corpus, ("train", "valid"))
    texts = [row["text"] for row in stream["train"]]
    assert texts == read_sentences(path)
    tokenizer = build_tokenizer(segment(texts, segmentation), vocab_size=40, segmentation=segmentation, lowercase=True)
    for max_length, truncate in [(None, False), (4, False), (4, True)]:
        rows = encode_sentences(tokenizer, texts, segmentation)
        if max_length is not None:
            rows = (
                [row if len(row) <= 6 else row[:5] + row[-1:] for row in rows]
                if truncate
                else [row for row in rows if len(row) <= 6]
            )
        streamed = tokenize_splits(stream, tokenizer, segmentation, max_length, truncate)["train"]
        assert [(row["input_ids"], row["length"]) for row in streamed] == [(row, len(row)) for row in rows]


def test_sentence_splitting_workers_do_not_inherit_the_parents_signal_handlers():
    # Forked workers inherit the parent's Python signal handlers. A web server's SIGTERM handler (gradio installs one)
    # kept a worker alive through Pool.terminate(), and a suite run hung for good after the split had finished.
    import signal

    from vaelm.corpora.sources import splitting_pool

    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        with splitting_pool(2) as pool:
            seen = pool.map(signal.getsignal, [signal.SIGTERM, signal.SIGINT] * 2, chunksize=1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIG_DFL, signal.SIG_IGN] * 2


def test_terminating_the_splitting_pool_before_its_workers_have_started_does_not_hang():
    # The race of the test above, made certain: each worker takes a second to reach its own handlers, and the pool is
    # terminated at once. Before the fix the SIGTERM reached the inherited do-nothing handler and the pool hung.
    script = """
import signal, time
import vaelm.corpora.sources as data

reset = data._reset_worker_signals
data._reset_worker_signals = lambda: (time.sleep(1.0), reset())
signal.signal(signal.SIGTERM, lambda signum, frame: None)
started = time.perf_counter()
with data.splitting_pool(2):
    pass
print(f"terminated in {time.perf_counter() - started:.1f} s")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0 and "terminated in" in result.stdout, result.stderr[-2000:]
