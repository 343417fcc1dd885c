"""Real corpora: running text -> sentences, `words` segmentation in tokenizer.json, readable output, streaming
shards across ranks, and a two-"machine" accelerate run."""

import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import MULTI_PROCESS_MODEL_FLAGS, REPO, free_port, run_with_one_retry_on_gloo_abort, train_tiny

from vaelm.corpora.cleaning import clean_paragraphs
from vaelm.corpora.data import tokenize_splits
from vaelm.corpora.sentences import paragraphs, split_sentences
from vaelm.corpora.sources import raw_text_splits
from vaelm.corpora.streaming import group_by_length, rank_shard, stream_text_splits, vocabulary_sample
from vaelm.corpora.vocabulary import build_tokenizer

NAMES = ["Mr. Holmes", "Mrs. Hudson", "Dr. Watson", "Inspector Lestrade", "Miss Stoner"]
ACTS = ["looked at the fire", "didn’t answer", "said nothing at all", "opened the door", "walked to the window"]
PLACES = ["in the U.S. office", "at Baker Street", "by the river", "in the old house"]


def write_book(path: Path, paragraphs_count: int, seed: int) -> list[str]:
    """A Gutenberg-like book: licence header, heading, wrapped paragraphs with dialogue; returns its sentences."""
    rng = random.Random(seed)
    sentences, lines = (
        [],
        [
            "The Licence header",
            "",
            "*** START OF THE PROJECT GUTENBERG EBOOK 1 ***",
            "",
            "CHAPTER I.",
            "",
            "A Scandal",
            "",
        ],
    )
    for _ in range(paragraphs_count):
        paragraph = []
        for _ in range(rng.randint(1, 3)):
            sentence = f"{rng.choice(NAMES)} {rng.choice(ACTS)} {rng.choice(PLACES)}."
            if rng.random() < 0.3:
                sentence = f"“Well,” said {rng.choice(NAMES)}, “it’s late!”"
            paragraph.append(sentence)
        sentences += paragraph
        words = " ".join(paragraph).split()
        lines += [" ".join(words[i : i + 7]) for i in range(0, len(words), 7)] + [""]
    lines += ["*** END OF THE PROJECT GUTENBERG EBOOK 1 ***", "The licence footer."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sentences


@pytest.fixture(scope="module")
def raw_books(tmp_path_factory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("raw_books")
    sentences = []
    for index in range(3):
        sentences += write_book(folder / f"book{index}.txt", 80, seed=index)
    return folder, sentences


# ------------------------------------------------------------------------------------------- sentence splitting
def test_english_sentences_keep_abbreviations_and_quotes():
    text = (
        "“Hello,” said Mr. Holmes. He lived in the U.S. for years. “Really?” she asked! "
        "Dr. Watson agreed... Then St. John left. “Go!” “Now?”"
    )
    assert split_sentences(text) == [
        "“Hello,” said Mr. Holmes.",
        "He lived in the U.S. for years.",
        "“Really?” she asked!",
        "Dr. Watson agreed...",
        "Then St. John left.",
        "“Go!”",
        "“Now?”",
    ]


def test_chinese_sentences_keep_closing_quotes():
    text = "他说：“你好。”我走了！真的吗？「好。」后来……他笑了"
    assert split_sentences(text, "zh") == ["他说：“你好。”", "我走了！", "真的吗？", "「好。」", "后来……", "他笑了"]


def test_wrapped_lines_join_and_gutenberg_clutter_is_dropped(raw_books):
    folder, expected = raw_books
    lines = (folder / "book0.txt").read_text(encoding="utf-8").splitlines()
    kept = list(clean_paragraphs(lines))
    assert not any("START OF" in p or "CHAPTER" in p or "licence" in p.lower() or p == "A Scandal" for p in kept)
    assert list(paragraphs(["one", "two", "", "", "three"])) == ["one two", "three"]
    assert list(paragraphs(["一行", "二行"], lang="zh")) == ["一行二行"]
    splits = raw_text_splits(folder)
    found = splits["train"] + splits["valid"] + splits["test"]
    assert Counter(found) == Counter(expected)  # every sentence once, none cut or merged
    # The documented rule: consecutive blocks of 10 sentences, block b % 20 == 18 -> valid, 19 -> test.
    ordered = [s for book in sorted(folder.glob("*.txt")) for s in raw_text_splits_of(book)]
    assert splits["valid"] == [s for i, s in enumerate(ordered) if (i // 10) % 20 == 18]
    assert splits["test"] == [s for i, s in enumerate(ordered) if (i // 10) % 20 == 19]


def raw_text_splits_of(book: Path) -> list[str]:
    from vaelm.corpora.sentences import sentences_from_lines

    return list(sentences_from_lines(book.read_text(encoding="utf-8").splitlines()))


def test_bad_bytes_in_raw_text_name_file_and_line(tmp_path):
    from vaelm.corpora.sources import DataError

    (tmp_path / "book.txt").write_bytes("Fine line.\n\nCaf\xe9 au lait.\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"book.txt, line 3: not valid UTF-8"):
        raw_text_splits(tmp_path)


# ------------------------------------------------------------------------------------------- words segmentation
def test_words_segmentation_and_lowercase_round_trip_without_vaelm(tmp_path):
    texts = ["“Hello,” she said. I don’t know; it’s Mr. Smith’s car!", "Isn't it the U.S. (really)?", "Yes: 3.5 km"]
    tokenizer = build_tokenizer(texts * 3, segmentation="words", lowercase=True)
    tokenizer.save_pretrained(tmp_path)
    script = (
        "import json, sys\n"
        "from transformers import AutoTokenizer\n"
        f"tok = AutoTokenizer.from_pretrained({str(tmp_path)!r})\n"
        "texts = json.loads(sys.argv[1])\n"
        "ids = [tok(t)['input_ids'] for t in texts]\n"
        "print(json.dumps({'tokens': [tok.convert_ids_to_tokens(i) for i in ids],\n"
        "                  'decoded': [tok.decode(i, skip_special_tokens=True) for i in ids],\n"
        "                  'vaelm_loaded': 'vaelm' in sys.modules}))\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(texts)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert not output["vaelm_loaded"]
    assert output["tokens"][0] == [
        "<s>",
        "“",
        "hello",
        ",",
        "”",
        "she",
        "said",
        ".",
        "i",
        "do",
        "n’t",
        "know",
        ";",
        "it",
        "’s",
        "mr",
        ".",
        "smith",
        "’s",
        "car",
        "!",
    ]  # a prompt: no </s>
    assert "u.s." in output["tokens"][1] and "3.5" in output["tokens"][2]
    # Decoded as written (lower-cased): curly apostrophes stay curly.
    assert output["decoded"] == [
        "“hello,” she said. i don’t know; it’s mr. smith’s car!",
        "isn't it the u.s. (really)?",
        "yes: 3.5 km",
    ]


def test_existing_segmentations_are_unchanged():
    tokenizer = build_tokenizer(["the cat sat .", "a dog"], segmentation="whitespace")
    backend = tokenizer.backend_tokenizer
    assert backend.normalizer is None  # no lower-casing, no punctuation splitting: PTB stays PTB
    ids = tokenizer("The cat sat .")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", "<unk>", "cat", "sat", "."]  # a prompt: no </s>
    # A sentence decodes without a leading space; a continuation (no <s>) with the space that joins it to its prompt,
    # as pipeline("text-generation") appends it.
    assert tokenizer.decode(ids, skip_special_tokens=True) == "cat sat ."
    assert tokenizer.decode(ids[3:], skip_special_tokens=True) == " sat ."


def test_tiny_model_on_raw_text_writes_readable_english(raw_books, tmp_path):
    from vaelm.generation.sentence_vae import SentenceVAE

    folder, _ = raw_books
    out = train_tiny(
        folder,
        tmp_path / "raw-model",
        "--sentence_split",
        "--lowercase",
        "--segmentation",
        "words",
        "--max_steps",
        "40",
    )
    config = json.loads((out / "config.json").read_text())
    assert config["segmentation"] == "words" and config["sentence_split"] is True
    vae = SentenceVAE.from_pretrained(out, device="cpu")
    sentence = "“Well,” said Dr. Watson, “it’s late!”"
    ids = vae.tokenize([sentence])["input_ids"][0].tolist()
    assert vae.to_text(ids[1:]) == "“well,” said dr. watson, “it’s late!”"
    import torch

    from vaelm.generation.decoding import DecodingConfig

    torch.manual_seed(0)
    samples = [row["text"] for row in vae.sample_prior(20, DecodingConfig(strategy="sample", max_new_tokens=30))]
    assert any(re.search(r"[a-z][,.!?]", text) for text in samples), samples  # the model writes punctuation ...
    assert not any(re.search(r" [,.!?;]", text) for text in samples), samples  # ... never after a space


# ------------------------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("files", [2, 3])  # 2 files: one file per rank; 3: each rank keeps every 2nd sentence
def test_two_rank_streaming_epoch_covers_every_sentence_once(tmp_path, files):
    sentences = [f"sentence number {i} is here ." + " word" * (i % 7) for i in range(230)]
    for index in range(files):
        part = sentences[index::files]
        (tmp_path / f"train-{index:05d}.txt").write_text("\n".join(part) + "\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("a valid sentence .\n", encoding="utf-8")
    raw = stream_text_splits(tmp_path, ("train", "valid"))
    tokenizer = build_tokenizer(vocabulary_sample(raw["train"], 1000))
    tokenized = tokenize_splits(raw, tokenizer)
    grouped = group_by_length(tokenized["train"], batch_size=8, buffer_size=64)
    seen = []
    for rank in range(2):
        shard = rank_shard(grouped, rank, 2)
        seen += [tokenizer.decode(row["input_ids"], skip_special_tokens=True).strip() for row in shard]
    assert Counter(seen) == Counter(sentences)
    # Batches within a buffer are length-grouped: most batches of 8 hold one or two lengths.
    lengths = [row["length"] for row in grouped]
    spreads = [max(lengths[i : i + 8]) - min(lengths[i : i + 8]) for i in range(0, 64, 8)]
    assert sum(spread <= 1 for spread in spreads) >= 6


def test_vocabulary_comes_from_the_stream_sample_and_held_out_splits_are_disjoint(tmp_path):
    from vaelm.corpora.streaming import held_out_split

    lines = [f"early words only {i}" for i in range(300)] + [f"late vocabulary {i}" for i in range(300)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = stream_text_splits(tmp_path, ("train", "valid", "test"), validation_size=1000)
    sample = vocabulary_sample(raw["train"], 200)
    assert all(text.startswith("early") for text in sample) and len(sample) == 200
    tokenizer = build_tokenizer(sample)
    assert tokenizer.convert_tokens_to_ids("late") == tokenizer.unk_token_id
    parts = {split: [row["text"] for row in raw[split]] for split in ("train", "valid", "test")}
    assert sorted(parts["train"] + parts["valid"] + parts["test"]) == sorted(lines)
    assert 10 <= len(parts["valid"]) <= 50 and 10 <= len(parts["test"]) <= 50
    assert all(held_out_split(text) == split for split, texts in parts.items() for text in texts)


def test_resumed_streaming_run_continues_where_it_stopped(tmp_path):
    """A --streaming run stopped at a checkpoint and resumed ends with the weights of the run never stopped: the
    resumed run reads the batches after the checkpoint, not the stream from its start (the Trainer skips the
    batches already trained on, and the length-grouped order is the same on every pass). With
    --ignore_data_skip true, which restarts the stream, the weights differ."""
    from conftest import write_corpus
    from safetensors.torch import load_file

    corpus = write_corpus(tmp_path / "corpus", {"train": 300, "valid": 20})
    flags = [
        "--streaming",
        "--batch_size",
        "8",
        "--stream_buffer",
        "64",
        "--lr_scheduler_type",
        "constant",
        "--save_strategy",
        "steps",
        "--save_steps",
        "4",
        "--logging_steps",
        "4",
    ]
    straight = train_tiny(corpus, tmp_path / "straight", *flags, "--max_steps", "12")
    stopped = train_tiny(corpus, tmp_path / "resumed", *flags, "--max_steps", "4")
    first_four = load_file(stopped / "model.safetensors")
    resumed = train_tiny(corpus, tmp_path / "resumed", *flags, "--max_steps", "12", "--resume_from_checkpoint", "true")
    expected, got = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    assert not all(torch.equal(first_four[name], got[name]) for name in got)  # it did train on after step 4


# ------------------------------------------------------------------------------------------- two machines
def test_two_machine_accelerate_run_with_streaming(raw_books, tmp_path):
    """Two `accelerate launch` commands (machine_rank 0 and 1) of configuration/accelerate/multi_node.yaml form
    one 2-rank gloo job on this host, streaming raw books, and save the model."""
    folder, _ = raw_books
    out = tmp_path / "two-machines"
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def commands(port: str) -> list[list[str]]:  # a port per launch: a retry need not wait for the last one's
        return [
            [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--config_file",
                "configuration/accelerate/multi_node.yaml",
                "--num_machines",
                "2",
                "--num_processes",
                "2",
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                "127.0.0.1",
                "--main_process_port",
                port,
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "scripts/train.py",
                "--data_dir",
                str(folder),
                "--streaming",
                "--sentence_split",
                "--segmentation",
                "words",
                "--lowercase",
                "--vocab_sample",
                "300",
                "--output_dir",
                str(out),
                *MULTI_PROCESS_MODEL_FLAGS,
                "--max_steps",
                "4",
                "--logging_steps",
                "2",
                "--save_strategy",
                "no",
                "--eval_strategy",
                "no",
                "--disable_tqdm",
                "true",
                "--report_to",
                "none",
            ]
            for rank in (0, 1)
        ]

    def launch() -> list[subprocess.CompletedProcess]:
        processes = []
        for command in commands(str(free_port())):
            processes.append(
                subprocess.Popen(
                    command, cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
            time.sleep(1)
        outputs = [process.communicate(timeout=600) for process in processes]
        return [
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
            for process, (stdout, stderr) in zip(processes, outputs)
        ]

    finished = run_with_one_retry_on_gloo_abort(launch)
    for process in finished:
        assert process.returncode == 0, process.stderr[-4000:]
    assert "world size 2" in finished[0].stderr, finished[0].stderr[-4000:]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [entry["step"] for entry in history if "rec_loss" in entry] == [2, 4]
