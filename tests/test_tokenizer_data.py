"""Tokenizer (PTB's <unk>, Chinese segmentation, char level), corpus loading and the PTB download path."""

import functools
import http.server
import os
import shutil
import threading

import pytest

from vaelm.corpora import sources
from vaelm.corpora.data import VAELMCollator, tokenize_splits
from vaelm.corpora.sources import DataError, download_ptb, load_text_splits, read_sentences
from vaelm.corpora.vocabulary import build_tokenizer
from vaelm.tokenization_vaelm import encode_sentences, load_tokenizer, segment


def test_ptb_unk_maps_to_the_unk_id_without_a_hole():
    tokenizer = build_tokenizer(["the <unk> rose", "<unk> <unk> fell the"], vocab_size=100)
    vocab = tokenizer.get_vocab()
    assert len(tokenizer) == max(vocab.values()) + 1
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<pad>", "<unk>", "<s>", "</s>"]
    ids = tokenizer("the <unk> rose")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] != tokenizer.eos_token_id  # a prompt: <s> w1 … wn
    assert ids[2] == tokenizer.unk_token_id
    assert tokenizer("never seen")["input_ids"][1:] == [tokenizer.unk_token_id] * 2
    whole = encode_sentences(tokenizer, ["the <unk> rose", "never"])
    assert whole == [
        [*ids, tokenizer.eos_token_id],
        [tokenizer.bos_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id],
    ]


def test_vocab_size_and_min_frequency():
    tokenizer = build_tokenizer(["a a a b b c"], vocab_size=100, min_frequency=2)
    assert set(tokenizer.get_vocab()) == {"<pad>", "<unk>", "<s>", "</s>", "a", "b"}
    assert len(build_tokenizer(["a b c d e f g"], vocab_size=6)) == 6


def test_round_trip_through_save(tmp_path):
    tokenizer = build_tokenizer(["the market rose N percent"], vocab_size=50)
    tokenizer.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    text = "the market rose N percent"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    # A sentence decodes as written; a continuation (ids after the prompt's <s>) starts with the space that joins it.
    assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == text
    assert loaded.decode(loaded(text)["input_ids"][2:], skip_special_tokens=True) == " market rose N percent"
    assert loaded(text)["input_ids"][-1] != loaded.eos_token_id, "text is a prompt: no </s> after it"


def test_chinese_words_are_segmented_and_decoded_without_spaces():
    raw = ["我爱北京天安门。", "他想。", "我们在北京。"]
    segmented = segment(raw, "jieba")
    assert segmented[0].split() == ["我", "爱", "北京", "天安门", "。"]
    tokenizer = build_tokenizer(segmented, segmentation="jieba")
    assert "北京" in tokenizer.get_vocab(), "word level, not character level"
    ids = tokenizer(segment(["我爱北京。"], "jieba")[0])["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "我爱北京。"


def test_character_level_option():
    tokenizer = build_tokenizer(["我爱北京"], segmentation="char")
    assert tokenizer.convert_ids_to_tokens(encode_sentences(tokenizer, ["我爱京"], "char")[0]) == [
        "<s>",
        "我",
        "爱",
        "京",
        "</s>",
    ]


def test_read_sentences_normalises_messy_text(tmp_path):
    path = tmp_path / "messy.txt"
    path.write_bytes("\ufeff  the\tcat  sat \r\n\r\n   \n a dog\n".encode())
    assert read_sentences(path) == ["the cat sat", "a dog"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\ncaf\xe9 latin-1\n")
    with pytest.raises(DataError, match=r"bad\.txt, line 2"):
        read_sentences(bad)


def test_loads_ptb_files_as_ptb_writes_them(tiny_ptb):
    splits = load_text_splits(data_dir=tiny_ptb)
    assert {split: len(splits[split]) for split in splits} == {"train": 400, "valid": 40, "test": 40}
    first = (tiny_ptb / "ptb.train.txt").read_text(encoding="utf-8").split("\n")[0]
    assert first.startswith(" ") and first.endswith(" ") and splits["train"][0]["text"] == first.strip()


@pytest.mark.corpora
def test_loads_the_real_ptb_files(ptb_dir):
    splits = load_text_splits(data_dir=ptb_dir)
    assert {split: len(splits[split]) for split in splits} == {"train": 42068, "valid": 3370, "test": 3761}
    assert (
        splits["train"][1]["text"] == "pierre <unk> N years old will join the board as a nonexecutive director nov. N"
    )


def test_tokenize_splits_filters_long_sentences_and_counts(tmp_path, caplog):
    lines = [" ".join(["w"] * n) for n in (2, 4, 6, 7, 9, 30)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "valid.txt").write_text("w w\nw w w w w w w w\n")
    raw = load_text_splits(data_dir=tmp_path, splits=("train", "valid"))
    tokenizer = build_tokenizer(raw["train"]["text"])
    kept = tokenize_splits(raw, tokenizer, max_length=6)
    assert kept["train"]["length"] == [4, 6, 8]
    assert len(kept["valid"]) == 1
    assert "train: dropped 3 of 6 sentences longer than --max_length 6" in caplog.text
    cut = tokenize_splits(raw, tokenizer, max_length=6, truncate=True)
    assert len(cut["train"]) == len(raw["train"])
    assert all(row[-1] == tokenizer.eos_token_id and len(row) <= 8 for row in cut["train"]["input_ids"])


def test_collator_pads_right_with_mask():
    batch = VAELMCollator(pad_token_id=0)([{"input_ids": [2, 5, 3]}, {"input_ids": [2, 3]}])
    assert batch["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_ptb_download_verifies_md5(tiny_ptb, http_server, tmp_path, monkeypatch):
    """The download path, served locally: the tiny PTB-format corpus stands in, its md5s in place of PTB's."""
    root, url = http_server
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        shutil.copy(tiny_ptb / name, root / name)
    monkeypatch.setattr(sources, "PTB_MD5", {name: sources._md5(root / name) for name in sources.PTB_MD5})
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAELM_CACHE", str(cache))
    monkeypatch.setenv("VAELM_PTB_URL", url)
    splits = load_text_splits(dataset="ptb", splits=("valid",))
    assert len(splits["valid"]) == 40
    assert (cache / "ptb" / "ptb.train.txt").read_bytes() == (tiny_ptb / "ptb.train.txt").read_bytes()
    umask = os.umask(0o022)
    os.umask(umask)
    assert (cache / "ptb" / "ptb.train.txt").stat().st_mode & 0o777 == 0o644 & ~umask, "an ordinary file, not 0600"
    # A corrupt file on the server is refused and nothing half-written is left behind.
    (root / "ptb.test.txt").write_text("not the test set\n")
    target = tmp_path / "other"
    with pytest.raises(DataError, match="md5"):
        download_ptb(target, base_url=url)
    assert not (target / "ptb.test.txt").exists()
    assert sorted(p.name for p in target.iterdir()) == ["ptb.train.txt", "ptb.valid.txt"]
    # An unreachable server is a clear error too.
    with pytest.raises(DataError, match="Could not download"):
        download_ptb(tmp_path / "third", base_url="http://127.0.0.1:9/")


def test_hub_dataset_path_with_text_column_and_held_out_splits(tmp_path):
    """`--dataset` goes through datasets.load_dataset; a local dataset folder exercises the same code offline."""
    folder = tmp_path / "hub_like"
    folder.mkdir()
    rows = [f'{{"sentence": "  sentence   number {i} ", "id": {i}}}' for i in range(60)]
    (folder / "train.jsonl").write_text("\n".join([*rows, '{"sentence": "   ", "id": 99}']) + "\n")
    splits = load_text_splits(dataset=str(folder), text_column="sentence", validation_size=5)
    assert {name: len(part) for name, part in splits.items()} == {"train": 50, "valid": 5, "test": 5}
    assert splits["train"].column_names == ["text"]
    everything = set(splits["train"]["text"]) | set(splits["valid"]["text"]) | set(splits["test"]["text"])
    assert len(everything) == 60 and "sentence number 7" in everything
    with pytest.raises(DataError, match="no column 'text'"):
        load_text_splits(dataset=str(folder))


# ------------------------------------------------------------------------------------------- clear errors
def test_the_trainer_fallback_reads_arrow_columns(monkeypatch, caplog):
    """Where the fast vocabulary count disagrees with tokenizers' trainer on its sample, the trainer builds the
    vocabulary, from the same Arrow column (it used to fail on Arrow scalars)."""
    import pyarrow as pa

    import vaelm.corpora.vocabulary as vocabulary

    texts = pa.chunked_array([pa.array(["the cat sat", "a dog sat <unk>", "the end"]), pa.array(["the cat"])])
    expected = build_tokenizer(texts.to_pylist(), vocab_size=8).get_vocab()
    monkeypatch.setattr(vocabulary, "_counted_vocabulary", lambda *args, **kwargs: {"forced": 0})
    with caplog.at_level("WARNING"):
        tokenizer = vocabulary.build_tokenizer(texts, vocab_size=8)
    assert "using the trainer" in caplog.text
    assert tokenizer.get_vocab() == expected and "<unk>" in expected and len(expected) == 8


def test_a_vocabulary_too_small_for_words_is_one_clear_error():
    with pytest.raises(ValueError, match=r"--vocab_size 1 leaves no room for words.*Give --vocab_size above 4"):
        build_tokenizer(["the cat sat"], vocab_size=1)


def test_a_streaming_folder_whose_only_file_is_empty_is_one_clear_error(tmp_path):
    from vaelm.corpora.streaming import stream_text_splits, vocabulary_sample

    (tmp_path / "corpus.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"training file .*corpus.txt is empty\. Put one sentence per line"):
        stream_text_splits(tmp_path, ("train", "valid"))
    (tmp_path / "corpus.txt").write_text("\n\n  \n", encoding="utf-8")  # blank lines only: found while reading
    with pytest.raises(DataError, match=r"The training stream holds no sentence"):
        vocabulary_sample(stream_text_splits(tmp_path, ("train", "valid"))["train"], 100)


def test_reports_of_one_sentence_per_line_and_hub_sources(tmp_path):
    from vaelm.corpora.report import PreparationReport

    (tmp_path / "train.txt").write_text("the cat sat\n\nthe  dog ran away\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("a b\n", encoding="utf-8")
    report = PreparationReport()
    load_text_splits(data_dir=tmp_path, splits=("train", "valid"), report=report)
    assert (report.files, report.sentences, report.words_in, report.words_kept) == (2, 3, 9, 9)
    assert report.sentences_per_split == {"train": 2, "valid": 1} and report.unaccounted == 0
